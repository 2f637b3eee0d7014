/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool reset-id: a new unique id for an image in place (vhd_reset_id),
 * for clones made with cp that Hyper-V or a VDI pool would take for one
 * disk. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "vhdtool.h"

enum { OPT_FORCE = 256 };

static const struct option long_options[] = {
  {"force", no_argument, NULL, OPT_FORCE},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
  const char *me = "reset-id";
  unsigned flags = 0;
  int c;

  while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_FORCE:
      flags |= VHD_RESET_ID_FORCE;
      break;
    case 'h':
      print_command_help(&cmd_reset_id, stdout);
      return EXIT_OK;
    default:
      return option_error(me, c, argv, long_options);
    }
  }
  const char *path = single_file_operand(me, argc, argv, optind);
  if (!path)
    return EXIT_FAIL;

  int r = vhd_reset_id(path, flags);
  if (r == -EBUSY)
    return fail("%s (--force resets it anyway)", vhd_last_error());
  if (r < 0)
    return fail_lib(path, r);

  vhd_image *img;
  struct vhd_info info;
  int st = open_image(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, &img, &info);
  if (st != EXIT_OK)
    return st;
  char id[37];
  format_id(info.format, info.id, id);
  printf("%s: new id %s\n", path, id);
  vhd_close(img);
  return EXIT_OK;
}

const struct command cmd_reset_id = {
  .name = "reset-id",
  .summary = "Give an image a new unique id (for copies of one image).",
  .synopsis = "vhdtool reset-id [--force] FILE",
  .help =
    "Options:\n"
    "      --force   reset the id even when differencing images beside FILE\n"
    "                link to it (they lose their parent until 'vhdtool\n"
    "                set-parent --ignore-id-mismatch')\n"
    "  -h, --help    show this help\n"
    "\n"
    "VHD: the footer's unique id. VHDX: the virtual disk id (what a guest sees\n"
    "as the disk's identifier, and what Hyper-V's Set-VHD -ResetDiskIdentifier\n"
    "changes) and the data write id (what children link to). The content is\n"
    "unchanged. Children are looked for only in FILE's own directory.\n",
  .run = run,
};
