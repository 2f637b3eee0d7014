/* Differencing chains: find each parent through the locators the driver
 * lists, open it read-only, check its identity, refuse loops and chains
 * deeper than VHD_MAX_CHAIN_DEPTH. */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "util/strfmt.h"

void parent_candidates_free(struct parent_candidates *c)
{
  for (unsigned i = 0; i < c->count; i++)
    vhd_free(c->path[i]);
  c->count = 0;
}

/* Identity of a layer for loop detection: VHD unique ids differ per image;
 * VHDX children share the virtual disk id with their parent but not the
 * data write GUID, so the pair tells layers apart in both formats. */
static void identity(struct vhd_image *img, uint8_t out[32])
{
  struct vhd_info info;
  memset(&info, 0, sizeof info);
  img->drv->info(img, &info);
  memcpy(out, info.id, 16);
  memcpy(out + 16, info.data_write_id, 16);
}

static bool in_trail(struct vhd_image *candidate, const struct chain_trail *trail)
{
  uint8_t want[32], have[32];
  identity(candidate, want);
  for (; trail; trail = trail->below) {
    identity((struct vhd_image *)trail->image, have);
    if (memcmp(want, have, sizeof want) == 0)
      return true;
  }
  return false;
}

/* Appends "path (kind)" to the list of places tried, for the message. */
static void note_tried(char *tried, size_t size, const char *path, const char *kind)
{
  size_t len = strlen(tried);
  vhd_snprintf(tried + len, size - len, "%s%s (%s)", len ? ", " : "", path, kind);
}

/* Try one candidate. Returns 0 with *out set when it is the parent,
 * 1 when it is not (the reason is in the error slot), <0 on a hard error. */
static int try_candidate(struct vhd_image *img, const char *path,
                         const struct chain_trail *trail, unsigned depth,
                         struct vhd_image **out)
{
  vhd_io *io;
  int r = io_open_related(img->io, path, VHD_IO_RDONLY, &io);
  if (r < 0)
    return r == -ENOMEM ? r : 1;
  struct vhd_image *parent;
  r = image_open_layer(io, NULL, VHD_OPEN_RDONLY | (img->flags & ~VHD_OPEN_RDWR & ~VHD_OPEN_RAW),
                       NULL, &parent);
  if (r < 0) {
    vhd_error_prefix(img->path);
    return r == -ENOMEM ? r : 1;
  }
  r = img->drv->parent_matches(img, parent);
  if (r == 0 && in_trail(parent, trail))
    r = vhd_error(ELOOP, "%s: parent %s is already in the chain (a loop)", img->path,
                  parent->path);
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
  return r == -ELOOP ? r : 1;
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

  struct parent_candidates c;
  memset(&c, 0, sizeof c);
  int r = img->drv->parent_candidates(img, &c);
  if (r < 0)
    return r;
  char tried[1024] = "";
  char reason[1024] = "";
  struct vhd_image *parent = NULL;
  r = 1;
  for (unsigned i = 0; i < c.count && r == 1; i++) {
    note_tried(tried, sizeof tried, c.path[i], c.kind[i]);
    vhd_error_clear();
    r = try_candidate(img, c.path[i], trail, depth, &parent);
    /* Keep the most telling reason: a wrong identity beats "not found". */
    if (r == 1 && vhd_last_errno() != ENOENT && vhd_last_error()[0])
      vhd_snprintf(reason, sizeof reason, "%s", vhd_last_error());
  }
  parent_candidates_free(&c);
  if (r < 0)
    return r;
  if (r == 1) {
    if (reason[0])
      return vhd_error(EINVAL, "%s", reason);
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
