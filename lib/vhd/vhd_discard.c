/* SPDX-License-Identifier: BSD-3-Clause */
/* Trimming a VHD (vhd_discard): give back what a range holds without
 * writing data or allocating.
 *
 *  - A fixed disk's file is its disk: the host pages inside the range are
 *    punched.
 *  - A dynamic block trimmed whole is freed (vhd_free_block). A child's
 *    block is freed only where its parent reads zeros, since freeing
 *    shows the parent; elsewhere its data pages are punched and the
 *    block stays.
 *  - Part of a present block: the host pages of its data area inside the
 *    range are punched (those sectors then read as zeros, which a trim
 *    allows); the sector bitmap and the BAT stay as they are. The trims a
 *    block receives are added up (trims.h); once they cover it, it is
 *    treated like a block trimmed whole.
 *  - Unallocated blocks: nothing to give back. */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "freeable.h"
#include "trims.h"

#define PARENT_SCAN (256u * 1024u)

static int ignore_unsupported(int r) { return r == -ENOTSUP ? 0 : r; }

static uint64_t data_offset(const struct vhd_state *s, uint32_t blk, uint64_t inblk)
{
  return vhd_block_offset(s, blk) + s->bitmap_bytes + inblk;
}

/* A block every visible byte of which was trimmed. */
static int drop_block(struct vhd_image *img, struct vhd_state *s, uint32_t blk,
                      uint64_t visible)
{
  uint64_t off = (uint64_t)blk * s->block_size;
  bool zero = true;
  if (s->footer.disk_type == VHD_TYPE_DIFFERENCING) {
    uint8_t *buf = vhd_malloc(PARENT_SCAN);
    if (!buf)
      return vhd_error(ENOMEM, "%s: out of memory trimming block %u", img->path, blk);
    int r = below_reads_zero(img, off, visible, buf, PARENT_SCAN, &zero);
    vhd_free(buf);
    if (r < 0)
      return r;
  }
  if (zero)
    return vhd_free_block(img, s, blk);
  return ignore_unsupported(trims_punch_pages(img->io, data_offset(s, blk, 0), visible));
}

int vhd_fmt_discard(struct vhd_image *img, uint64_t off, uint64_t len)
{
  struct vhd_state *s = vhd_state(img);

  if (!vhd_is_sparse(s))
    return ignore_unsupported(trims_punch_pages(img->io, off, len));
  while (len > 0) {
    uint32_t blk = (uint32_t)(off / s->block_size);
    uint64_t inblk = off % s->block_size;
    uint64_t n = len < s->block_size - inblk ? len : s->block_size - inblk;
    uint64_t visible = img->virtual_size - (off - inblk);
    if (visible > s->block_size)
      visible = s->block_size;
    int r = 0;
    if (blk < s->bat.count && s->bat.entry[blk] != VHD_BAT_UNUSED) {
      bool whole = inblk == 0 && n >= visible;
      if (!whole) {
        r = ignore_unsupported(trims_punch_pages(img->io, data_offset(s, blk, inblk), n));
        struct trim_log *t = r == 0 ? trims_of(img, s->block_size) : NULL;
        whole = t && trims_add(t, blk, inblk, n, visible);
      }
      if (r == 0 && whole)
        r = drop_block(img, s, blk, visible);
    }
    if (r < 0)
      return r;
    off += n;
    len -= n;
  }
  return 0;
}
