/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_resize: the checks every format shares (sector rounding, the shrink
 * flags, data past the new end, a writable image); the change itself is
 * the driver's resize, run under the image's exclusive lock. */
#include "driver.h"
#include "error.h"
#include "image.h"

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
  /* The same size too: the driver may finish what an interrupted resize
   * left undone. */
  return image_unlock(img, img->drv->resize(img, new_size, progress, opaque));
}
