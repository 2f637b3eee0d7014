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
 * IMAGE_OPEN_KEEP_DATA_ID (the copy keeps the GUID), and the GUID is
 * renewed only at the very end, once the merged images are gone: then any
 * other child of the ancestor (a sibling snapshot, which the merge has
 * made stale) is refused at open instead of reading wrong data. A kill
 * between removing the child and renewing the GUID leaves the ancestor
 * merged and valid, only without that protection for siblings.
 *
 * Why the merged images are removed. The child would still read correctly
 * over the changed ancestor, but an intermediate image would not (the
 * ancestor now holds the child's data under it), so they no longer are
 * valid differences; Hyper-V deletes them for that reason. The child goes
 * first: while it exists, the whole chain under it is intact and a rerun
 * can finish. An intermediate is left behind only by a kill between two
 * unlink() calls, which remove names only (see remove_merged). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"
#include "error.h"
#include "image.h"
#include "io.h"
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

/* Make the removal of path durable: fsync its directory. */
static int sync_dir_of(const char *path)
{
  char *dir = path_dirname(path);
  if (!dir)
    return vhd_error(ENOMEM, "%s: out of memory", path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = 0;
  if (fd < 0 || fsync(fd) != 0)
    r = vhd_error(errno, "%s: cannot sync the directory %s: %s", path, dir, strerror(errno));
  if (fd >= 0)
    close(fd);
  vhd_free(dir);
  return r;
}

/* The paths of the images above the ancestor, the child first. */
struct merged {
  char *path[VHD_MAX_CHAIN_DEPTH];
  unsigned count;
};

static void merged_free(struct merged *m)
{
  for (unsigned i = 0; i < m->count; i++)
    vhd_free(m->path[i]);
  m->count = 0;
}

/* The child first, so that while it exists a rerun finds its whole chain.
 * Every file is held open while the names go, so each unlink() only
 * removes a name and the files' space is freed at the close after the
 * last one: freeing tens of MiB (of tmpfs pages, say) inside the first
 * unlink() kept a window of milliseconds in which a kill left an orphan
 * intermediate and no child to rerun from (cli/test_merge hit it under
 * load). The directories are synced after the last unlink. If a power cut
 * kept the child but lost the others' removal, nothing is lost: the
 * ancestor already holds every merged byte. */
static int remove_merged(const struct merged *m)
{
  int fd[VHD_MAX_CHAIN_DEPTH];
  for (unsigned i = 0; i < m->count; i++)
    fd[i] = open(m->path[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  int r = 0;
  for (unsigned i = 0; i < m->count && r == 0; i++)
    if (unlink(m->path[i]) != 0 && errno != ENOENT)
      r = vhd_error(errno, "%s: merged, but cannot remove it: %s", m->path[i],
                    strerror(errno));
  for (unsigned i = 0; i < m->count; i++)
    if (fd[i] >= 0)
      close(fd[i]);
  if (r < 0)
    return r;
  for (unsigned i = 0; i < m->count && r == 0; i++)
    r = sync_dir_of(m->path[i]);
  return r;
}

int vhd_merge(const char *child_path, const char *ancestor_path, unsigned flags,
              vhd_progress_fn progress, void *opaque)
{
  vhd_error_clear();
  if (flags)
    return vhd_error(EINVAL, "%s: unknown merge flags 0x%x", child_path, flags);
  vhd_image *child;
  int r = vhd_open(child_path, VHD_OPEN_RDONLY, &child);
  if (r < 0)
    return r;
  unsigned depth = 0;
  struct merged m = { { NULL }, 0 };
  char *anc_path = NULL;
  vhd_image *anc = NULL;
  r = find_ancestor(child, ancestor_path, &depth);
  vhd_image *a = child;
  for (unsigned i = 0; r == 0 && i < depth; i++, a = a->parent) {
    m.path[m.count] = vhd_strdup(a->path);
    if (!m.path[m.count++])
      r = vhd_error(ENOMEM, "%s: out of memory", child_path);
  }
  if (r == 0 && !(anc_path = vhd_strdup(a->path)))
    r = vhd_error(ENOMEM, "%s: out of memory", child_path);
  if (r == 0 && a->virtual_size < child->virtual_size)
    r = vhd_error(ENOSPC, "%s: the ancestor %s is smaller (%llu bytes) than this image "
                  "(%llu bytes); resize it first", child_path, a->path,
                  (unsigned long long)a->virtual_size,
                  (unsigned long long)child->virtual_size);
  /* Only VHDX links a child to data that changes (see the top). */
  bool renew = r == 0 && a->drv->format == VHD_FORMAT_VHDX;
  /* The chain's read-only handle of the ancestor holds a reader's lock,
   * which the writer's lock of the second handle would meet as another
   * user's; the writer's lock keeps others out of the ancestor from here. */
  if (r == 0)
    io_file_release_lock(a->io);
  if (r == 0)
    r = vhd_open(anc_path, VHD_OPEN_RDWR | IMAGE_OPEN_KEEP_DATA_ID, &anc);
  if (r == 0)
    r = copy_down(child, anc, depth, progress, opaque);
  /* Durable before anything is removed: vhd_close flushes. */
  int r2 = vhd_close(anc);
  if (r == 0)
    r = r2;
  vhd_close(child);
  if (r == 0)
    r = remove_merged(&m);
  if (r == 0 && renew) {
    r = vhd_open(anc_path, VHD_OPEN_RDWR | IMAGE_OPEN_RENEW_DATA_ID, &anc);
    if (r == 0)
      r = vhd_close(anc);
  }
  merged_free(&m);
  vhd_free(anc_path);
  return r;
}
