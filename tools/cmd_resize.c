/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool resize: change an image's virtual size. The work (and its crash
 * safety) is vhd_resize(); this parses the size, absolute or relative. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "vhdtool.h"

enum { OPT_SHRINK = 256, OPT_FORCE };

static const struct option long_options[] = {
  {"shrink", no_argument, NULL, OPT_SHRINK},
  {"force", no_argument, NULL, OPT_FORCE},
  {"progress", no_argument, NULL, 'p'},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/* "-1G" would be taken for an option: pull such words out of argv before
 * getopt sees them. Returns the word, or NULL. */
static char *take_negative_size(int *argc, char **argv)
{
  for (int i = 1; i < *argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      return NULL;
    if (argv[i][0] == '-' && argv[i][1] >= '0' && argv[i][1] <= '9') {
      char *word = argv[i];
      memmove(&argv[i], &argv[i + 1], (size_t)(*argc - i) * sizeof *argv);
      (*argc)--;
      return word;
    }
  }
  return NULL;
}

/* SIZE, +SIZE or -SIZE against the current size. */
static bool parse_new_size(const char *me, const char *text, uint64_t current, uint64_t *out)
{
  const char *why;
  uint64_t n;
  char sign = text[0] == '+' || text[0] == '-' ? text[0] : 0;
  if (!parse_size(text + (sign != 0), &n, &why)) {
    usage_error(me, "invalid SIZE '%s': %s", text, why);
    return false;
  }
  if (sign == '+' && n > UINT64_MAX - current) {
    usage_error(me, "invalid SIZE '%s': the result is too large", text);
    return false;
  }
  if (sign == '-' && n >= current) {
    usage_error(me, "invalid SIZE '%s': the disk is only %llu bytes", text,
                (unsigned long long)current);
    return false;
  }
  *out = sign == '+' ? current + n : sign == '-' ? current - n : n;
  return true;
}

static int run(int argc, char **argv)
{
  const char *me = "resize";
  bool shrink = false, force = false, progress_wanted = false;
  const char *size_text = take_negative_size(&argc, argv);
  int c;

  while ((c = getopt_long(argc, argv, ":Uph", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_SHRINK:
      shrink = true;
      break;
    case OPT_FORCE:
      force = true;
      break;
    case 'p':
      progress_wanted = true;
      break;
    case 'h':
      print_command_help(&cmd_resize, stdout);
      return EXIT_OK;
    default: {
      int st;
      if (!open_option_or_error(me, c, argv, long_options, &st))
        return st;
      break;
    }
    }
  }
  int want = size_text ? 1 : 2;
  if (argc - optind < want)
    return usage_error(me, argc - optind == 0 ? "missing FILE and SIZE" : "missing SIZE");
  if (argc - optind > want)
    return usage_error(me, "unexpected argument '%s'", argv[optind + want]);
  const char *path = argv[optind];
  if (!size_text)
    size_text = argv[optind + 1];
  if (force && !shrink)
    return usage_error(me, "--force only matters with --shrink");

  vhd_image *img;
  struct vhd_info info;
  uint64_t new_size;
  int r = open_image(path, VHD_OPEN_RDWR, &img, &info);
  if (r != EXIT_OK)
    return r;
  if (!parse_new_size(me, size_text, info.virtual_size, &new_size)) {
    vhd_close(img);
    return EXIT_FAIL;
  }
  if (new_size < info.virtual_size && !shrink) {
    char a[64], b[64];
    vhd_close(img);
    return fail("%s: %s is smaller than the current size %s; use --shrink to shrink", path,
                format_size_exact(new_size, a, sizeof a),
                format_size_exact(info.virtual_size, b, sizeof b));
  }

  unsigned flags = (shrink ? VHD_RESIZE_SHRINK : 0) | (force ? VHD_RESIZE_FORCE : 0);
  struct progress prog;
  install_interrupt_handler();
  progress_init(&prog, progress_wanted, new_size);
  r = vhd_resize(img, new_size, flags, progress_update, &prog);
  progress_finish(&prog, r == 0);
  int r2 = vhd_close(img);
  if (r == 0)
    r = r2;
  if (r < 0) {
    if (r == -ECANCELED && interrupted())
      return fail("%s: resize interrupted; the image keeps its old size", path);
    return fail_lib(path, r);
  }

  /* Read the result back: a VHD whose creator sizes disks by geometry
   * rounds up to a CHS product. */
  if (open_with_options(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, &img) == 0) {
    struct vhd_info after;
    if (vhd_get_info(img, &after) == 0)
      new_size = after.virtual_size;
    vhd_close(img);
  }
  char a[64], b[64];
  printf("%s: resized from %s to %s\n", path,
         format_size_exact(info.virtual_size, a, sizeof a),
         format_size_exact(new_size, b, sizeof b));
  return EXIT_OK;
}

const struct command cmd_resize = {
  .name = "resize",
  .summary = "Change the virtual size of an image (grow, or shrink with --shrink).",
  .synopsis = "vhdtool resize [--shrink [--force]] [-p] FILE SIZE",
  .help =
    "SIZE is the new virtual size, or +SIZE / -SIZE relative to the current one\n"
    "(bytes, or a K, M, G, T suffix); it is rounded up to the logical sector size.\n"
    "A VHD whose creator sizes disks by their CHS geometry (Virtual PC, old\n"
    "qemu, most others except Hyper-V and Windows) is rounded up to a CHS\n"
    "product so that every reader sees the same size.\n"
    "\n"
    "Growing always works: the new area reads as zeros. A dynamic VHD whose\n"
    "table has no room for the new blocks moves the blocks that follow the\n"
    "table to the end of the file first. Works on fixed, dynamic and\n"
    "differencing VHD and VHDX images and on raw files.\n"
    "\n"
    "Options:\n"
    "      --shrink     allow a smaller size; refused when any layer of the image\n"
    "                   holds data past the new end\n"
    "      --force      with --shrink: shrink even then (that data is lost)\n"
    "  -p, --progress   show a progress bar while blocks move (only when\n"
    "                   standard error is a terminal)\n"
    "  -h, --help       show this help\n"
    "\n"
    "A crash or kill at any point leaves the old or the new size and an image\n"
    "that opens; running the same command again finishes the job.\n",
  .run = run,
  .open_options = true,
};
