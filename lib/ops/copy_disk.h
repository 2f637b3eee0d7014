/* SPDX-License-Identifier: BSD-3-Clause */
/* Copying one virtual disk into another (vhd_convert's data phase). */
#ifndef LIBVHD_OPS_COPY_DISK_H
#define LIBVHD_OPS_COPY_DISK_H

#include "vhd.h"

/* Copy the first size bytes of src into dst, which must read as zeros
 * (a new image). Ranges src reports as zeros are never read, and data that
 * reads as zeros is never written, so dst stays thin. Reading and writing
 * overlap (the caller's thread and a helper share the pieces), and the
 * output is written in the source's order. progress, when non-NULL, is
 * called from the caller's thread. */
int copy_disk(vhd_image *src, vhd_image *dst, uint64_t size,
              vhd_progress_fn progress, void *opaque);

#endif
