/* SPDX-License-Identifier: BSD-3-Clause */
/* The firmware's tables and the protocol GUIDs the loader uses. The loader
 * does not link gnu-efi's libefi (whose byte-at-a-time memcpy and global
 * state it does not want); it uses gnu-efi's headers and its relocation
 * start-up code only. efi_main (main.c) fills these in before anything
 * else runs. */
#ifndef VHDBOOT_EFI_ENV_H
#define VHDBOOT_EFI_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <efi.h>

extern EFI_HANDLE efi_image;
extern EFI_SYSTEM_TABLE *efi_st;
extern EFI_BOOT_SERVICES *efi_bs;
extern EFI_RUNTIME_SERVICES *efi_rt;

extern EFI_GUID guid_block_io;
extern EFI_GUID guid_disk_io;
extern EFI_GUID guid_device_path;
extern EFI_GUID guid_loaded_image;
extern EFI_GUID guid_simple_fs;
extern EFI_GUID guid_file_info;
extern EFI_GUID guid_fs_info;
extern EFI_GUID guid_rng;
extern EFI_GUID guid_dp_to_text;

/* The project's vendor GUID: the hand-off variable's namespace and the
 * virtual disk's VenHw device path node. */
extern EFI_GUID guid_vhdboot;
/* The VenMsg node under it (a messaging node above the HD() nodes, which
 * tools such as systemd-boot look for). */
extern EFI_GUID guid_vhdboot_disk;

/* The current TPL (raising to HIGH_LEVEL returns the old one). */
EFI_TPL efi_current_tpl(void);

/* An EFI_STATUS as an errno value (for the core's error convention) and
 * as words for messages. */
int efi_errno(EFI_STATUS st);
const char *efi_status_text(EFI_STATUS st);
/* The other way, for what the loader returns to the firmware. */
EFI_STATUS efi_status_from_errno(int errnum);

#endif
