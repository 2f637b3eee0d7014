/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_map: the allocation of a virtual disk as extents, each the longest
 * run that block status reports alike (state, layer, and a host offset
 * that continues the previous one), so a 2 GiB image of contiguous blocks
 * is one extent, not a thousand. */
#include "error.h"
#include "image.h"
#include "sized.h"

static bool continues(const struct vhd_extent *e, const struct image_status *st,
                      uint64_t off)
{
  if (e->offset + e->length != off || e->status != st->status || e->layer != st->layer ||
      e->depth != st->depth)
    return false;
  if ((e->host_offset == UINT64_MAX) != (st->host == UINT64_MAX))
    return false;
  return e->host_offset == UINT64_MAX || e->host_offset + e->length == st->host;
}

int map_image(vhd_image *img, uint64_t offset, uint64_t length, vhd_extent_fn fn,
              void *opaque)
{
  vhd_error_clear();
  if (offset > img->virtual_size)
    return vhd_error(EINVAL, "%s: map offset %llu is past the end of the disk (%llu bytes)",
                     img->path, (unsigned long long)offset,
                     (unsigned long long)img->virtual_size);
  if (length == 0)
    length = img->virtual_size - offset;
  uint64_t end = offset + length;
  if (end < offset || end > img->virtual_size)
    return vhd_error(EINVAL, "%s: map of %llu bytes at %llu is past the end of the disk "
                     "(%llu bytes)", img->path, (unsigned long long)length,
                     (unsigned long long)offset, (unsigned long long)img->virtual_size);

  struct vhd_extent cur = { .offset = offset, .length = 0 };
  for (uint64_t off = offset; off < end;) {
    struct image_status st;
    int r = image_block_status(img, off, end - off, IMAGE_STATUS_MAP, &st);
    if (r < 0)
      return r;
    if (cur.length && continues(&cur, &st, off)) {
      cur.length += st.run;
    } else {
      if (cur.length && (r = fn(opaque, &cur)) != 0)
        return r < 0 ? r : vhd_error(ECANCELED, "%s: map cancelled", img->path);
      cur = (struct vhd_extent){ .offset = off, .length = st.run, .status = st.status,
                                 .layer = st.layer, .host_offset = st.host,
                                 .depth = st.depth };
    }
    off += st.run;
  }
  if (cur.length) {
    int r = fn(opaque, &cur);
    if (r != 0)
      return r < 0 ? r : vhd_error(ECANCELED, "%s: map cancelled", img->path);
  }
  return 0;
}
