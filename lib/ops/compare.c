/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_compare: do two virtual disks read the same, and where do they first
 * differ. qemu-img compare's rules, so the two tools agree: a disk's
 * extra length counts only where it holds something other than zeros,
 * unless the comparison is strict. */
#include "differ.h"
#include "error.h"
#include "image.h"
#include "sized.h"
#include "util/arith.h"

int compare_images(vhd_image *a, vhd_image *b, unsigned flags, vhd_progress_fn progress,
                   void *opaque, struct vhd_compare_result *result)
{
  vhd_error_clear();
  *result = (struct vhd_compare_result){ .offset = UINT64_MAX };
  /* In whole sectors, as qemu-img sees a raw file's length: a raw file of
   * an odd length and its VHD copy are the same size. */
  result->size_differs = align_up(a->virtual_size, DIFFER_SECTOR) !=
                         align_up(b->virtual_size, DIFFER_SECTOR);
  if (result->size_differs && (flags & VHD_COMPARE_STRICT)) {
    result->differ = 1;
    return 0;
  }
  uint64_t common = min_u64(a->virtual_size, b->virtual_size);
  uint64_t first;
  int r = differ_first(a, b, common, &first, progress, opaque);
  if (r < 0)
    return r;
  if (first == UINT64_MAX && a->virtual_size != b->virtual_size) {
    vhd_image *longer = a->virtual_size > b->virtual_size ? a : b;
    r = differ_first_nonzero(longer, common, longer->virtual_size - common, &first);
    if (r < 0)
      return r;
  }
  result->offset = first;
  result->differ = first != UINT64_MAX;
  return 0;
}
