/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool snapshot: a new differencing image over an existing one. The
 * locators (relative and absolute) are the library's business (vhd_create);
 * the tool only picks the format and a layout that suits the parent. */
#include <getopt.h>
#include <stdio.h>

#include "vhdtool.h"

static const struct option long_options[] = {
  {"format", required_argument, NULL, 'f'},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
  const char *me = "snapshot";
  bool have_format = false;
  enum vhd_format format = VHD_FORMAT_AUTO;
  int c;
  while ((c = getopt_long(argc, argv, ":Uf:h", long_options, NULL)) != -1) {
    switch (c) {
    case 'f':
      if (!parse_format(optarg, &format) || format == VHD_FORMAT_RAW)
        return usage_error(me, "invalid format '%s' (use vhd or vhdx)", optarg);
      have_format = true;
      break;
    case 'h':
      print_command_help(&cmd_snapshot, stdout);
      return EXIT_OK;
    default: {
      int st;
      if (!open_option_or_error(me, c, argv, long_options, &st))
        return st;
      break;
    }
    }
  }
  if (argc - optind < 2)
    return usage_error(me, argc - optind == 0 ? "missing PARENT and CHILD" : "missing CHILD");
  if (argc - optind > 2)
    return usage_error(me, "unexpected argument '%s'", argv[optind + 2]);
  const char *parent_path = argv[optind];
  const char *child_path = argv[optind + 1];

  /* The parent's chain must open: a snapshot of a broken chain is broken. */
  vhd_image *parent;
  int r = open_with_options(parent_path, VHD_OPEN_RDONLY, &parent);
  if (r < 0)
    return fail_lib(parent_path, r);
  struct vhd_info info;
  r = vhd_get_info(parent, &info);
  vhd_close(parent);
  if (r < 0)
    return fail_lib(parent_path, r);
  if (!have_format && info.format == VHD_FORMAT_RAW)
    return fail("%s: is a raw image; choose the snapshot's format with -f vhd", parent_path);

  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = have_format ? format : info.format;
  p.type = VHD_TYPE_DIFFERENCING;
  p.parent = parent_path;
  if (p.format == info.format) {
    /* The parent's block and sector sizes: the child's blocks then cover
     * the same ranges, and a VHDX child must share the sector size. */
    p.block_size = info.block_size;
    p.logical_sector_size = info.logical_sector_size;
    p.physical_sector_size = info.physical_sector_size;
  }
  r = vhd_create(child_path, &p, NULL);
  if (r < 0)
    return fail_lib(child_path, r);
  return EXIT_OK;
}

const struct command cmd_snapshot = {
  .name = "snapshot",
  .summary = "Create a differencing image over an existing image.",
  .synopsis = "vhdtool snapshot [-f vhd|vhdx] PARENT CHILD",
  .help =
    "CHILD starts empty and reads as PARENT; writes go to CHILD only. PARENT\n"
    "must not be written afterwards (that would change what CHILD reads; a\n"
    "VHDX child then refuses to open).\n"
    "\n"
    "CHILD records PARENT's path both relative to CHILD's directory and\n"
    "absolute, so the pair may be moved together, or CHILD alone, and still\n"
    "open.\n"
    "\n"
    "Options:\n"
    "  -f, --format FMT  vhd or vhdx (default: PARENT's format). A VHD child may\n"
    "                    have a VHDX or raw parent; a VHDX child needs a VHDX\n"
    "                    parent\n"
    "  -h, --help        show this help\n",
  .run = run,
  .open_options = true,
};
