/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool convert: copy an image's virtual disk (through its whole chain)
 * into a new image of any format. The copy itself is vhd_convert(). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdtool.h"

enum { OPT_FORCE = 256, OPT_SYNC, OPT_DIRECT };

static const struct option long_options[] = {
  OUTPUT_PARAMS_LONG_OPTIONS,
  {"progress", no_argument, NULL, 'p'},
  {"force", no_argument, NULL, OPT_FORCE},
  {"sync", no_argument, NULL, OPT_SYNC},
  {"direct", no_argument, NULL, OPT_DIRECT},
  {"base", required_argument, NULL, 'B'},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/* Whether a failed conversion should remove what is at path: only a
 * regular file (a block device, or a link to one, was written in place and
 * is never removed), and not one that was there before and that the
 * conversion never touched (same inode, size and modification time). */
static bool ours_to_remove(const char *path, bool existed, const struct stat *before)
{
  struct stat now;
  if (lstat(path, &now) != 0 || !S_ISREG(now.st_mode))
    return false;
  return !existed ||
         !(now.st_ino == before->st_ino && now.st_dev == before->st_dev &&
           now.st_size == before->st_size &&
           now.st_mtim.tv_sec == before->st_mtim.tv_sec &&
           now.st_mtim.tv_nsec == before->st_mtim.tv_nsec);
}

static int run(int argc, char **argv)
{
  const char *me = "convert";
  struct output_choice o;
  bool progress_wanted = false, force = false;
  unsigned convert_flags = 0;   /* VHD_CONVERT_* */
  const char *base = NULL;
  int c;

  output_choice_init(&o);
  while ((c = getopt_long(argc, argv, ":UO:f:t:b:B:ph", long_options, NULL)) != -1) {
    switch (c) {
    case 'p':
      progress_wanted = true;
      break;
    case OPT_FORCE:
      force = true;
      break;
    case OPT_SYNC:
      convert_flags |= VHD_CONVERT_SYNC;
      break;
    case OPT_DIRECT:
      convert_flags |= VHD_CONVERT_DIRECT;
      break;
    case 'B':
      base = optarg;
      break;
    case 'h':
      print_command_help(&cmd_convert, stdout);
      return EXIT_OK;
    default: {
      int st, taken = output_option(me, c, optarg, &o);
      if (taken < 0)
        return EXIT_FAIL;
      if (!taken && !open_option_or_error(me, c, argv, long_options, &st))
        return st;
      break;
    }
    }
  }
  struct vhd_create_params p = o.p;
  bool have_format = o.have_format, have_type = o.have_type;
  enum vhd_format src_format = o.src_format;
  uint64_t block_size = o.block_size;
  enum vhd_profile profile = o.profile;
  if (argc - optind < 2)
    return usage_error(me, argc - optind == 0 ? "missing SRC and DST" : "missing DST");
  if (argc - optind > 2)
    return usage_error(me, "unexpected argument '%s'", argv[optind + 2]);
  const char *src_path = argv[optind];
  const char *dst_path = argv[optind + 1];

  if (base && (have_type || profile))
    return usage_error(me, "-B makes a differencing image over BASE; drop %s",
                       have_type ? "-t" : "--profile");
  if (!have_format && profile)
    have_format = format_from_extension(dst_path, true, &p.format);
  if (profile && profile_conflicts(me, profile, &p, have_format, have_type, block_size))
    return EXIT_FAIL;
  if (profile)
    have_format = true;
  if (base && !have_format && !format_from_extension(dst_path, false, &p.format))
    p.format = VHD_FORMAT_AUTO;   /* the library takes BASE's */
  else if (!have_format && !format_from_extension(dst_path, true, &p.format))
    return usage_error(me, "cannot tell the output format from the name '%s': "
                       "use -O vhd|vhdx|raw or a .vhd/.vhdx/.raw/.img extension",
                       dst_path);
  if (base && p.format == VHD_FORMAT_RAW)
    return usage_error(me, "-B makes a differencing VHD or VHDX, not raw");
  if (base) {
    p.parent = base;
    p.type = VHD_TYPE_DIFFERENCING;
  }
  if (settle_output_type(me, &p, have_type, block_size) != EXIT_OK)
    return EXIT_FAIL;

  /* The source goes first so that a bad source never costs the user an
   * existing destination. */
  vhd_image *src;
  struct vhd_info src_info;
  if (open_source(src_path, src_format, &src, &src_info) != EXIT_OK)
    return EXIT_FAIL;
  int r;

  if (profile && (r = vhd_profile_apply(profile, src_info.virtual_size, &p)) < 0) {
    int st = fail_lib(dst_path, r);
    vhd_close(src);
    return st;
  }

  /* The library refuses it too; asked first, so that the reason beats
   * "file exists". */
  if (vhd_chain_layer_of(src, dst_path) >= 0) {
    vhd_close(src);
    return fail("%s: is the source image or one of its parents; "
                "choose another destination", dst_path);
  }
  struct stat before;
  bool existed = lstat(dst_path, &before) == 0;
  if (existed && !force) {
    vhd_close(src);
    return fail("%s: file exists (use --force to replace it)", dst_path);
  }
  if (force)
    p.flags |= VHD_CREATE_OVERWRITE;

  struct progress prog;
  install_interrupt_handler();
  progress_init(&prog, progress_wanted, src_info.virtual_size);
  r = vhd_convert(src, dst_path, &p, convert_flags, progress_update, &prog);
  progress_finish(&prog, r == 0);

  int st = EXIT_OK;
  if (r < 0) {
    if (r == -ECANCELED && interrupted())
      st = fail("%s: conversion interrupted", dst_path);
    else
      st = fail_lib(dst_path, r);
    /* A half-written image may look valid but is not: remove it. A file
     * that was there before and is untouched (the failure came first, or
     * it appeared meanwhile without --force) belongs to someone else. */
    if (r != -EEXIST && ours_to_remove(dst_path, existed, &before))
      unlink(dst_path);
  }
  vhd_close(src);
  return st;
}

const struct command cmd_convert = {
  .name = "convert",
  .summary = "Copy an image (through its whole chain) into a new image of any format.",
  .synopsis = "vhdtool convert [-O vhd|vhdx|raw] [-t fixed|dynamic] [-b BLOCK_SIZE]\n"
              "                       [--sector-size 512|4096] [-p] [--force] [--sync]\n"
              "                       [--direct] [--profile azure|hyperv|virtualpc] SRC DST\n"
              "       vhdtool convert -B BASE [-O vhd|vhdx] [-b BLOCK_SIZE] [-p] [--force]\n"
              "                       SRC DST",
  .help =
    "SRC's format is found from its content; a differencing SRC is read through\n"
    "its parents, so DST is a standalone image.\n"
    "\n"
    "Options:\n"
    "  -O, --output-format FMT  vhd, vhdx or raw; default: from DST's extension\n"
    "                           (.vhd: vhd, .vhdx: vhdx, .raw/.img: raw)\n"
    "  -f, --source-format FMT  take SRC as FMT: raw skips probing; vhd, vhdx,\n"
    "                           qcow2, vmdk or vdi make sure SRC is one\n"
    "  -t, --type TYPE          fixed or dynamic (default dynamic)\n"
    "  -b, --block-size SIZE    block size of a dynamic DST\n"
    "      --sector-size N      logical sector size of DST, 512 or 4096\n"
    "  -p, --progress           show a progress bar (only when standard error is\n"
    "                           a terminal)\n"
    "      --force              replace DST if it exists\n"
    "      --sync               make DST durable (flushed to the disk) before\n"
    "                           exiting; by default, as with qemu-img convert and\n"
    "                           cp, DST may still be in the host's cache at exit\n"
    "      --direct             write DST's data around the host's page cache\n"
    "                           (O_DIRECT; faster on loaded VMs, slower on slow\n"
    "                           disks)\n"
    "      --profile NAME       meet a platform's rules (see check --profile):\n"
    "                           azure: a fixed VHD of a whole number of MiB (the\n"
    "                           size rounded up, at least 20 MiB); virtualpc: a\n"
    "                           VHD whose size is rounded up to a CHS product;\n"
    "                           hyperv: VHD blocks of 2 MiB, VHDX block sizes\n"
    "                           Hyper-V takes. Options that contradict the\n"
    "                           profile are refused\n"
    "  -B, --base BASE          make DST a differencing image over BASE (as\n"
    "                           snapshot does; format: -O, DST's extension or\n"
    "                           BASE's) holding only the sectors where SRC reads\n"
    "                           differently from BASE\n"
    "  -h, --help               show this help\n"
    "\n"
    "All-zero blocks stay unallocated in a dynamic DST and become holes in a raw\n"
    "one. When the conversion fails or is interrupted, DST is removed.\n",
  .run = run,
  .open_options = true,
};
