/* SPDX-License-Identifier: BSD-3-Clause */
/* Differencing chains: find each parent through the locators the driver
 * lists, open it read-only, check its identity, refuse loops and chains
 * deeper than VHD_MAX_CHAIN_DEPTH. */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "util/path.h"
#include "util/strfmt.h"

void parent_candidates_free(struct parent_candidates *c)
{
  for (unsigned i = 0; i < c->count; i++)
    vhd_free(c->path[i]);
  c->count = 0;
}

int parent_candidates_one(struct vhd_image *img, struct parent_candidates *c, const char *path,
                          const char *kind)
{
  size_t n = strlen(path) + 1;
  c->path[0] = vhd_malloc(n);
  if (!c->path[0])
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  memcpy(c->path[0], path, n);
  c->kind[0] = kind;
  c->count = 1;
  return 0;
}

void parent_roots_free(struct parent_roots *r)
{
  if (!r)
    return;
  for (unsigned i = 0; i < r->count; i++)
    vhd_free(r->dir[i]);
  vhd_free(r);
}

static int roots_add(struct parent_roots *r, const char *dir)
{
  char *norm = path_normalize(dir);
  if (!norm)
    return -ENOMEM;
  r->dir[r->count++] = norm;
  return 0;
}

int parent_roots_copy(const struct parent_roots *r, struct parent_roots **out)
{
  *out = NULL;
  if (!r)
    return 0;
  struct parent_roots *c = vhd_calloc(1, sizeof *c);
  if (!c)
    return -ENOMEM;
  for (unsigned i = 0; i < r->count; i++)
    if (roots_add(c, r->dir[i]) < 0) {
      parent_roots_free(c);
      return -ENOMEM;
    }
  *out = c;
  return 0;
}

int parent_roots_new(const struct vhd_open_params *p, const char *top,
                     struct parent_roots **out)
{
  *out = NULL;
  bool beside = (p->flags & VHD_OPEN_PARENTS_BESIDE) != 0;
  if (!beside && !p->parent_dir)
    return 0;
  struct parent_roots *r = vhd_calloc(1, sizeof *r);
  char *top_dir = beside ? path_dirname(top) : NULL;
  int rc = (!r || (beside && !top_dir)) ? -ENOMEM : 0;
  if (rc == 0 && beside)
    rc = roots_add(r, top_dir);
  if (rc == 0 && p->parent_dir)
    rc = roots_add(r, p->parent_dir);
  vhd_free(top_dir);
  if (rc < 0) {
    parent_roots_free(r);
    return vhd_error(ENOMEM, "%s: out of memory", top);
  }
  *out = r;
  return 0;
}

static bool roots_allow(const struct parent_roots *r, const char *path)
{
  if (!r)
    return true;
  for (unsigned i = 0; i < r->count; i++)
    if (path_within(r->dir[i], path))
      return true;
  return false;
}

/* VHD unique ids differ per image; VHDX children share the virtual disk
 * id with their parent but not the data write GUID, so the pair (and the
 * format) tells layers apart in both formats. */
bool image_same_layer(struct vhd_image *a, struct vhd_image *b)
{
  struct vhd_info ia, ib;
  memset(&ia, 0, sizeof ia);
  memset(&ib, 0, sizeof ib);
  a->drv->info(a, &ia);
  b->drv->info(b, &ib);
  return a->drv == b->drv && memcmp(ia.id, ib.id, 16) == 0 &&
         memcmp(ia.data_write_id, ib.data_write_id, 16) == 0;
}

static bool in_trail(struct vhd_image *candidate, const struct chain_trail *trail)
{
  for (; trail; trail = trail->below)
    if (image_same_layer(candidate, (struct vhd_image *)trail->image))
      return true;
  return false;
}

/* Appends "path (kind)" or "path (kind, note)" to the list of places
 * tried, for the message. */
