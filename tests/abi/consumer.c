/* SPDX-License-Identifier: BSD-3-Clause */
/* A program that uses the public API only, built against include/vhd.h
 * (or a baseline header of tests/abi/baseline) and linked with the
 * installed kind of libvhd.a or libvhd.so: an image is made in memory,
 * written, read back, and its info (a struct the library fills) checked. */
#include <stdio.h>
#include <string.h>

#include "vhd.h"

int main(void)
{
  vhd_io *io;
  vhd_image *img;
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = 8u << 20;
  if (vhd_io_new_memory(NULL, 0, "consumer.vhdx", VHD_IO_RDWR, &io) < 0 ||
      vhd_create_io(io, &p, &img) < 0) {
    fprintf(stderr, "create: %s\n", vhd_last_error());
    return 1;
  }
  char buf[512] = "libvhd consumer", back[512];
  if (vhd_pwrite(img, buf, sizeof buf, 4096) < 0 || vhd_pread(img, back, sizeof back, 4096) < 0 ||
      memcmp(buf, back, sizeof buf) != 0) {
    fprintf(stderr, "write/read: %s\n", vhd_last_error());
    return 1;
  }
  struct vhd_info info;
  if (vhd_get_info(img, &info) < 0 || info.format != VHD_FORMAT_VHDX ||
      info.virtual_size != p.size || info.logical_sector_size != 512) {
    fprintf(stderr, "info: %s\n", vhd_last_error());
    return 1;
  }
  printf("libvhd %s\n", vhd_version());
  return vhd_close(img) < 0;
}
