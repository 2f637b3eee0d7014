/* SPDX-License-Identifier: BSD-3-Clause */
/* The host file system through the firmware's EFI_SIMPLE_FILE_SYSTEM.
 *
 * Only ever used BEFORE the virtual disk is installed: EDK2's FAT driver
 * guards every volume with one lock, and calling it from inside our
 * BlockIo (which the same driver calls while holding that lock) would
 * leave the system at TPL_CALLBACK. Paths are UTF-8 with '\' separators. */
#ifndef VHDBOOT_SFS_H
#define VHDBOOT_SFS_H

#include "efi_env.h"

/* Whole small file (config). -ENOENT when absent. *data is vhd_malloc'ed
 * with a NUL after the content. */
int sfs_read_small(EFI_FILE_IO_INTERFACE *sfs, const char *path, size_t max,
                   char **data, size_t *size);
/* Size of a file. */
int sfs_file_size(EFI_FILE_IO_INTERFACE *sfs, const char *path, uint64_t *size);
/* Read len bytes at off of a file. */
int sfs_read_at(EFI_FILE_IO_INTERFACE *sfs, const char *path, uint64_t off, void *buf,
                size_t len);
/* Read the whole file into one vhd_malloc allocation. */
int sfs_read_all(EFI_FILE_IO_INTERFACE *sfs, const char *path, uint8_t **data,
                 uint64_t *size);
/* Grow path to new_size and write `len` bytes at new_size - len, then
 * flush and close: afterwards the clusters are allocated on disk and the
 * directory entry says new_size. */
int sfs_grow(EFI_FILE_IO_INTERFACE *sfs, const char *path, uint64_t new_size,
             const void *tail, size_t len);
/* Free bytes of the volume. */
int sfs_free_space(EFI_FILE_IO_INTERFACE *sfs, uint64_t *bytes);

#endif
