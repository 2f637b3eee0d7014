/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool info: what an image is, as text or as one JSON object. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdtool.h"

/* Open path read-only with its chain. A differencing image whose parent
 * cannot be opened (moved, renamed, wrong id) is still worth describing,
 * so it is reopened alone and *parent_error keeps the reason (allocated). */
static int open_for_info(const char *path, vhd_image **img, char **parent_error)
{
  *parent_error = NULL;
  int r = open_with_options(path, VHD_OPEN_RDONLY, img);
  if (r == 0)
    return 0;

  char *why = strdup(vhd_last_error());
  if (open_with_options(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, img) < 0) {
    /* The image itself is unreadable: that is the error to show. */
    free(why);
    return fail_lib(path, r);
  }
  struct vhd_info info;
  if (vhd_get_info(*img, &info) == 0 && info.type == VHD_TYPE_DIFFERENCING) {
    *parent_error = why ? why : strdup("the parent image could not be opened");
    return 0;
  }
  /* Not a chain problem after all: report the original failure. */
  vhd_close(*img);
  *img = NULL;
  int st = (why && *why) ? fail("%s", why) : fail_lib(path, r);
  free(why);
  return st;
}

static bool is_sparse(enum vhd_disk_type t)
{
  return t == VHD_TYPE_DYNAMIC || t == VHD_TYPE_DIFFERENCING;
}

static void print_size_line(const char *label, uint64_t bytes)
{
  char buf[64];
  printf("%s: %s\n", label, format_size_exact(bytes, buf, sizeof buf));
}

static void print_text(const char *path, vhd_image *img, const struct vhd_info *in,
                       const struct vhd_layout *lay, const char *parent_error)
{
  char id[37];
  uint64_t actual;

  printf("image: %s\n", path);
  printf("file format: %s\n", vhd_format_name(in->format));
  if (in->format != VHD_FORMAT_RAW)
    printf("disk type: %s\n", vhd_type_name(in->type));
  print_size_line("virtual size", in->virtual_size);
  print_size_line("file size", in->file_size);
  if (vhd_get_host_bytes(img, &actual) == 0)
    print_size_line("disk size", actual);
  struct vhd_reserve rs;
  if (vhd_get_reserve(img, &rs) == 0) {
    char used[64], room[64];
    printf("reserve: %s free, image ends at %s (vhdboot rw room; 'vhdtool compact' gives it "
           "back)\n", format_size_exact(rs.free_bytes, room, sizeof room),
           format_size_exact(rs.logical_size, used, sizeof used));
  }
  if (is_sparse(in->type)) {
    print_size_line("block size", in->block_size);
    printf("allocated blocks: %llu of %llu\n", (unsigned long long)in->allocated_blocks,
           (unsigned long long)in->total_blocks);
    print_size_line("free block slots", in->free_slot_bytes);
    if (lay)
      printf("fragmentation: %u%% (%llu of %llu blocks not right after the one before)\n",
             lay->fragmentation_pct, (unsigned long long)lay->fragmented_blocks,
             (unsigned long long)lay->data_blocks);
  }
  if (lay)
    print_size_line("minimum size (shrink)", lay->min_size);
  printf("sector size: %u logical, %u physical\n", (unsigned)in->logical_sector_size,
         (unsigned)in->physical_sector_size);
  if (in->format == VHD_FORMAT_RAW)
    return;
  if (in->creator[0])
    printf("creator: %.*s\n", (int)sizeof in->creator, in->creator);
  format_id(in->format, in->id, id);
  printf("%s: %s\n", in->format == VHD_FORMAT_VHDX ? "virtual disk id" : "unique id", id);
  if (in->format == VHD_FORMAT_VHDX) {
    format_id(in->format, in->data_write_id, id);
    printf("data write id: %s\n", id);
  }
  if (in->format == VHD_FORMAT_VHD)
    printf("geometry (CHS): %u/%u/%u\n", (unsigned)in->cylinders, (unsigned)in->heads,
           (unsigned)in->sectors_per_track);
  if (in->type == VHD_TYPE_DIFFERENCING) {
    printf("parent: %s\n", in->parent_path ? in->parent_path : "(not found)");
    if (in->parent_hint)
      printf("parent locator: %s\n", in->parent_hint);
    format_id(in->format, in->parent_id, id);
    printf("parent id: %s\n", id);
    if (parent_error)
      printf("parent error: %s\n", parent_error);
  }
  if (in->warnings)
    printf("warnings while opening: %u (run 'vhdtool check')\n", in->warnings);
  if (vhd_get_parent(img)) {
    printf("chain:\n");
    for (vhd_image *l = img; l; l = vhd_get_parent(l)) {
      struct vhd_info li;
      if (vhd_get_info(l, &li) < 0)
        break;
      const char *t = vhd_type_name(li.type);
      printf("  %s (%s%s%s)\n", li.path, vhd_format_name(li.format), t ? ", " : "",
             t ? t : "");
    }
  }
}

