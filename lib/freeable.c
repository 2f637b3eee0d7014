/* SPDX-License-Identifier: BSD-3-Clause */
/* The compact rule. A block that reads as zeros through this layer can be
 * dropped only when what lies below reads as zeros too; otherwise its
 * zeros are hiding parent data and dropping it would show that data. */
#include "freeable.h"

#include "driver.h"
#include "util/zero.h"
#include "util/arith.h"

int block_freeable(struct vhd_image *img, uint64_t off, uint64_t len, uint8_t *buf,
                   size_t buf_len, enum freeable *out)
{
  *out = FREEABLE_NO;
  for (uint64_t done = 0; done < len;) {
    size_t n = (size_t)min_u64(buf_len, len - done);
    int r = img->drv->read(img, buf, n, off + done);
    if (r < 0)
      return r;
    if (!buffer_is_zero(buf, n))
      return 0;
    done += n;
  }
  bool zero;
  int r = below_reads_zero(img, off, len, buf, buf_len, &zero);
  if (r == 0)
    *out = zero ? FREEABLE_ABSENT : FREEABLE_ZERO;
  return r;
}

int below_reads_zero(struct vhd_image *img, uint64_t off, uint64_t len, uint8_t *buf,
                     size_t buf_len, bool *zero)
{
  /* A base image has nothing below: zeros there are plain zeros. */
  *zero = true;
  if (img->type != VHD_TYPE_DIFFERENCING)
    return 0;
  for (uint64_t done = 0; done < len;) {
    size_t n = (size_t)min_u64(buf_len, len - done);
    int r = image_read_parent(img, buf, n, off + done);
    if (r < 0)
      return r;
    if (!buffer_is_zero(buf, n)) {
      *zero = false;
      return 0;
    }
    done += n;
  }
  return 0;
}
