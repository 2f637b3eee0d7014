/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool merge: fold a differencing chain into its parent or an ancestor
 * (vhd_merge), or flatten it into a new image (vhd_convert of the child).
 * The tool only names what will change; the library does the work. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdtool.h"

enum { OPT_INTO = 256, OPT_OUTPUT };

static const struct option long_options[] = {
  {"into", required_argument, NULL, OPT_INTO},
  {"output", required_argument, NULL, OPT_OUTPUT},
  {"format", required_argument, NULL, 'f'},
  {"progress", no_argument, NULL, 'p'},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/* The images a merge into ancestor (NULL: the parent) removes, the child
 * first, as a comma-separated list; and the ancestor's path. */
static int describe_merge(vhd_image *child, const char *ancestor, char *removed, size_t len,
                          char *into, size_t into_len)
{
  removed[0] = '\0';
  int anc = ancestor ? vhd_chain_layer_of(child, ancestor) : 1;
  int depth = 0;
  for (vhd_image *l = child; l; l = vhd_get_parent(l), depth++) {
    struct vhd_info in;
    int r = vhd_get_info(l, &in);
    if (r < 0)
      return r;
    if (depth > 0 && depth == anc) {
      snprintf(into, into_len, "%s", in.path);
      return 0;
    }
    size_t used = strlen(removed);
    snprintf(removed + used, len - used, "%s%s", used ? ", " : "", in.path);
  }
  return 1;   /* not in the chain: vhd_merge gives the reason */
}

static int flatten(vhd_image *child, const char *out, bool have_format,
                   enum vhd_format format, struct progress *prog)
{
  struct vhd_info info;
  int r = vhd_get_info(child, &info);
  if (r < 0)
    return fail_lib(info.path, r);
  if (vhd_chain_layer_of(child, out) >= 0)
    return fail("%s: is a layer of %s's chain; choose another output", out, info.path);
  if (path_exists(out))
    return fail("%s: file exists", out);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = have_format ? format : info.format;
  if (p.format == VHD_FORMAT_RAW) {
    p.type = VHD_TYPE_NONE;
  } else if (p.format == info.format) {
    /* Keep the layout of the source where the format allows it. */
    p.block_size = info.block_size;
    p.logical_sector_size = info.logical_sector_size;
  }
  r = vhd_convert(child, out, &p, 0, progress_update, prog);
  progress_finish(prog, r == 0);
  if (r == -ECANCELED && interrupted())
    return fail("%s: flattening interrupted", out);
  if (r < 0)
    return fail_lib(out, r);
  return EXIT_OK;
}

static int run(int argc, char **argv)
{
  const char *me = "merge";
  const char *into = NULL, *output = NULL;
  bool have_format = false, progress_wanted = false;
  enum vhd_format format = VHD_FORMAT_AUTO;
  int c;
  while ((c = getopt_long(argc, argv, ":Uf:ph", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_INTO:
      into = optarg;
      break;
    case OPT_OUTPUT:
      output = optarg;
      break;
    case 'f':
      if (!parse_format(optarg, &format))
        return usage_error(me, "unknown output format '%s' (use vhd, vhdx or raw)", optarg);
      have_format = true;
      break;
    case 'p':
      progress_wanted = true;
      break;
    case 'h':
      print_command_help(&cmd_merge, stdout);
      return EXIT_OK;
    default: {
      int st;
      if (!open_option_or_error(me, c, argv, long_options, &st))
        return st;
      break;
    }
    }
  }
  if (argc - optind < 1)
    return usage_error(me, "missing CHILD");
  if (argc - optind > 1)
    return usage_error(me, "unexpected argument '%s'", argv[optind + 1]);
  if (into && output)
    return usage_error(me, "--into and --output exclude each other");
  if (have_format && !output)
    return usage_error(me, "-f chooses the format of --output; a merge keeps the "
                       "ancestor's format");
  const char *child_path = argv[optind];

  vhd_image *child;
  int r = open_with_options(child_path, VHD_OPEN_RDONLY, &child);
  if (r < 0)
    return fail_lib(child_path, r);
  struct vhd_info info;
  r = vhd_get_info(child, &info);
  if (r < 0) {
    int st = fail_lib(child_path, r);
    vhd_close(child);
    return st;
  }
  struct progress prog;
  install_interrupt_handler();
  progress_init(&prog, progress_wanted, info.virtual_size);
  if (output) {
    int st = flatten(child, output, have_format, format, &prog);
    vhd_close(child);
    return st;
  }

  char removed[4096], target[4096] = "";
  describe_merge(child, into, removed, sizeof removed, target, sizeof target);
  vhd_close(child);
  r = vhd_merge(child_path, into, 0, progress_update, &prog);
  progress_finish(&prog, r == 0);
  if (r == -ECANCELED && interrupted())
    return fail("%s: merge interrupted; every image is intact, run the same merge again "
                "to finish it", child_path);
  if (r < 0)
    return fail_lib(child_path, r);
  printf("Merged into %s; removed %s.\n", target, removed);
  return EXIT_OK;
}

const struct command cmd_merge = {
  .name = "merge",
  .summary = "Merge a differencing image into its parent or an ancestor.",
  .synopsis = "vhdtool merge [-p] CHILD [--into ANCESTOR]\n"
              "       vhdtool merge [-p] [-f vhd|vhdx|raw] CHILD --output NEW",
  .help =
    "Writes the data CHILD and the images between it and ANCESTOR hold into\n"
    "ANCESTOR (default: CHILD's parent), so ANCESTOR reads as CHILD did, then\n"
    "removes CHILD and those intermediate images, as Hyper-V's Merge-VHD does:\n"
    "they no longer describe differences against the changed ancestor. Any\n"
    "other child of ANCESTOR is made stale by the merge.\n"
    "\n"
    "An interrupted merge (a crash, a kill, Ctrl-C) leaves every image readable\n"
    "and CHILD reading as before; run the same command again to finish it.\n"
    "\n"
    "Options:\n"
    "      --into ANCESTOR   merge into this image of CHILD's chain\n"
    "      --output NEW      write the flattened chain to a new image NEW\n"
    "                        instead; no existing image changes\n"
    "  -f, --format FMT      format of NEW: vhd, vhdx or raw (default CHILD's)\n"
    "  -p, --progress        show a progress bar (only when standard error is\n"
    "                        a terminal)\n"
    "  -h, --help            show this help\n",
  .run = run,
  .open_options = true,
};
