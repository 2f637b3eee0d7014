/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_get_layout and vhd_get_host_bytes: where an image's data lies and
 * what its file costs the host, for `vhdtool info`. The
 * driver says where each block lies; fragmentation is judged here; the smallest
 * size a shrink could reach comes from block status through the chain, so
 * data a parent holds counts too. */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "io.h"
#include "sized.h"

/* A block's data may start a little after the previous block's end
 * (padding that aligns it, as VHD compact leaves it) and still count as
 * right after it. */
#define IN_PLACE_SLACK 4096u

/* Blocks this layer stores, and how many do not follow the one before in
 * the file: the same rule for every format (the drivers only say where
 * each block is, block_slot). Image lock held. */
static int count_blocks(struct vhd_image *img, struct vhd_layout *layout)
{
  uint64_t prev_end = 0;
  bool first = true;
  for (uint64_t blk = 0;; blk++) {
    uint64_t host, bytes;
    int r = img->drv->block_slot(img, blk, &host, &bytes);
    if (r == -ERANGE)
      return 0;
    if (r < 0)
      return r;
    if (r == 0)
      continue;
    layout->data_blocks++;
    if (!first && (host < prev_end || host >= prev_end + IN_PLACE_SLACK))
      layout->fragmented_blocks++;
    prev_end = host + bytes;
    first = false;
  }
}

int image_get_layout(vhd_image *img, struct vhd_layout *layout)
{
  int r = 0;

  vhd_error_clear();
  memset(layout, 0, sizeof *layout);
  if (img->drv->block_slot) {
    r = image_lock(img, false);
    if (r == 0)
      r = image_unlock(img, count_blocks(img, layout));
    if (r < 0)
      return r;
  }
  if (layout->data_blocks)
    layout->fragmentation_pct =
        (unsigned)(layout->fragmented_blocks * 100 / layout->data_blocks);

  uint64_t end = 0;
  for (uint64_t off = 0; off < img->virtual_size;) {
    unsigned status;
    uint64_t run;
    r = vhd_block_status(img, off, img->virtual_size - off, &status, &run, NULL);
    if (r < 0)
      return r;
    if (status == 0) {
      /* A parent that is not open may hold anything: nothing can go. */
      end = img->virtual_size;
      break;
    }
    if (status & VHD_STATUS_DATA)
      end = off + run;
    off += run;
  }
  uint64_t sector = img->sector_size < 512 ? 512 : img->sector_size;
  end = (end + sector - 1) / sector * sector;
  layout->min_size = end < img->virtual_size ? end : img->virtual_size;
  return 0;
}

int vhd_get_host_bytes(vhd_image *img, uint64_t *bytes)
{
  vhd_error_clear();
  /* A device's blocks are not a file system's: the backend counts all of
   * it (compact's host bytes), which is no figure to show here. */
  if (img->io->fixed_size)
    return -ENOTSUP;
  return io_allocated_size(img->io, bytes);
}
