/* SPDX-License-Identifier: BSD-3-Clause */
/* Disk image formats this library cannot read, recognised by content so
 * that they are refused by name instead of being read as raw bytes. */
#ifndef LIBVHD_FOREIGN_H
#define LIBVHD_FOREIGN_H

#include "io.h"

/* Called when the raw driver wins the probe: 0 when io holds nothing
 * known, else -EMEDIUMTYPE (or the read's error) with a message naming the
 * format. Opening with the raw format given (VHD_OPEN_RAW, -f raw,
 * format=raw) never gets here, so the bytes stay readable on request. */
int foreign_refuse(vhd_io *io);

/* The first piece of a split Virtual PC image (no footer at the end, and
 * NAME.v01 beside it): refused by name. 0 otherwise. foreign_refuse does
 * this too; a file that probes as VHD by its footer copy needs it alone. */
int foreign_refuse_split(vhd_io *io);

/* Whether the first n bytes are a VMDK descriptor: a text file whose first
 * line that is neither blank nor a '#' comment is version=1, 2 or 3 (how
 * qemu recognises it too). The VMDK driver probes with it (hosted builds). */
bool foreign_vmdk_descriptor(const uint8_t *p, size_t n);

#endif