static void print_json(const char *path, vhd_image *img, const struct vhd_info *in,
                       const struct vhd_layout *lay, const char *parent_error)
{
  struct json_writer w;
  char id[37];
  uint64_t actual;
  bool raw = in->format == VHD_FORMAT_RAW;

  json_init(&w, stdout);
  json_begin_object(&w);
  json_member_string(&w, "filename", path);
  json_member_string(&w, "format", vhd_format_name(in->format));
  json_member_string(&w, "type", raw ? NULL : vhd_type_name(in->type));
  json_member_uint(&w, "virtual-size", in->virtual_size);
  json_member_uint(&w, "file-size", in->file_size);
  if (vhd_get_host_bytes(img, &actual) == 0)
    json_member_uint(&w, "actual-size", actual);
  else
    json_member_null(&w, "actual-size");
  struct vhd_reserve rs;
  if (vhd_get_reserve(img, &rs) == 0) {
    json_key(&w, "reserve");
    json_begin_object(&w);
    json_member_uint(&w, "image-end", rs.logical_size);
    json_member_uint(&w, "free", rs.free_bytes);
    json_member_uint(&w, "trailer", rs.trailer_bytes + 512u);
    json_end_object(&w);
  } else {
    json_member_null(&w, "reserve");
  }
  if (is_sparse(in->type))
    json_member_uint(&w, "block-size", in->block_size);
  json_member_uint(&w, "logical-sector-size", in->logical_sector_size);
  json_member_uint(&w, "physical-sector-size", in->physical_sector_size);
  if (is_sparse(in->type)) {
    json_member_uint(&w, "allocated-blocks", in->allocated_blocks);
    json_member_uint(&w, "total-blocks", in->total_blocks);
    json_member_uint(&w, "free-slot-bytes", in->free_slot_bytes);
    if (lay) {
      json_member_uint(&w, "fragmented-blocks", lay->fragmented_blocks);
      json_member_uint(&w, "fragmentation-percent", lay->fragmentation_pct);
    }
  }
  if (lay)
    json_member_uint(&w, "min-size", lay->min_size);
  else
    json_member_null(&w, "min-size");
  if (raw || !in->creator[0]) {
    json_member_null(&w, "creator");
  } else {
    char creator[sizeof in->creator + 1];
    memcpy(creator, in->creator, sizeof in->creator);
    creator[sizeof in->creator] = '\0';
    json_member_string(&w, "creator", creator);
  }
  if (!raw) {
    format_id(in->format, in->id, id);
    json_member_string(&w, "id", id);
  }
  if (in->format == VHD_FORMAT_VHDX) {
    format_id(in->format, in->data_write_id, id);
    json_member_string(&w, "data-write-id", id);
  }
  if (in->format == VHD_FORMAT_VHD) {
    json_key(&w, "chs");
    json_begin_object(&w);
    json_member_uint(&w, "cylinders", in->cylinders);
    json_member_uint(&w, "heads", in->heads);
    json_member_uint(&w, "sectors-per-track", in->sectors_per_track);
    json_end_object(&w);
  }
  if (in->type == VHD_TYPE_DIFFERENCING) {
    json_member_string(&w, "parent", in->parent_path);
    json_member_string(&w, "parent-locator", in->parent_hint);
    format_id(in->format, in->parent_id, id);
    json_member_string(&w, "parent-id", id);
    json_member_bool(&w, "parent-found", parent_error == NULL);
    if (parent_error)
      json_member_string(&w, "parent-error", parent_error);
  }
  json_member_uint(&w, "warnings", in->warnings);
  json_member_uint(&w, "chain-depth", in->chain_depth);
  json_key(&w, "chain");
  json_begin_array(&w);
  unsigned layer = 0;
  for (vhd_image *l = img; l; l = vhd_get_parent(l), layer++) {
    struct vhd_info li;
    if (vhd_get_info(l, &li) < 0)
      break;
    json_begin_object(&w);
    json_member_string(&w, "filename", l == img ? path : li.path);
    json_member_string(&w, "format", vhd_format_name(li.format));
    json_member_string(&w, "type",
                       li.format == VHD_FORMAT_RAW ? NULL : vhd_type_name(li.type));
    json_member_uint(&w, "virtual-size", li.virtual_size);
    json_member_uint(&w, "layer", layer);   /* 0 = this image, as map counts */
    json_end_object(&w);
  }
  json_end_array(&w);
  json_end_object(&w);
  json_finish(&w);
}

