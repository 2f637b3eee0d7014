/* SPDX-License-Identifier: BSD-3-Clause */
/* Opening the configured image with libvhd: choosing the backend (mapped
 * extents or memory), the mode, and in rw mode making room for growth. */
#ifndef VHDBOOT_OPEN_IMAGE_H
#define VHDBOOT_OPEN_IMAGE_H

#include "config.h"
#include "efi_io.h"
#include "vhd.h"

struct boot_image {
  vhd_image *img;
  struct efi_file *top;
  struct vhd_info info;
  enum boot_mode mode;
  bool ram;              /* held in memory (backend=ram, or not mappable) */
  uint64_t grown;        /* bytes the host file grew by (rw reserve) */
};

int boot_image_open(struct host_volume *vol, const struct config *cfg, struct boot_image *out);

#endif
