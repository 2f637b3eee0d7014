/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_merge: write the data a differencing chain holds above an ancestor
 * into that ancestor, then remove the merged images, as Hyper-V's
 * Merge-VHD does.
 *
 * Why it is crash-safe. Only ranges that some layer ABOVE the ancestor
 * holds (data, or an explicit zero state) are written, and each gets the
 * bytes the child reads there. The child never looks at the ancestor in
 * those ranges: the upper layer answers first. So at every moment of the
 * copy - and after a kill at any point of it - the child reads exactly as
 * before, and the ancestor holds a mix of old and merged ranges that is
 * itself a valid image (the drivers order their own writes). Copying is
 * idempotent, so a rerun simply does it all again and finishes.
 *
 * The one link that writing would break is VHDX's: a child names its
 * parent by the parent's data_write_guid, which a writer must renew before
 * its first change. Renewed at the start, the child would stop opening the
 * moment the merge began. So the ancestor is opened with
 * VHD_OPEN_KEEP_LINK_ID (the copy keeps the GUID), and the GUID is
 * renewed only at the very end, once the merged images are gone: then any
 * other child of the ancestor (a sibling snapshot, which the merge has
 * made stale) is refused at open instead of reading wrong data. A kill
 * between removing the child and renewing the GUID leaves the ancestor
 * merged and valid, and the record below makes a rerun renew it.
 *
 * Why the merged images are removed. The child would still read correctly
 * over the changed ancestor, but an intermediate image would not (the
 * ancestor now holds the child's data under it), so they no longer are
 * valid differences; Hyper-V deletes them for that reason. Before the
 * first name goes, a record of what to remove is made durable beside the
 * child (merge_journal.h); it goes last. So at every moment the child or
 * the record names every image still to remove, and a rerun of the same
 * merge finishes the removal from the record when the child is gone. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "error.h"
#include "image.h"
#include "io.h"
#include "merge_journal.h"
#include "util/path.h"
#include "util/strfmt.h"

/* Buffer of the copy: whole blocks of the usual 2 MiB size at a time. */
#define MERGE_CHUNK (4u << 20)

/* The depth of the ancestor below child (1 = its parent). */
static int find_ancestor(vhd_image *child, const char *ancestor_path, unsigned *depth)
{
  if (child->type != VHD_TYPE_DIFFERENCING || !child->parent)
    return vhd_error(EINVAL, "%s: is not a differencing image; there is nothing to merge",
                     child->path);
  if (!ancestor_path) {
    *depth = 1;
    return 0;
  }
  int d = vhd_chain_layer_of(child, ancestor_path);
  if (d > 0) {
    *depth = (unsigned)d;
    return 0;
  }
  if (d == 0)
    return vhd_error(EINVAL, "%s: cannot merge an image into itself", child->path);
  return vhd_error(EINVAL, "%s: %s is not in this image's chain of parents", child->path,
                   ancestor_path);
}

/* Make the ancestor read as zeros where it does not already. */
static int zero_range(vhd_image *anc, uint64_t off, uint64_t len)
{
  while (len) {
    unsigned st;
    uint64_t run;
    int r = vhd_block_status(anc, off, len, &st, &run, NULL);
    if (r < 0)
      return r;
    if (!(st & VHD_STATUS_ZERO) || (st & VHD_STATUS_DATA)) {
      r = vhd_zero(anc, off, run, VHD_ZERO_MAY_TRIM);
      if (r < 0)
        return r;
    }
    off += run;
    len -= run;
  }
  return 0;
}

/* Copy into anc every range the layers above it hold in child. */
static int copy_down(vhd_image *child, vhd_image *anc, unsigned anc_depth,
                     vhd_progress_fn progress, void *opaque)
{
  uint8_t *buf = vhd_aligned_alloc(4096, MERGE_CHUNK);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory for a %u-byte buffer", anc->path,
                     MERGE_CHUNK);
  uint64_t size = child->virtual_size;
  uint64_t off = 0;
  int r = 0;
  while (off < size && r == 0) {
    uint64_t want = MERGE_CHUNK - off % MERGE_CHUNK;
    if (want > size - off)
      want = size - off;
    unsigned st;
    uint64_t run;
    int layer;
    r = vhd_block_status(child, off, want, &st, &run, &layer);
    if (r < 0)
      break;
    if (run > want)
      run = want;
    if (layer >= 0 && (unsigned)layer >= anc_depth) {
      /* The ancestor (or a layer under it) holds it: already right. */
    } else if (st & VHD_STATUS_DATA) {
      r = vhd_pread(child, buf, (size_t)run, off);
      if (r == 0)
        r = vhd_pwrite(anc, buf, (size_t)run, off);
    } else if (layer >= 0) {
      r = vhd_zero(anc, off, run, VHD_ZERO_MAY_TRIM);
    } else {
      /* No layer holds it: the child reads zeros, and so does the
       * ancestor unless a smaller intermediate cut the chain short. */
      r = zero_range(anc, off, run);
    }
    off += run;
    if (r == 0 && progress && progress(opaque, off, size))
      r = vhd_error(ECANCELED, "%s: merge cancelled (rerun it to finish)", child->path);
  }
  vhd_aligned_free(buf);
  return r;
}

