/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool compact: give back the space of blocks that read as zeros, in
 * place. The work is vhd_compact(); this reports what it gained. */
#include <getopt.h>
#include <stdio.h>

#include "vhdtool.h"

static const struct option long_options[] = {
  {"progress", no_argument, NULL, 'p'},
  OUTPUT_LONG_OPTIONS,
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static uint64_t gained(uint64_t before, uint64_t after)
{
  return before > after ? before - after : 0;
}

static void print_text(const char *path, const struct vhd_compact_result *res)
{
  char a[64], b[64], g[64];
  printf("%s: %llu block%s freed\n", path, (unsigned long long)res->blocks_freed,
         res->blocks_freed == 1 ? "" : "s");
  format_size(res->file_size_before, a, sizeof a);
  format_size(res->file_size_after, b, sizeof b);
  printf("file size: %s -> %s (%s less)\n", a, b,
         format_size(gained(res->file_size_before, res->file_size_after), g, sizeof g));
  format_size(res->host_bytes_before, a, sizeof a);
  format_size(res->host_bytes_after, b, sizeof b);
  printf("disk size: %s -> %s (%s freed)\n", a, b,
         format_size(gained(res->host_bytes_before, res->host_bytes_after), g, sizeof g));
}

static void print_json(const char *path, const struct vhd_compact_result *res)
{
  struct json_writer w;
  json_init(&w, stdout);
  json_begin_object(&w);
  json_member_string(&w, "filename", path);
  json_member_uint(&w, "blocks-freed", res->blocks_freed);
  json_member_uint(&w, "file-size-before", res->file_size_before);
  json_member_uint(&w, "file-size-after", res->file_size_after);
  json_member_uint(&w, "actual-size-before", res->host_bytes_before);
  json_member_uint(&w, "actual-size-after", res->host_bytes_after);
  json_member_uint(&w, "bytes-freed", gained(res->host_bytes_before, res->host_bytes_after));
  json_end_object(&w);
  json_finish(&w);
}

static int run(int argc, char **argv)
{
  const char *me = "compact";
  bool json = false, progress_wanted = false;
  int c;

  while ((c = getopt_long(argc, argv, ":Uph", long_options, NULL)) != -1) {
    switch (c) {
    case 'p':
      progress_wanted = true;
      break;
    case OPT_OUTPUT_JSON:
    case OPT_OUTPUT_FORMAT:
      if (!take_output_option(me, c, optarg, &json))
        return EXIT_FAIL;
      break;
    case 'h':
      print_command_help(&cmd_compact, stdout);
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

  /* The library counts work in blocks; the bar shows the rate in bytes
   * of virtual disk, like convert's. */
  struct progress prog;
  struct vhd_compact_result res;
  install_interrupt_handler();
  progress_init(&prog, progress_wanted, info.virtual_size);
  r = vhd_compact(img, 0, progress_update, &prog, &res);
  progress_finish(&prog, r == 0);

  /* The image is valid after a failure or a cancel; say so. */
  int st = close_in_place(path, img, r,
                          "compact interrupted (the image is valid; run compact again to finish)");
  if (st == EXIT_OK) {
    if (json)
      print_json(path, &res);
    else
      print_text(path, &res);
  }
  return st;
}

const struct command cmd_compact = {
  .name = "compact",
  .summary = "Free the blocks that read as zeros and give their space back.",
  .synopsis = "vhdtool compact [-p] [--json | --output=json|human] FILE",
  .help =
    "Works in place on a dynamic or differencing image; what the disk reads is\n"
    "unchanged. VHD: the blocks are dropped, later blocks move down and the\n"
    "file is cut. VHDX: the blocks become unallocated (or ZERO where a parent\n"
    "holds data), their space is punched out and free space at the end cut.\n"
    "Fixed images have nothing to free; raw files get holes over zero ranges.\n"
    "In a differencing image a block of zeros over non-zero parent data stays\n"
    "(VHD) or becomes a ZERO block (VHDX): dropping it would show the parent.\n"
    "\n"
    "Options:\n"
    "  -p, --progress   show a progress bar (only when standard error is a\n"
    "                   terminal)\n"
    "      --json       print the result as one JSON object\n"
    "      --output=json|human\n"
    "                   the same as --json, or the default text\n"
    "  -h, --help       show this help\n"
    "\n"
    "An interrupted compact (Ctrl-C, a crash) leaves a valid image with the\n"
    "same content; running compact again finishes the job.\n",
  .run = run,
  .open_options = true,
};
