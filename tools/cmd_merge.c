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

/* The images the library's plan removes, the child first, as a
 * comma-separated list. */
static void list_removed(const vhd_merge_plan *plan, char *out, size_t len)
{
  out[0] = '\0';
  const char *path;
  for (unsigned i = 0; (path = vhd_merge_plan_removed(plan, i)); i++) {
    size_t used = strlen(out);
    snprintf(out + used, len - used, "%s%s", i ? ", " : "", path);
  }
}

/* Merge into ancestor (NULL: the parent); total: the child's virtual size
 * for the progress bar (0 when only an interrupted merge's removal is
 * left). */
static int merge(const char *child_path, const char *into, bool progress_wanted,
                 uint64_t total)
{
  vhd_merge_plan *plan;
  int r = vhd_merge_plan_get(child_path, into, &plan);
  if (r < 0)
    return fail_lib(child_path, r);
  struct progress prog;
  install_interrupt_handler();
  progress_init(&prog, progress_wanted, total);
  r = vhd_merge(child_path, into, 0, progress_update, &prog);
  progress_finish(&prog, r == 0);
  int st = EXIT_OK;
  if (r == -ECANCELED && interrupted())
    st = fail("%s: merge interrupted; every image is intact, run the same merge again "
              "to finish it", child_path);
  else if (r < 0)
    st = fail_lib(child_path, r);
  if (st == EXIT_OK) {
    char removed[4096];
    list_removed(plan, removed, sizeof removed);
    printf("Merged into %s; removed %s.\n", vhd_merge_plan_ancestor(plan), removed);
  }
  vhd_merge_plan_free(plan);
  return st;
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

  /* A merge interrupted once its child was removed is finished from the
   * record the library keeps beside the child (vhd_merge_plan_get). */
  if (!output && !path_exists(child_path))
    return merge(child_path, into, progress_wanted, 0);
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
  if (!output) {
    vhd_close(child);
    return merge(child_path, into, progress_wanted, info.virtual_size);
  }
  struct progress prog;
  install_interrupt_handler();
  progress_init(&prog, progress_wanted, info.virtual_size);
  int st = flatten(child, output, have_format, format, &prog);
  vhd_close(child);
  return st;
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
