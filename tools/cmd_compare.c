/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool compare: do two images read the same? The judging is
 * vhd_compare's; the tool prints what qemu-img compare prints, with its
 * exit statuses, so scripts written for one work with the other. */
#include <getopt.h>
#include <stdio.h>

#include "vhdtool.h"

/* qemu-img compare's exit statuses: 1 is "different", so every failure,
 * usage errors included, is 2. */
#define EXIT_EQUAL 0
#define EXIT_DIFFERENT 1
#define EXIT_ERROR 2

static const struct option long_options[] = {
  {"strict", no_argument, NULL, 's'},
  {"format", required_argument, NULL, 'f'},
  {"second-format", required_argument, NULL, 'F'},
  {"progress", no_argument, NULL, 'p'},
  {"quiet", no_argument, NULL, 'q'},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int compare(const char *path_a, enum vhd_format fa, const char *path_b,
                   enum vhd_format fb, unsigned flags, bool progress_wanted, bool quiet)
{
  vhd_image *a, *b;
  struct vhd_info ia, ib;
  if (open_source(path_a, fa, &a, &ia) != EXIT_OK)
    return EXIT_ERROR;
  if (open_source(path_b, fb, &b, &ib) != EXIT_OK) {
    vhd_close(a);
    return EXIT_ERROR;
  }
  struct vhd_compare_result res;
  struct progress prog;
  install_interrupt_handler();
  progress_init(&prog, progress_wanted, ia.virtual_size);
  int r = vhd_compare(a, b, flags, progress_update, &prog, &res);
  progress_finish(&prog, r == 0);
  int st;
  if (r < 0) {
    fail_lib(path_a, r);
    st = EXIT_ERROR;
  } else {
    if (res.size_differs && !quiet)
      printf("%s: Image size mismatch!\n", (flags & VHD_COMPARE_STRICT) ? "Strict mode"
                                                                        : "Warning");
    if (res.offset != UINT64_MAX && !quiet)
      printf("Content mismatch at offset %llu!\n", (unsigned long long)res.offset);
    else if (!res.differ && !quiet)
      printf("Images are identical.\n");
    st = res.differ ? EXIT_DIFFERENT : EXIT_EQUAL;
  }
  vhd_close(b);
  vhd_close(a);
  return st;
}

static int run(int argc, char **argv)
{
  const char *me = "compare";
  enum vhd_format fa = VHD_FORMAT_AUTO, fb = VHD_FORMAT_AUTO;
  unsigned flags = 0;
  bool progress_wanted = false, quiet = false;
  int c;
  while ((c = getopt_long(argc, argv, ":Usf:F:pqh", long_options, NULL)) != -1) {
    switch (c) {
    case 's':
      flags |= VHD_COMPARE_STRICT;
      break;
    case 'f':
    case 'F':
      if (!parse_format(optarg, c == 'f' ? &fa : &fb)) {
        usage_error(me, "unknown format '%s' (use vhd, vhdx or raw)", optarg);
        return EXIT_ERROR;
      }
      break;
    case 'p':
      progress_wanted = true;
      break;
    case 'q':
      quiet = true;
      break;
    case 'h':
      print_command_help(&cmd_compare, stdout);
      return EXIT_EQUAL;
    default: {
      int st;
      if (!open_option_or_error(me, c, argv, long_options, &st))
        return EXIT_ERROR;
      break;
    }
    }
  }
  if (argc - optind != 2) {
    if (argc - optind < 2)
      usage_error(me, argc - optind == 0 ? "missing A and B" : "missing B");
    else
      usage_error(me, "unexpected argument '%s'", argv[optind + 2]);
    return EXIT_ERROR;
  }
  return compare(argv[optind], fa, argv[optind + 1], fb, flags, progress_wanted, quiet);
}

const struct command cmd_compare = {
  .name = "compare",
  .summary = "Tell whether two images read the same, and where they first differ.",
  .synopsis = "vhdtool compare [-s] [-f FMT] [-F FMT] [-p] [-q] A B",
  .help =
    "A and B may be of any formats; each is read through its parents. Exit\n"
    "status, as qemu-img compare's: 0 the images read the same, 1 they differ\n"
    "(\"Content mismatch at offset N!\", N the start of the first differing\n"
    "512-byte sector), 2 an error. Ranges an image reports as zeros are not\n"
    "read.\n"
    "\n"
    "When the virtual sizes differ, the longer image's extra part must read\n"
    "as zeros (\"Warning: Image size mismatch!\" is printed either way).\n"
    "\n"
    "Options:\n"
    "  -s, --strict              images of different sizes differ\n"
    "  -f, --format FMT          take A as FMT: raw skips probing; vhd or vhdx\n"
    "                            make sure A is one\n"
    "  -F, --second-format FMT   the same for B\n"
    "  -p, --progress            show a progress bar (only when standard error is\n"
    "                            a terminal)\n"
    "  -q, --quiet               print nothing; the exit status tells\n"
    "  -h, --help                show this help\n",
  .run = run,
  .open_options = true,
};
