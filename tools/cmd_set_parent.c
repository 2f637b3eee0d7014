/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool set-parent: repoint a differencing image whose parent moved
 * (vhd_set_parent). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdtool.h"

enum { OPT_IGNORE_ID = 256 };

static const struct option long_options[] = {
  {"ignore-id-mismatch", no_argument, NULL, OPT_IGNORE_ID},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
  const char *me = "set-parent";
  unsigned flags = 0;
  int c;

  while ((c = getopt_long(argc, argv, ":Uh", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_IGNORE_ID:
      flags |= VHD_SET_PARENT_IGNORE_ID;
      break;
    case 'h':
      print_command_help(&cmd_set_parent, stdout);
      return EXIT_OK;
    default: {
      int st;
      if (!open_option_or_error(me, c, argv, long_options, &st))
        return st;
      break;
    }
    }
  }
  if (optind >= argc)
    return usage_error(me, "missing FILE");
  if (optind + 1 >= argc)
    return usage_error(me, "missing NEW_PARENT");
  if (optind + 2 < argc)
    return usage_error(me, "unexpected argument '%s'", argv[optind + 2]);
  const char *child = argv[optind], *parent = argv[optind + 1];

  int r = vhd_set_parent(child, parent, flags);
  if (r < 0) {
    int st = fail_lib(child, r);
    if (r == -EINVAL && !(flags & VHD_SET_PARENT_IGNORE_ID) &&
        (strstr(vhd_last_error(), "parent_unique_id") ||
         strstr(vhd_last_error(), "parent_linkage")))
      fprintf(stderr, "vhdtool: if %s really holds the parent's content, "
              "--ignore-id-mismatch accepts it\n", parent);
    return st;
  }
  printf("%s: parent set to %s\n", child, parent);
  return EXIT_OK;
}

const struct command cmd_set_parent = {
  .name = "set-parent",
  .summary = "Point a differencing image at its parent's new place.",
  .synopsis = "vhdtool set-parent [--ignore-id-mismatch] FILE NEW_PARENT",
  .help =
    "Options:\n"
    "      --ignore-id-mismatch  accept a parent whose identity differs from the\n"
    "                            one FILE recorded, and record the new one\n"
    "  -h, --help                show this help\n"
    "\n"
    "Rewrites FILE's parent locators (relative and absolute paths) and, for\n"
    "VHD, the parent's name and time stamp, so FILE opens from any directory.\n"
    "NEW_PARENT must be the image FILE was made from: its identity (VHD unique\n"
    "id, VHDX data write GUID) must be the one FILE recorded. A copy of the\n"
    "parent keeps the identity; a parent that was written to, converted or\n"
    "recreated does not, and reads through FILE would be wrong unless its\n"
    "content is still the same. Only FILE is changed; NEW_PARENT is only read.\n"
    "\n"
    "Exit status: 0 on success, 1 on any failure (nothing is changed when the\n"
    "parent is refused).\n",
  .run = run,
  .open_options = true,
};
