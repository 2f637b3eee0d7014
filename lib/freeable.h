/* SPDX-License-Identifier: BSD-3-Clause */
/* Whether a block of one layer can give its space back without changing
 * what the image reads: the one rule compact applies, shared by the
 * format drivers so VHD and VHDX decide alike. */
#ifndef LIBVHD_FREEABLE_H
#define LIBVHD_FREEABLE_H

#include "image.h"

enum freeable {
  FREEABLE_NO,       /* the block reads as something other than zeros */
  FREEABLE_ABSENT,   /* reads as zeros, and so do the layers below: the
                        block may go (reads fall through to them) */
  FREEABLE_ZERO,     /* reads as zeros but hides non-zero parent data: only
                        a "this is zeros" state may replace it */
};

/* Look at [off, off+len) of img (one block, sector-aligned, inside the
 * virtual size) through img's driver, then, when that reads as zeros, at
 * the layers below. buf is scratch space of buf_len bytes (a multiple of
 * the sector size). The caller holds img's exclusive lock. */
int block_freeable(struct vhd_image *img, uint64_t off, uint64_t len, uint8_t *buf,
                   size_t buf_len, enum freeable *out);

/* Whether the layers below img read as zeros over [off, off+len) (true
 * for a base image). buf as for block_freeable. */
int below_reads_zero(struct vhd_image *img, uint64_t off, uint64_t len, uint8_t *buf,
                     size_t buf_len, bool *zero);

#endif
