/* SPDX-License-Identifier: BSD-3-Clause */
/* Device path helpers (gnu-efi's libefi has these, but the loader does not
 * link libefi; see efi_env.h). Paths returned are vhd_malloc'ed. */
#ifndef VHDBOOT_DEVPATH_H
#define VHDBOOT_DEVPATH_H

#include <stdbool.h>
#include <stddef.h>
#include "efi_env.h"

#define DP_LEN(n) ((size_t)((n)->Length[0] | (n)->Length[1] << 8))
#define DP_NEXT(n) ((EFI_DEVICE_PATH *)((UINT8 *)(n) + DP_LEN(n)))
#define DP_IS_END(n) ((n)->Type == END_DEVICE_PATH_TYPE)

/* Bytes of the path including its end node. */
size_t dp_size(const EFI_DEVICE_PATH *dp);
EFI_DEVICE_PATH *dp_dup(const EFI_DEVICE_PATH *dp);
/* The last node before the end node, or NULL for an empty path. */
EFI_DEVICE_PATH *dp_last_node(const EFI_DEVICE_PATH *dp);
/* A copy without the last node. */
EFI_DEVICE_PATH *dp_parent(const EFI_DEVICE_PATH *dp);
/* True when every node of prefix (without its end) starts path. */
bool dp_starts_with(const EFI_DEVICE_PATH *path, const EFI_DEVICE_PATH *prefix);
/* path + a file path node for file (UTF-8, '\' separators) + end. */
EFI_DEVICE_PATH *dp_append_file(const EFI_DEVICE_PATH *path, const char *file);
/* Text form via the firmware's DevicePathToText protocol, into buf (UTF-8);
 * "(device path)" when the firmware has no such protocol. */
const char *dp_text(const EFI_DEVICE_PATH *dp, char *buf, size_t len);

#endif
