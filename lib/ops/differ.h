/* SPDX-License-Identifier: BSD-3-Clause */
/* Walking two virtual disks side by side for the ranges where they read
 * differently: vhd_compare stops at the first, vhd_convert onto a base
 * copies each. */
#ifndef LIBVHD_OPS_DIFFER_H
#define LIBVHD_OPS_DIFFER_H

#include "vhd.h"

/* The unit differences are found in: qemu-img compare's sector, so both
 * tools name the same first offset. */
#define DIFFER_SECTOR 512u

/* Called for each run of sectors where a reads differently from b, in
 * order; data holds a's bytes of the run. Non-zero stops the walk, which
 * returns that value. */
typedef int (*differ_fn)(void *opaque, uint64_t offset, uint32_t length,
                         const uint8_t *data);

/* Walk [0, size) of a and b (size no larger than either). Ranges both
 * report as zeros are not read; where one does, only the other is read.
 * progress counts bytes looked at. 0 when the walk ended, a differ_fn's
 * non-zero value, or -errno. */
int differ_walk(vhd_image *a, vhd_image *b, uint64_t size, differ_fn fn, void *opaque,
                vhd_progress_fn progress, void *progress_opaque);

/* The first sector of [0, size) where a and b differ in *found, or
 * UINT64_MAX when they read the same. 0 or -errno. */
int differ_first(vhd_image *a, vhd_image *b, uint64_t size, uint64_t *found,
                 vhd_progress_fn progress, void *progress_opaque);

/* The first sector of [offset, offset+length) of img that does not read
 * as zeros, or UINT64_MAX when none does (blocks reported as zeros are not
 * read); < 0 on error (as -errno in *err). Used for the part of the larger
 * disk the smaller one lacks. */
int differ_first_nonzero(vhd_image *img, uint64_t offset, uint64_t length,
                         uint64_t *found);

#endif