static void note_tried(char *tried, size_t size, const char *path, const char *kind,
                       const char *note)
{
  size_t len = strlen(tried);
  vhd_snprintf(tried + len, size - len, "%s%s (%s%s%s)", len ? ", " : "", path, kind,
               note ? ", " : "", note ? note : "");
}

/* Where a candidate lies, as text: its locator path against the child's
 * directory, normalised. In a confined chain of host files the child's
 * path is real and absolute, so this is where the file will be looked
 * for (a symbolic link on the way is caught by check_real_place). */
static char *candidate_path(struct vhd_image *img, const char *stored)
{
  char *dir = path_dirname(img->path);
  char *full = dir ? path_join(dir, stored) : NULL;
  char *norm = full ? path_normalize(full) : NULL;
  vhd_free(dir);
  vhd_free(full);
  return norm;
}

/* Refuses a parent whose opened file really lies outside the roots (a
 * symbolic link inside an allowed directory that leads out). Worded as
 * the textual refusal, so the message tells nothing more. */
static int check_real_place(struct vhd_image *img, vhd_io *io, const char *shown)
{
  if (!img->roots || !io->real_path)
    return 0;
  char *real;
  int r = io->real_path(io, &real);
  if (r < 0)
    return r;
  bool inside = roots_allow(img->roots, real);
  vhd_free(real);
  if (inside)
    return 0;
  return vhd_error(EACCES, "%s: parent locator %s lies outside the directories parents "
                   "may come from", img->path, shown);
}

/* Try one candidate. Returns 0 with *out set when it is the parent,
 * 1 when it is not (the reason is in the error slot), <0 on a hard error. */
static int try_candidate(struct vhd_image *img, const char *stored,
                         const struct chain_trail *trail, unsigned depth,
                         struct vhd_image **out)
{
  char *norm = candidate_path(img, stored);
  if (!norm)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  if (!roots_allow(img->roots, norm)) {
    /* Not opened, not even looked up: whether such a file exists is
     * nobody's business but the host's. */
    vhd_error(EACCES, "%s: parent locator %s lies outside the directories parents may "
              "come from", img->path, stored);
    vhd_free(norm);
    return 1;
  }
  unsigned ioflags = VHD_IO_RDONLY | ((img->flags & VHD_OPEN_FORCE_SHARE) ? VHD_IO_NOLOCK : 0);
  vhd_io *io;
  /* The backend gets the locator as stored (it resolves relative paths
   * its own way); where the file turns out to be is checked after. */
  vhd_free(norm);
  /* A parent another process writes (its lock) is the answer, not a
   * reason to look elsewhere. */
  int r = io_open_related(img->io, stored, ioflags, &io);
  if (r < 0 && r != -ENOENT)
    vhd_error_prefix(img->path);   /* the parent's message, under the child's name */
  if (r < 0)
    return r == -ENOMEM || r == -EBUSY ? r : 1;
  r = check_real_place(img, io, stored);
  if (r < 0) {
    vhd_io_close(io);
    return r == -ENOMEM ? r : 1;
  }
  struct vhd_image *parent;
  r = image_open_layer(io, NULL, VHD_OPEN_RDONLY | (img->flags & ~VHD_OPEN_RDWR & ~VHD_OPEN_RAW),
                       NULL, &parent);
  if (r < 0) {
    vhd_error_prefix(img->path);
    return r == -ENOMEM ? r : 1;
  }
  /* Without leave, a raw file is no candidate at all, and is told apart
   * from a missing one by nothing: any file reads as raw, so saying "that
   * is not an image" would say that a host file exists. */
  if (parent->drv == &vhd_driver_raw && !(img->flags & VHD_OPEN_RAW_PARENT)) {
    image_free(parent);
    vhd_error(ENOENT, "%s: no image at %s", img->path, stored);
    return 1;
  }
    r = img->drv->parent_matches(img, parent);
  if (r == 0 && in_trail(parent, trail))
    r = vhd_error(ELOOP, "%s: parent %s is already in the chain (a loop)", img->path,
                  parent->path);
  if (r == 0 && img->roots && parent_roots_copy(img->roots, &parent->roots) < 0)
    r = vhd_error(ENOMEM, "%s: out of memory", img->path);
  if (r == 0) {
    struct chain_trail here = { img, trail };
    r = chain_open_parents(parent, &here, depth + 1);
    if (r < 0) {
      image_free(parent);
      return r;   /* the parent was right; its own chain is broken */
    }
    *out = parent;
    return 0;
  }
  image_free(parent);
  return r == -ELOOP || r == -ENOMEM ? r : 1;
}

