/* SPDX-License-Identifier: BSD-3-Clause */
/* The libvhd I/O backend (struct vhd_io_ops) of the loader: an image file
 * on the host partition.
 *
 * MAPPED files are served from the host partition's DiskIo through the
 * extents the mapper found (fsmap/), which is safe at any time, including
 * inside our own BlockIo callbacks. MEMORY files were read whole through
 * the firmware's file system before the disk was installed (the fallback
 * when the mapper does not know the host file system); they are read-only.
 *
 * A file cannot grow past its mapped clusters (`capacity`): room for new
 * blocks is the reserve the loader made before installing the disk
 * (reserve.c), which the core's reserve view (lib/io/reserve.c) hands out
 * inside the file. See docs/efi-loader.md, "Writes and the reserve".
 */
#ifndef VHDBOOT_EFI_IO_H
#define VHDBOOT_EFI_IO_H

#include "host_volume.h"
#include "vhd.h"

enum efi_file_mode { EFI_FILE_MAPPED, EFI_FILE_MEMORY };

struct efi_file {
  struct efi_file *next;         /* every open file, newest first */
  struct host_volume *vol;
  char *path;                    /* "\DIR\NAME.VHD", also the vhd_io name */
  enum efi_file_mode mode;
  struct fsmap_extents ext;      /* MAPPED */
  uint8_t *data;                 /* MEMORY */
  uint64_t size;                 /* what the core sees */
  uint64_t phys_size;            /* bytes of the host file */
  uint64_t readable;             /* past it the host holds no data (exFAT
                                    ValidDataLength): reads give zeros */
  uint64_t capacity;             /* writes must end at or before it */
  bool writable;
};

/* Open path (UTF-8, '\' or '/' separators, absolute on vol) as a vhd_io
 * named by its path. ram: read it whole into memory instead of mapping
 * it. flags: VHD_IO_RDONLY or VHD_IO_RDWR (MAPPED only). Parents opened
 * by the core (open_related) inherit the choice. */
int efi_file_open(struct host_volume *vol, const char *path, unsigned flags, bool ram,
                  vhd_io **out);

/* The open file whose vhd_io is named name (a layer's info.path). */
struct efi_file *efi_file_find(const char *name);

/* true and *where set when some byte of the mapped file is not written
 * data on the host (an ext4 unwritten extent, a hole, or space past an
 * NTFS/exFAT valid data length): the loader must not write there. */
bool efi_file_first_unwritten(const struct efi_file *f, uint64_t *where);

/* Bytes of the host file regardless of the logical size. */
int efi_file_read_phys(struct efi_file *f, uint64_t off, void *buf, size_t len);

/* Normalise path: '/' -> '\', "." and ".." resolved, a leading '\'.
 * dir: the directory a relative path is relative to (NULL: the root). */
char *efi_path_normalise(const char *dir, const char *path);

#endif
