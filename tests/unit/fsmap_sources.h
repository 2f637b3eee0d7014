/* SPDX-License-Identifier: BSD-3-Clause */
/* The UEFI loader's extent mapper compiled into a host test: every module,
 * so the dispatch in fsmap.c links (see test_efi_extents.c). */
#include "../../efi-loader/fsmap/fsmap.c"
#include "../../efi-loader/fsmap/fsmap_exfat.c"
#include "../../efi-loader/fsmap/fsmap_ext.c"
#include "../../efi-loader/fsmap/fsmap_ext_dir.c"
#include "../../efi-loader/fsmap/fsmap_ext_map.c"
#include "../../efi-loader/fsmap/fsmap_fat.c"
#include "../../efi-loader/fsmap/fsmap_ntfs.c"
#include "../../efi-loader/fsmap/fsmap_ntfs_attr.c"
#include "../../efi-loader/fsmap/fsmap_ntfs_index.c"