int chain_open_parents(struct vhd_image *img, const struct chain_trail *trail,
                       unsigned depth)
{
  if (img->type != VHD_TYPE_DIFFERENCING || (img->flags & VHD_OPEN_NO_PARENT))
    return 0;
  if (depth >= VHD_MAX_CHAIN_DEPTH) {
    const struct chain_trail *top = trail;
    while (top && top->below)
      top = top->below;
    return vhd_error(ELOOP, "%s: differencing chain deeper than %d images (at %s)",
                     top ? top->image->path : img->path, VHD_MAX_CHAIN_DEPTH, img->path);
  }
  if (!img->drv->parent_candidates || !img->drv->parent_matches)
    return vhd_error(ENOTSUP, "%s: cannot open the parent of this image", img->path);

  /* A link of zeros names no image. VHD uses it for a raw parent (blktap),
   * which is taken only with leave; then no locator is even looked at, so
   * nothing about the host's files shows in the message. */
  struct vhd_info self;
  memset(&self, 0, sizeof self);
  img->drv->info(img, &self);
  static const uint8_t zero_id[16];
  if (!img->drv->parent_by_name_only && memcmp(self.parent_id, zero_id, 16) == 0 &&
      !(img->flags & VHD_OPEN_RAW_PARENT))
    return vhd_error(EPERM, "%s: its parent link (%s) is all zeros, which names no image: "
                     "only a raw file can be such a parent, and raw parents are taken only "
                     "when allowed (vhdtool --raw-parent, nbdkit raw-parent=true)", img->path,
                     img->drv->format == VHD_FORMAT_VHD ? "parent_unique_id" : "parent_linkage");

  struct parent_candidates c;
  memset(&c, 0, sizeof c);
  int r = img->drv->parent_candidates(img, &c);
  if (r < 0)
    return r;
  char tried[1024] = "";
  char reason[1024] = "";
  int reason_errno = EINVAL;
  struct vhd_image *parent = NULL;
  r = 1;
  for (unsigned i = 0; i < c.count && r == 1; i++) {
    vhd_error_clear();
    r = try_candidate(img, c.path[i], trail, depth, &parent);
    bool outside = r == 1 && vhd_last_errno() == EACCES;
    note_tried(tried, sizeof tried, c.path[i], c.kind[i],
               outside ? "outside the allowed directories" : NULL);
    /* Keep the most telling reason: a wrong identity beats "not found",
     * and a place never looked at tells nothing. */
    if (r == 1 && !outside && vhd_last_errno() != ENOENT && vhd_last_error()[0]) {
      reason_errno = vhd_last_errno();
      vhd_snprintf(reason, sizeof reason, "%s", vhd_last_error());
    }
  }
  parent_candidates_free(&c);
  if (r < 0)
    return r;
  if (r == 1) {
    if (reason[0])
      return vhd_error(reason_errno, "%s", reason);
    return vhd_error(ENOENT, "%s: parent image not found (tried %s)", img->path,
                     tried[0] ? tried : "no locator");
  }
  img->parent = parent;
  img->parent_path = vhd_strdup(parent->path);
  img->depth = parent->depth + 1;
  if (!img->parent_path)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  return 0;
}
