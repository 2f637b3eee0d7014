/* SPDX-License-Identifier: BSD-3-Clause */
/* Room for growth in rw mode (dynamic and differencing images).
 *
 * New blocks go at the end of the image file, but the file cannot grow
 * once the virtual disk is installed (that would need the host's file
 * system driver). So before installing it, while the firmware's FAT driver
 * may still be used, the loader grows the host file by a reserve and ends
 * it with the reserve record (lib/reserve.h has the layout). The core
 * recognises the record whenever the file is opened, here and in the
 * operating system, and hands the reserve out to new blocks
 * (lib/io/reserve.c); the next boot reuses what is left.
 */
#ifndef VHDBOOT_RESERVE_H
#define VHDBOOT_RESERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "vhd.h"

struct efi_file;
struct host_volume;

/* Make sure img's file f has `want` bytes of free reserve, growing it
 * through the firmware's FAT driver if needed (open_image.c calls it only
 * on a FAT volume the firmware can write; the default `want` is
 * lib/reserve.h's reserve_default_bytes). img is open read-only and
 * must be closed and reopened afterwards (this changes the file's size and
 * clusters). tail: 512 for VHD (the footer copy), else 0. *grown gets the
 * bytes added. */
int reserve_ensure(struct host_volume *vol, struct efi_file *f, vhd_image *img, uint64_t want,
                   uint32_t tail, uint64_t *grown);

#endif
