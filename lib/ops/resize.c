/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_resize: the checks every format shares (sector rounding, the shrink
 * flags, data past the new end, a writable image); the change itself is
 * the driver's resize, run under the image's exclusive lock. */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "util/arith.h"
#include "util/strfmt.h"

/* The first byte at or after from that some layer of img holds as data,
 * or UINT64_MAX when [from, end) holds none. *layer gets its depth. */
static int find_data_after(vhd_image *img, uint64_t from, uint64_t end, uint64_t *found,
                           int *layer)
{
  *found = UINT64_MAX;
  while (from < end) {
    unsigned status;
    uint64_t run;
    int depth;
    int r = vhd_block_status(img, from, end - from, &status, &run, &depth);
    if (r < 0)
      return r;
    if (status & VHD_STATUS_DATA) {
      *found = from;
      *layer = depth;
      return 0;
    }
    from += run;
  }
  return 0;
}

/* A grow's new area shows zeros before the size takes it in: whatever a
 * layer held past the old end (the tail of its last block, a parent's
 * data) is cleared in the room the driver made. If that fails, the room
 * is given up and the disk keeps its old size. */
static int grow_over_stale(vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                           void *opaque)
{
  uint64_t old_size = img->virtual_size, stale_end = old_size;
  int r = img->drv->resize_room(img, new_size, progress, opaque, &stale_end);
  if (r < 0)
    return r;
  r = image_clear_shown(img, old_size, min_u64(stale_end, new_size));
  if (r < 0) {
    char why[512];
    vhd_snprintf(why, sizeof why, "%s", vhd_last_error());
    img->drv->resize(img, old_size, NULL, NULL);
    r = vhd_error(-r, "%s", why);
  }
  return r;
}

int vhd_resize(vhd_image *img, uint64_t new_size, unsigned flags, vhd_progress_fn progress,
               void *opaque)
{
  vhd_error_clear();
  if (flags & ~(VHD_RESIZE_SHRINK | VHD_RESIZE_FORCE))
    return vhd_error(EINVAL, "%s: unknown resize flags 0x%x", img->path, flags);
  if (!img->writable)
    return vhd_error(EROFS, "%s: the image is open read-only; resizing needs it read-write",
                     img->path);
  if (!img->drv->resize)
    return vhd_error(ENOTSUP, "%s: %s images cannot be resized", img->path, img->drv->name);
  if (new_size == 0)
    return vhd_error(EINVAL, "%s: the new size must not be 0", img->path);
  uint32_t ss = img->sector_size ? img->sector_size : 1;
  if (new_size > UINT64_MAX - ss)
    return vhd_error(EFBIG, "%s: new size %llu is too large", img->path,
                     (unsigned long long)new_size);
  /* Up, never down: rounding must not cut off a byte the caller asked for. */
  new_size = (new_size + ss - 1) / ss * ss;

  uint64_t old_size = img->virtual_size;
  if (new_size < old_size) {
    if (!(flags & VHD_RESIZE_SHRINK))
      return vhd_error(EINVAL, "%s: the new size %llu is smaller than the current %llu; "
                       "shrinking needs the shrink flag (vhdtool resize --shrink)",
                       img->path, (unsigned long long)new_size,
                       (unsigned long long)old_size);
    if (!(flags & VHD_RESIZE_FORCE)) {
      uint64_t at;
      int layer = 0;
      int r = find_data_after(img, new_size, old_size, &at, &layer);
      if (r < 0)
        return r;
      if (at != UINT64_MAX)
        return vhd_error(ENOTEMPTY, "%s: data lies past the new end %llu (at offset %llu, "
                         "in %s); shrinking would lose it (force it to discard the data)",
                         img->path, (unsigned long long)new_size, (unsigned long long)at,
                         layer == 0 ? "this image" : "a parent image");
    }
  }

  int r = image_lock(img, true);
  if (r < 0)
    return r;
  if (new_size > old_size && img->drv->resize_room)
    r = grow_over_stale(img, new_size, progress, opaque);
  /* The same size too: the driver may finish what an interrupted resize
   * left undone. */
  if (r == 0)
    r = img->drv->resize(img, new_size, progress, opaque);
  return image_unlock(img, r);
}
