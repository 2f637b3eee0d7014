/* vhd_get_layout: where an image's data lies, for `vhdtool info`. The
 * driver counts its blocks and how many are out of place; the smallest
 * size a shrink could reach comes from block status through the chain, so
 * data a parent holds counts too. */
#include "driver.h"
#include "error.h"
#include "image.h"

int vhd_get_layout(vhd_image *img, struct vhd_layout *layout)
{
  int r = 0;

  vhd_error_clear();
  memset(layout, 0, sizeof *layout);
  if (img->drv->layout) {
    r = image_lock(img, false);
    if (r == 0)
      r = image_unlock(img, img->drv->layout(img, layout));
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
