/* SPDX-License-Identifier: BSD-3-Clause */
/* The host partition that holds the image files: its block device, the
 * extent mapper over it, and (when the firmware has a driver for its file
 * system) its EFI_SIMPLE_FILE_SYSTEM. */
#ifndef VHDBOOT_HOST_VOLUME_H
#define VHDBOOT_HOST_VOLUME_H

#include "efi_env.h"
#include "fsmap/fsmap.h"

struct host_volume {
  EFI_HANDLE handle;
  EFI_BLOCK_IO *bio;
  EFI_DISK_IO *dio;
  UINT32 media_id;
  uint64_t size;                 /* bytes */
  EFI_FILE_IO_INTERFACE *sfs;    /* NULL: the firmware cannot read it */
  struct fsmap_volume map;
  bool mapped;                   /* map is mounted (FAT or exFAT) */
  EFI_DEVICE_PATH *dp;           /* owned copy */
  /* Where the partition is on its disk, from the device path's HD() node. */
  bool has_hd;
  HARDDRIVE_DEVICE_PATH hd;
  uint32_t disk_block_size;
  uint64_t start_bytes;          /* offset of the partition on the disk */
  uint8_t disk_guid[16];         /* GPT disk GUID (zeros when MBR or unknown) */
  char name[48];                 /* "partition 2 (FAT32)", for messages */
};

/* Pick the host partition: spec "" is the loader's own volume (dev); a
 * number N is partition N of the same disk; a GUID is the GPT partition
 * with that unique GUID on the same disk. */
int host_volume_select(EFI_HANDLE dev, const char *spec, struct host_volume *out);
void host_volume_close(struct host_volume *v);

/* Reading and writing bytes of the partition through DiskIo: safe inside
 * BlockIo callbacks (no file system driver involved). */
int host_volume_read(struct host_volume *v, uint64_t off, void *buf, size_t len);
int host_volume_write(struct host_volume *v, uint64_t off, const void *buf, size_t len);
int host_volume_flush(struct host_volume *v);

#endif
