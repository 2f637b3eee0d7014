/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting the boot program inside the virtual disk. */
#ifndef VHDBOOT_BOOT_H
#define VHDBOOT_BOOT_H

#include "sb_policy.h"
#include "vdisk.h"

/* The file system on the virtual disk (a partition the firmware's drivers
 * bound to after vdisk_install) that holds path: its handle, and a full
 * device path to the file for LoadImage. Partitions are tried in
 * partition-number order. image names the image in messages. */
int boot_find(struct vdisk *vd, const char *path, const char *image, EFI_HANDLE *fs,
              EFI_DEVICE_PATH **file_dp);

/* The boot program found by boot_find, and how to start it. */
struct boot_program {
  EFI_HANDLE fs;            /* its file system on the virtual disk */
  EFI_DEVICE_PATH *file_dp; /* its full device path */
  const char *path;         /* its path inside the image, for messages */
  const char *image;        /* the image, for messages */
};

/* Reads the program into memory, has it verified as sb says (shim's
 * Verify under SB_SHIM) and loads it from that buffer with LoadImage,
 * which the firmware checks against db/dbx under Secure Boot. 0 and the
 * loaded image, or -errno with one message (a refusal by Secure Boot says
 * so). */
int boot_load(const struct boot_program *prog, const struct sb_check *sb, EFI_HANDLE *child);

/* StartImage with args (UTF-8, may be empty) as the program's load
 * options; returns the program's exit status. */
EFI_STATUS boot_run(EFI_HANDLE child, const char *args);

#endif