enum { OPT_BACKING_CHAIN = 256 };

static const struct option long_options[] = {
  OUTPUT_LONG_OPTIONS,
  {"backing-chain", no_argument, NULL, OPT_BACKING_CHAIN},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
  const char *me = "info";
  bool json = false;
  int c;

  while ((c = getopt_long(argc, argv, ":Uh", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_OUTPUT_JSON:
    case OPT_OUTPUT_FORMAT:
      if (!take_output_option(me, c, optarg, &json))
        return EXIT_FAIL;
      break;
    case OPT_BACKING_CHAIN:
      break;  /* qemu-img's habit: the chain is always shown */
    case 'h':
      print_command_help(&cmd_info, stdout);
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
  char *parent_error;
  int st = open_for_info(path, &img, &parent_error);
  if (st != EXIT_OK)
    return st;

  struct vhd_info info;
  int r = vhd_get_info(img, &info);
  if (r < 0) {
    st = fail_lib(path, r);
  } else {
    /* A moved parent is worth a warning, not a failure: the child itself
     * is fine and its structure is what the user asked about. */
    if (parent_error)
      warn("%s (showing the image without its parent)", parent_error);
    /* Layout figures are extras: an image they cannot be worked out for
     * is still described (min-size null in JSON). */
    struct vhd_layout layout;
    const struct vhd_layout *lay = vhd_get_layout(img, &layout) == 0 ? &layout : NULL;
    if (json)
      print_json(path, img, &info, lay, parent_error);
    else
      print_text(path, img, &info, lay, parent_error);
  }
  free(parent_error);
  vhd_close(img);
  return st;
}

const struct command cmd_info = {
  .name = "info",
  .summary = "Show what an image is: format, type, sizes, ids, parent chain.",
  .synopsis = "vhdtool info [--json | --output=json|human] [--backing-chain] FILE",
  .help =
    "Options:\n"
    "      --json   print one JSON object (fields in docs/vhdtool.md)\n"
    "      --output=json|human\n"
    "               the same as --json, or the default text\n"
    "      --backing-chain\n"
    "               accepted for qemu-img's users: the parent chain is always\n"
    "               shown\n"
    "  -h, --help   show this help\n"
    "\n"
    "The image is opened read-only. When the parent of a differencing image\n"
    "cannot be opened, the image is shown on its own with a warning on standard\n"
    "error, and the exit status is still 0.\n",
  .run = run,
  .open_options = true,
};