/* The child first. Every file is held open while the names go, so each
 * unlink() only removes a name and the files' space is freed at the close
 * after the last one (freeing tens of MiB inside an unlink() made the
 * window between two of them long). The directories are synced after the
 * last unlink, before the record goes. */
static int remove_merged(const struct merge_record *m)
{
  int fd[VHD_MAX_CHAIN_DEPTH];
  for (unsigned i = 0; i < m->count; i++)
    fd[i] = open(m->removed[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  int r = 0;
  for (unsigned i = 0; i < m->count && r == 0; i++)
    if (unlink(m->removed[i]) != 0 && errno != ENOENT)
      r = vhd_error(errno, "%s: merged, but cannot remove it: %s", m->removed[i],
                    strerror(errno));
  for (unsigned i = 0; i < m->count; i++)
    if (fd[i] >= 0)
      close(fd[i]);
  for (unsigned i = 0; i < m->count && r == 0; i++)
    r = merge_sync_dir_of(m->removed[i]);
  return r;
}

struct vhd_merge_plan {
  struct merge_record rec;   /* paths as opened; absolute from a record */
  unsigned depth;            /* of the ancestor below the child */
  bool resume;               /* only the removal is left (from a record) */
};

/* The plan of an interrupted merge whose child is gone: its record, when
 * there is one (-ENOENT with no message otherwise). */
static int plan_from_record(const char *child_path, const char *ancestor_path,
                            struct vhd_merge_plan *p)
{
  char *jpath = merge_journal_path(child_path);
  if (!jpath)
    return vhd_error(ENOMEM, "%s: out of memory", child_path);
  int r = merge_journal_read(jpath, &p->rec);
  if (r == 0 && ancestor_path && !path_same_file(ancestor_path, p->rec.ancestor))
    r = vhd_error(EINVAL, "%s: the interrupted merge recorded in %s was into %s, not %s",
                  child_path, jpath, p->rec.ancestor, ancestor_path);
  p->resume = r == 0;
  vhd_free(jpath);
  return r;
}

/* The plan of a merge of child (open) into ancestor_path (NULL: its
 * parent): the ancestor, and the images above it, which go. */
static int plan_from_chain(vhd_image *child, const char *ancestor_path,
                           struct vhd_merge_plan *p)
{
  int r = find_ancestor(child, ancestor_path, &p->depth);
  vhd_image *a = child;
  for (unsigned i = 0; r == 0 && i < p->depth; i++, a = a->parent)
    if (!(p->rec.removed[p->rec.count++] = vhd_strdup(a->path)))
      r = vhd_error(ENOMEM, "%s: out of memory", child->path);
  if (r == 0 && !(p->rec.ancestor = vhd_strdup(a->path)))
    r = vhd_error(ENOMEM, "%s: out of memory", child->path);
  if (r == 0 && a->virtual_size < child->virtual_size)
    r = vhd_error(ENOSPC, "%s: the ancestor %s is smaller (%llu bytes) than this image "
                  "(%llu bytes); resize it first", child->path, a->path,
                  (unsigned long long)a->virtual_size,
                  (unsigned long long)child->virtual_size);
  /* Only VHDX links a child to data that changes (see the top). */
  p->rec.renew = r == 0 && a->drv->format == VHD_FORMAT_VHDX;
  return r;
}

/* The plan, and the child's chain open read-only when the copy is still to
 * do (*child NULL when only the removal is left). */
static int make_plan(const char *child_path, const char *ancestor_path,
                     struct vhd_merge_plan *p, vhd_image **child)
{
  memset(p, 0, sizeof *p);
  *child = NULL;
  if (access(child_path, F_OK) != 0 && errno == ENOENT) {
    int r = plan_from_record(child_path, ancestor_path, p);
    if (r != -ENOENT)
      return r;
  }
  int r = vhd_open(child_path, VHD_OPEN_RDONLY, child);
  if (r == 0)
    r = plan_from_chain(*child, ancestor_path, p);
  if (r < 0) {
    vhd_close(*child);
    *child = NULL;
    merge_record_free(&p->rec);
  }
  return r;
}

/* The record of p with every path made real and absolute, so a rerun from
 * anywhere finds the same files. */
static int absolute_record(const struct vhd_merge_plan *p, struct merge_record *out)
{
  memset(out, 0, sizeof *out);
  out->renew = p->rec.renew;
  const char *bad = (out->ancestor = realpath(p->rec.ancestor, NULL)) ? NULL : p->rec.ancestor;
  for (unsigned i = 0; !bad && i < p->rec.count; i++, out->count++)
    if (!(out->removed[i] = realpath(p->rec.removed[i], NULL)))
      bad = p->rec.removed[i];
  if (!bad)
    return 0;
  int r = vhd_error(errno, "%s: cannot find the real path: %s", bad, strerror(errno));
  merge_record_free(out);
  return r;
}

/* Resuming from a record: each image it names that is still there must
 * lie above the ancestor in its own chain, or the record is not this
 * merge's (nothing is removed then). */
static int check_record(const char *child_path, const struct merge_record *m)
{
  for (unsigned i = 0; i < m->count; i++) {
    if (access(m->removed[i], F_OK) != 0 && errno == ENOENT)
      continue;
    vhd_image *img;
    int r = vhd_open(m->removed[i], VHD_OPEN_RDONLY, &img);
    if (r < 0)
      return r;
    int depth = vhd_chain_layer_of(img, m->ancestor);
    vhd_close(img);
    if (depth <= 0)
      return vhd_error(EINVAL, "%s: the interrupted merge's record names %s, whose chain "
                       "does not hold %s; nothing removed", child_path, m->removed[i],
                       m->ancestor);
  }
  return 0;
}

/* Remove the merged images and their record, then renew the ancestor's
 * data id; every step may be repeated by a rerun. */
static int finish(const char *jpath, const struct merge_record *m)
{
  int r = remove_merged(m);
  if (r == 0 && m->renew) {
    vhd_image *anc;
    r = vhd_open(m->ancestor, VHD_OPEN_RDWR | VHD_OPEN_RENEW_LINK_ID, &anc);
    if (r == 0)
      r = vhd_close(anc);
  }
  if (r == 0)
    r = merge_journal_remove(jpath);
  return r;
}

/* The copy (see the top): the ancestor opened read-write beside the
 * child's read-only chain; durable before anything is removed. */
static int merge_copy(vhd_image *child, const struct vhd_merge_plan *p,
                      vhd_progress_fn progress, void *opaque)
{
  vhd_image *a = child;
  for (unsigned i = 0; i < p->depth; i++)
    a = a->parent;
  /* The chain's read-only handle of the ancestor holds a reader's lock,
   * which the writer's lock of the second handle would meet as another
   * user's; the writer's lock keeps others out of the ancestor from here. */
  io_file_release_lock(a->io);
  vhd_image *anc;
  int r = vhd_open(p->rec.ancestor, VHD_OPEN_RDWR | VHD_OPEN_KEEP_LINK_ID, &anc);
  if (r < 0)
    return r;
  r = copy_down(child, anc, p->depth, progress, opaque);
  int r2 = vhd_close(anc);   /* flushes */
  return r < 0 ? r : r2;
}

int vhd_merge(const char *child_path, const char *ancestor_path, unsigned flags,
              vhd_progress_fn progress, void *opaque)
{
  vhd_error_clear();
  if (flags)
    return vhd_error(EINVAL, "%s: unknown merge flags 0x%x", child_path, flags);
  struct vhd_merge_plan p;
  struct merge_record abs = { 0 };
  vhd_image *child;
  char *jpath = merge_journal_path(child_path);
  int r = jpath ? make_plan(child_path, ancestor_path, &p, &child)
                : vhd_error(ENOMEM, "%s: out of memory", child_path);
  if (r < 0) {
    vhd_free(jpath);
    return r;
  }
  if (p.resume) {
    r = check_record(child_path, &p.rec);
    if (r == 0)
      r = finish(jpath, &p.rec);
  } else {
    r = merge_copy(child, &p, progress, opaque);
    if (r == 0)
      r = absolute_record(&p, &abs);
    vhd_close(child);
    if (r == 0)
      r = merge_journal_write(jpath, &abs);
    if (r == 0)
      r = finish(jpath, &abs);
    merge_record_free(&abs);
  }
  merge_record_free(&p.rec);
  vhd_free(jpath);
  return r;
}

int vhd_merge_plan_get(const char *child_path, const char *ancestor_path,
                       vhd_merge_plan **plan)
{
  vhd_error_clear();
  *plan = vhd_malloc(sizeof **plan);
  if (!*plan)
    return vhd_error(ENOMEM, "%s: out of memory", child_path);
  vhd_image *child;
  int r = make_plan(child_path, ancestor_path, *plan, &child);
  vhd_close(child);
  if (r < 0) {
    vhd_free(*plan);
    *plan = NULL;
  }
  return r;
}

const char *vhd_merge_plan_ancestor(const vhd_merge_plan *plan) { return plan->rec.ancestor; }

const char *vhd_merge_plan_removed(const vhd_merge_plan *plan, unsigned i)
{
  return i < plan->rec.count ? plan->rec.removed[i] : NULL;
}

void vhd_merge_plan_free(vhd_merge_plan *plan)
{
  if (!plan)
    return;
  merge_record_free(&plan->rec);
  vhd_free(plan);
}
