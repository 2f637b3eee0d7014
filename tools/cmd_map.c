/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool map: where the virtual disk's bytes live (vhd_map), in the shape
 * of `qemu-img map`, so scripts and eyes used to it read ours too. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "vhdtool.h"

enum { OPT_START = 256, OPT_MAX_LENGTH };

static const struct option long_options[] = {
  OUTPUT_LONG_OPTIONS,
  {"start-offset", required_argument, NULL, OPT_START},
  {"max-length", required_argument, NULL, OPT_MAX_LENGTH},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/* The layers of the chain, top first, to name each extent's file. */
#define MAX_LAYERS 64

struct printer {
  bool json;
  unsigned count;
  const char *file[MAX_LAYERS];
  unsigned layers;
};

/* One entry as qemu-img map --output=json prints it: "present" says a layer
 * holds or defines the bytes, "offset" appears only when they lie in one
 * contiguous place of that layer's file. */
static void print_json_entry(const struct vhd_extent *e)
{
  printf("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %u, "
         "\"present\": %s, \"zero\": %s, \"data\": %s",
         e->offset, e->length, e->depth, e->layer >= 0 ? "true" : "false",
         (e->status & VHD_STATUS_ZERO) ? "true" : "false",
         (e->status & VHD_STATUS_DATA) ? "true" : "false");
  if (e->host_offset != UINT64_MAX)
    printf(", \"offset\": %" PRIu64, e->host_offset);
  putchar('}');
}

/* The human map lists only the ranges that hold data, as qemu-img's does;
 * zeros and unallocated ranges are the gaps between them. */
static void print_human_entry(const struct printer *p, const struct vhd_extent *e)
{
  if ((e->status & (VHD_STATUS_DATA | VHD_STATUS_ZERO)) != VHD_STATUS_DATA)
    return;
  const char *file = e->depth < p->layers ? p->file[e->depth] : "";
  if (e->host_offset == UINT64_MAX)
    printf("%#-16" PRIx64 "%#-16" PRIx64 "%-16s%s\n", e->offset, e->length, "-", file);
  else
    printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e->offset, e->length,
           e->host_offset, file);
}

static int on_extent(void *opaque, const struct vhd_extent *e)
{
  struct printer *p = opaque;
  if (p->json) {
    fputs(p->count ? ",\n" : "[", stdout);
    print_json_entry(e);
  } else {
    print_human_entry(p, e);
  }
  p->count++;
  return 0;
}

static int run(int argc, char **argv)
{
  const char *me = "map";
  struct printer p = {0};
  uint64_t start = 0, max_length = 0;
  bool have_max = false;
  int c;

  while ((c = getopt_long(argc, argv, ":Uh", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_OUTPUT_JSON:
    case OPT_OUTPUT_FORMAT:
      if (!take_output_option(me, c, optarg, &p.json))
        return EXIT_FAIL;
      break;
    case OPT_START:
      if (!parse_size_option(me, "start-offset", optarg, &start))
        return EXIT_FAIL;
      break;
    case OPT_MAX_LENGTH:
      if (!parse_size_option(me, "max-length", optarg, &max_length))
        return EXIT_FAIL;
      have_max = true;
      break;
    case 'h':
      print_command_help(&cmd_map, stdout);
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
  int r = open_with_options(path, VHD_OPEN_RDONLY, &img);
  if (r < 0)
    return fail_lib(path, r);
  for (vhd_image *l = img; l && p.layers < MAX_LAYERS; l = vhd_get_parent(l)) {
    struct vhd_info info;
    p.file[p.layers++] = vhd_get_info(l, &info) == 0 ? info.path : "";
  }
  struct vhd_info info;
  r = vhd_get_info(img, &info);
  int st = EXIT_OK;
  if (r < 0) {
    st = fail_lib(path, r);
  } else if (start >= info.virtual_size) {
    /* Nothing to map, as qemu-img prints an empty list. */
    if (start > info.virtual_size)
      st = fail("%s: start offset %llu is beyond the virtual size %llu", path,
                (unsigned long long)start, (unsigned long long)info.virtual_size);
  } else {
    uint64_t length = info.virtual_size - start;
    if (have_max && max_length < length)
      length = max_length;
    if (!p.json)
      printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    if (length)
      r = vhd_map(img, start, length, on_extent, &p);
    if (r < 0)
      st = fail_lib(path, r);
  }
  if (st == EXIT_OK && p.json)
    fputs(p.count ? "]\n" : "[]\n", stdout);
  vhd_close(img);
  return st;
}

const struct command cmd_map = {
  .name = "map",
  .summary = "Show where the virtual disk's data lies: allocated, zero, which layer.",
  .synopsis = "vhdtool map [--json | --output=json|human] [--start-offset OFFSET]\n"
              "                   [--max-length LENGTH] FILE",
  .help =
    "Options:\n"
    "      --json                 print the extents as JSON (the same as\n"
    "                             --output=json)\n"
    "      --output=human|json    choose the output format (default human)\n"
    "      --start-offset OFFSET  start at this virtual offset (default 0)\n"
    "      --max-length LENGTH    map at most this many bytes\n"
    "  -h, --help                 show this help\n"
    "\n"
    "The image is only read, through its whole chain. The extents are in the\n"
    "shape of 'qemu-img map': JSON gives each run's start, length, depth (the\n"
    "chain layer: 0 is FILE, 1 its parent, ...), present (a layer stores or\n"
    "defines the bytes), zero (they read as zeros), data (stored in a layer's\n"
    "file) and offset (where in that layer's file, when one contiguous place).\n"
    "The human output lists the ranges that hold data and the file they are in.\n"
    "docs/vhdtool.md says where the answers differ from qemu-img's.\n",
  .run = run,
  .open_options = true,
};
