/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool create: make a new fixed, dynamic or differencing image. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "vhdtool.h"

enum { OPT_SECTOR_SIZE = 256, OPT_FORCE, OPT_VPC_COMPAT, OPT_PHYSICAL_SECTOR_SIZE };

static const struct option long_options[] = {
  {"format", required_argument, NULL, 'f'},
  {"type", required_argument, NULL, 't'},
  {"size", required_argument, NULL, 's'},
  {"block-size", required_argument, NULL, 'b'},
  {"parent", required_argument, NULL, 'p'},
  {"sector-size", required_argument, NULL, OPT_SECTOR_SIZE},
  {"physical-sector-size", required_argument, NULL, OPT_PHYSICAL_SECTOR_SIZE},
  {"force", no_argument, NULL, OPT_FORCE},
  {"vpc-compat", no_argument, NULL, OPT_VPC_COMPAT},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
  const char *me = "create";
  struct vhd_create_params p;
  bool have_format = false, have_type = false, have_size = false, force = false;
  uint64_t size = 0, block_size = 0;
  int c;

  vhd_create_params_init(&p);
  while ((c = getopt_long(argc, argv, ":f:t:s:b:p:h", long_options, NULL)) != -1) {
    switch (c) {
    case 'f':
      if (!parse_format(optarg, &p.format))
        return usage_error(me, "unknown format '%s' (use vhd, vhdx or raw)", optarg);
      have_format = true;
      break;
    case 't':
      if (!parse_type(optarg, &p.type))
        return usage_error(me, "unknown type '%s' (use fixed, dynamic or differencing)",
                           optarg);
      have_type = true;
      break;
    case 's':
      if (!parse_size_option(me, "size", optarg, &size))
        return EXIT_FAIL;
      have_size = true;
      break;
    case 'b':
      if (!parse_size_option(me, "block size", optarg, &block_size))
        return EXIT_FAIL;
      if (block_size == 0 || block_size > UINT32_MAX)
        return usage_error(me, "invalid block size '%s': must be between 1 byte and 4 GiB",
                           optarg);
      break;
    case 'p':
      p.parent = optarg;
      break;
    case OPT_SECTOR_SIZE:
      if (!parse_sector_size(me, "sector-size", optarg, &p.logical_sector_size))
        return EXIT_FAIL;
      break;
    case OPT_PHYSICAL_SECTOR_SIZE:
      if (!parse_sector_size(me, "physical-sector-size", optarg, &p.physical_sector_size))
        return EXIT_FAIL;
      break;
    case OPT_FORCE:
      force = true;
      break;
    case OPT_VPC_COMPAT:
      p.flags |= VHD_CREATE_CHS_ROUND;
      break;
    case 'h':
      print_command_help(&cmd_create, stdout);
      return EXIT_OK;
    default:
      return option_error(me, c, argv, long_options);
    }
  }
  const char *path = single_file_operand(me, argc, argv, optind);
  if (!path)
    return EXIT_FAIL;

  if (!have_format && !format_from_extension(path, true, &p.format))
    return usage_error(me, "cannot tell the format from the name '%s': "
                       "use -f vhd|vhdx or a .vhd/.vhdx extension", path);

  /* The parent decides the type unless the user said otherwise, and a
   * differencing image without a parent (or the reverse) makes no sense. */
  if (!have_type)
    p.type = p.parent ? VHD_TYPE_DIFFERENCING : VHD_TYPE_DYNAMIC;
  if (p.type == VHD_TYPE_DIFFERENCING && !p.parent)
    return usage_error(me, "a differencing image needs a parent (-p PARENT)");
  if (p.parent && p.type != VHD_TYPE_DIFFERENCING)
    return usage_error(me, "-p PARENT makes a differencing image, not a %s one",
                       vhd_type_name(p.type));
  if (p.format == VHD_FORMAT_RAW) {
    if (have_type)
      return usage_error(me, "raw images have no type; drop -t");
    if (p.parent)
      return usage_error(me, "raw images cannot have a parent");
    if (block_size)
      return usage_error(me, "raw images have no blocks; drop -b");
    p.type = VHD_TYPE_NONE;
  }
  if (!have_size && !p.parent)
    return usage_error(me, "missing -s SIZE");
  if (have_size && size == 0)
    return usage_error(me, "the size must be more than 0 bytes");
  p.size = size;
  p.block_size = (uint32_t)block_size;

  /* Checked up front for a clear message; the library also refuses to
   * replace a file without VHD_CREATE_OVERWRITE, which closes the race. */
  if (force)
    p.flags |= VHD_CREATE_OVERWRITE;
  else if (path_exists(path))
    return fail("%s: file exists (use --force to replace it)", path);

  int r = vhd_create(path, &p, NULL);
  if (r < 0)
    return fail_lib(path, r);
  return EXIT_OK;
}

const struct command cmd_create = {
  .name = "create",
  .summary = "Create a new image.",
  .synopsis = "vhdtool create [-f vhd|vhdx|raw] [-t fixed|dynamic|differencing] [-s SIZE]\n"
              "                      [-b BLOCK_SIZE] [-p PARENT] [--sector-size 512|4096]\n"
              "                      [--physical-sector-size 512|4096]\n"
              "                      [--vpc-compat] [--force] FILE",
  .help =
    "Options:\n"
    "  -f, --format FMT       vhd, vhdx or raw; default: from FILE's extension\n"
    "                         (.vhd/.avhd: vhd, .vhdx/.avhdx: vhdx, .raw/.img: raw)\n"
    "  -t, --type TYPE        fixed, dynamic or differencing; default dynamic,\n"
    "                         or differencing when -p is given\n"
    "  -s, --size SIZE        virtual size; a differencing image defaults to its\n"
    "                         parent's\n"
    "  -b, --block-size SIZE  block size of a dynamic or differencing image\n"
    "                         (default: VHD 2 MiB, VHDX 32 MiB)\n"
    "  -p, --parent PARENT    make a differencing image over PARENT\n"
    "      --sector-size N    logical sector size, 512 or 4096 (VHDX only;\n"
    "                         default 512, or the parent's for a child)\n"
    "      --physical-sector-size N\n"
    "                         physical sector size, 512 or 4096 (VHDX only: VHD\n"
    "                         is always 512; default 4096, or the parent's)\n"
    "      --vpc-compat       VHD: round the size up to a whole CHS geometry, as\n"
    "                         Virtual PC does\n"
    "      --force            replace FILE if it exists\n"
    "  -h, --help             show this help\n"
    "\n"
    "SIZE and BLOCK_SIZE take bytes or a K, M, G, T suffix (powers of 1024).\n",
  .run = run,
};
