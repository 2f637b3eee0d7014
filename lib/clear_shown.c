/* SPDX-License-Identifier: BSD-3-Clause */
/* image_clear_shown: zeros over whatever a layer shows in a range, for a
 * resize that grows the disk over bytes it held before (past an old end). */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "util/arith.h"

int image_clear_shown(struct vhd_image *img, uint64_t from, uint64_t to)
{
  uint32_t ss = img->sector_size ? img->sector_size : 1;
  uint64_t parent_end = img->parent ? img->parent->virtual_size : 0;
  while (from < to) {
    enum layer_state st;
    uint64_t run;
    int r = img->drv->block_status(img, from, to - from, &st, &run);
    if (r < 0)
      return r;
    run = run ? min_u64(run, to - from) : to - from;
    bool hide = st == LAYER_DATA;
    if (st == LAYER_ABSENT && from < parent_end) {
      unsigned status;
      uint64_t prun;
      run = min_u64(run, parent_end - from);
      r = vhd_block_status(img->parent, from, run, &status, &prun, NULL);
      if (r < 0)
        return r;
      /* A parent's run may end inside one of this layer's sectors. */
      run = min_u64((min_u64(run, prun) + ss - 1) / ss * ss, to - from);
      hide = (status & VHD_STATUS_DATA) != 0;
    }
    if (hide && (r = image_zero_locked(img, from, run, 0)) < 0)
      return r;
    from += run;
  }
  return 0;
}
