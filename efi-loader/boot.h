/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting the boot program inside the virtual disk. */
#ifndef VHDBOOT_BOOT_H
#define VHDBOOT_BOOT_H

#include "vdisk.h"

/* The file system on the virtual disk (a partition the firmware's drivers
 * bound to after vdisk_install) that holds path, as a full device path to
 * the file for LoadImage. Partitions are tried in partition-number order.
 * image names the image in messages. */
int boot_find(struct vdisk *vd, const char *path, const char *image,
              EFI_DEVICE_PATH **file_dp);

/* LoadImage + StartImage, with args (UTF-8, may be empty) as the
 * program's load options. Returns the program's exit status, or a load
 * failure (with a message in the error slot and *loaded false). */
EFI_STATUS boot_start(EFI_DEVICE_PATH *file_dp, const char *args, const char *path,
                      bool *loaded);

#endif
