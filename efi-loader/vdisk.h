/* SPDX-License-Identifier: BSD-3-Clause */
/* The virtual disk: an EFI_BLOCK_IO_PROTOCOL (revision 3) over an open
 * libvhd image, on a handle of its own whose device path is
 * VenHw(vhdboot GUID, instance)/VenMsg(disk GUID). The path is never a
 * file-path child of the host partition: LoadImage would then resolve
 * files against the host's file system (docs/efi-loader.md).
 *
 * ReadBlocks/WriteBlocks run at up to TPL_CALLBACK, often while the
 * firmware's FAT driver holds its lock, so they only ever reach the host
 * through the partition's DiskIo (efi_io.c), never through a file system. */
#ifndef VHDBOOT_VDISK_H
#define VHDBOOT_VDISK_H

#include "config.h"
#include "efi_env.h"
#include "vhd.h"

struct overlay;

struct vdisk {
  EFI_BLOCK_IO_PROTOCOL bio;
  EFI_BLOCK_IO_MEDIA media;
  EFI_HANDLE handle;
  EFI_DEVICE_PATH *dp;
  vhd_image *img;
  enum boot_mode mode;
  struct overlay *ov;
  uint32_t block_size;
  bool installed;
  unsigned errors_shown;
};

/* img stays owned by the caller. instance makes the device path unique
 * (e.g. a CRC of the host partition and image path). */
int vdisk_create(vhd_image *img, enum boot_mode mode, uint32_t instance, struct vdisk **out);
/* Install the protocols and connect drivers recursively (partition and
 * file system drivers bind). */
int vdisk_install(struct vdisk *vd);
/* Disconnect and uninstall. false when the firmware refuses (a driver
 * still holds the disk): then it must stay allocated, and its image open. */
bool vdisk_uninstall(struct vdisk *vd);
void vdisk_free(struct vdisk *vd);

#endif
