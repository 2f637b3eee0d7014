/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool boot-prepare: make an image's file ready for vhdboot.efi's rw
 * mode on a host file system the firmware cannot write. The work is
 * vhd_boot_prepare(); this reports what it wrote. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "vhdtool.h"

enum { OPT_RESERVE = 256 };

static const struct option long_options[] = {
  {"reserve", required_argument, NULL, OPT_RESERVE},
  {"progress", no_argument, NULL, 'p'},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static void print_result(const char *path, const struct vhd_boot_prepare_result *res)
{
  char a[64], b[64], w[64], h[64];
  format_size(res->bytes_written, w, sizeof w);
  format_size(res->holes_filled, h, sizeof h);
  if (res->uses_reserve)
    printf("%s: reserve %s -> %s free, %s of zeros written (%s into holes or unwritten "
           "extents)\n", path, format_size(res->reserve_free_before, a, sizeof a),
           format_size(res->reserve_free_after, b, sizeof b), w, h);
  else
    printf("%s: no reserve needed (a fixed or raw image, or a block device), %s of zeros "
           "written into holes or unwritten extents\n", path, h);
}

/* The library counts bytes to write, known once it has looked: the bar's
 * rate scale follows. */
static int on_progress(void *opaque, uint64_t done, uint64_t total)
{
  ((struct progress *)opaque)->bytes_total = total;
  return progress_update(opaque, done, total);
}

static int run(int argc, char **argv)
{
  const char *me = "boot-prepare";
  bool progress_wanted = false;
  uint64_t reserve = 0;
  int c;

  while ((c = getopt_long(argc, argv, ":Uph", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_RESERVE:
      if (!parse_size_option(me, "--reserve", optarg, &reserve))
        return EXIT_FAIL;
      if (reserve == 0)
        return usage_error(me, "--reserve must be more than 0 (leave it out for the "
                           "default)");
      break;
    case 'p':
      progress_wanted = true;
      break;
    case 'h':
      print_command_help(&cmd_boot_prepare, stdout);
      return EXIT_OK;
    default: {
      int st;
      if (!open_option_or_error(me, c, argv, long_options, &st))
        return st;
      break;
    }
    }
  }
  const char *path = single_file_operand(me, argc, argv, optind);
  if (!path)
    return EXIT_FAIL;

  vhd_image *img;
  struct vhd_info info;
  int r = open_image(path, VHD_OPEN_RDWR, &img, &info);
  if (r != EXIT_OK)
    return r;

  struct progress prog;
  struct vhd_boot_prepare_result res;
  install_interrupt_handler();
  progress_init(&prog, progress_wanted, 0);
  r = vhd_boot_prepare(img, reserve, on_progress, &prog, &res);
  progress_finish(&prog, r == 0);

  int st = close_in_place(path, img, r, "boot-prepare interrupted (the image is valid; run "
                                        "it again to finish)");
  if (st == EXIT_OK)
    print_result(path, &res);
  return st;
}

const struct command cmd_boot_prepare = {
  .name = "boot-prepare",
  .summary = "Give an image file written room for vhdboot.efi's rw mode.",
  .synopsis = "vhdtool boot-prepare [-p] [--reserve SIZE] FILE",
  .help =
    "Run on the host before booting FILE with vhdboot.efi in rw mode from a\n"
    "file system the firmware cannot write (exFAT, ext4, NTFS). The loader\n"
    "writes through the host disk, so it needs blocks the host file system\n"
    "holds as written: every hole and unwritten (preallocated) range of the\n"
    "file is written with zeros (the content does not change), and a dynamic\n"
    "or differencing image gets a reserve for new blocks at the end of its\n"
    "file, written with zeros, then its record. A big enough reserve is kept;\n"
    "a smaller one grows. Parents are never written; on a block device there\n"
    "is nothing to do. Prints what it did in one line.\n"
    "\n"
    "Options:\n"
    "      --reserve SIZE  free room for new blocks (default: what vhdboot.efi\n"
    "                      asks for: four blocks or 64 MiB, whichever is\n"
    "                      larger, at most what the disk could still need)\n"
    "  -p, --progress      show a progress bar (only when standard error is a\n"
    "                      terminal)\n"
    "  -h, --help          show this help\n"
    "\n"
    "An interrupted run leaves a valid image; running it again finishes the\n"
    "job. 'vhdtool info' shows the reserve, 'vhdtool compact' gives it back.\n",
  .run = run,
  .open_options = true,
};
