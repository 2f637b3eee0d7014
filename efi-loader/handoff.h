/* SPDX-License-Identifier: BSD-3-Clause */
/* The record for the operating system: which host disk, partition and
 * file the virtual disk came from, and where every layer's bytes lie on
 * the host disk, published as volatile EFI variables (boot-service and
 * runtime access, gone at reset) under the project's vendor GUID.
 * The format is in docs/efi-handoff.md. */
#ifndef VHDBOOT_HANDOFF_H
#define VHDBOOT_HANDOFF_H

#include "config.h"
#include "host_volume.h"
#include "vhd.h"

/* Variables: VhdBootHandoff holds bytes [0, 4096) of the record,
 * VhdBootHandoff1 the next 4096, and so on. */
#define HANDOFF_CHUNK 4096u

int handoff_publish(const struct host_volume *vol, vhd_image *img, enum boot_mode mode,
                    uint32_t block_size);
/* Remove the variables again (the boot program returned). */
void handoff_withdraw(void);

#endif
