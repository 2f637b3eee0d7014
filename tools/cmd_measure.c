/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool measure: how large a file convert would make, as qemu-img
 * measure tells. The figures are vhd_measure's; the options are convert's
 * output options, so the same command line measures and converts. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "vhdtool.h"

static const struct option long_options[] = {
  OUTPUT_PARAMS_LONG_OPTIONS,
  {"size", required_argument, NULL, 's'},
  OUTPUT_LONG_OPTIONS,
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static void print_result(const struct vhd_measure_result *m, bool json)
{
  if (!json) {
    printf("required size: %llu\nfully allocated size: %llu\n",
           (unsigned long long)m->required, (unsigned long long)m->fully_allocated);
    return;
  }
  struct json_writer w;
  json_init(&w, stdout);
  json_begin_object(&w);
  json_member_uint(&w, "required", m->required);
  json_member_uint(&w, "fully-allocated", m->fully_allocated);
  json_end_object(&w);
  json_finish(&w);
}

static int run(int argc, char **argv)
{
  const char *me = "measure";
  struct output_choice o;
  bool json = false;
  uint64_t size = 0;
  int c;

  output_choice_init(&o);
  while ((c = getopt_long(argc, argv, ":UO:f:t:b:s:h", long_options, NULL)) != -1) {
    switch (c) {
    case 's':
      if (!parse_size_option(me, "size", optarg, &size))
        return EXIT_FAIL;
      if (size == 0)
        return usage_error(me, "invalid size '%s': must be at least 1 byte", optarg);
      break;
    case OPT_OUTPUT_JSON:
    case OPT_OUTPUT_FORMAT:
      if (!take_output_option(me, c, optarg, &json))
        return EXIT_FAIL;
      break;
    case 'h':
      print_command_help(&cmd_measure, stdout);
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
  struct vhd_create_params *p = &o.p;
  int operands = argc - optind;
  if (operands > 1 || (operands == 1 && size))
    return usage_error(me, "unexpected argument '%s'", argv[optind + (size ? 0 : 1)]);
  if (operands == 0 && !size)
    return usage_error(me, "missing SRC (or --size SIZE)");
  if (o.profile &&
      profile_conflicts(me, o.profile, p, o.have_format, o.have_type, o.block_size))
    return EXIT_FAIL;
  if (!o.have_format && !o.profile)
    return usage_error(me, "missing -O vhd|vhdx|raw");
  if (settle_output_type(me, p, o.have_type, o.block_size) != EXIT_OK)
    return EXIT_FAIL;

  vhd_image *src = NULL;
  struct vhd_info info = { .virtual_size = size };
  const char *name = operands ? argv[optind] : "measure";
  if (operands && open_source(name, o.src_format, &src, &info) != EXIT_OK)
    return EXIT_FAIL;
  int r = 0;
  if (o.profile)
    r = vhd_profile_apply(o.profile, info.virtual_size, p);
  else
    p->size = info.virtual_size;
  struct vhd_measure_result m;
  if (r == 0)
    r = vhd_measure(src, p, &m);
  vhd_close(src);
  if (r < 0)
    return fail_lib(name, r);
  print_result(&m, json);
  return EXIT_OK;
}

const struct command cmd_measure = {
  .name = "measure",
  .summary = "Tell how large a file convert would make, allocated fully and for the data.",
  .synopsis = "vhdtool measure -O vhd|vhdx|raw [-t fixed|dynamic] [-b BLOCK_SIZE]\n"
              "                       [--sector-size 512|4096] [--profile NAME]\n"
              "                       [--json | --output=json|human] (SRC | --size SIZE)",
  .help =
    "Prints what qemu-img measure prints: \"required size\", the file vhdtool\n"
    "convert makes from SRC with these options (SRC's blocks that hold data\n"
    "counted whole: exact for data that is not zeros, an upper bound\n"
    "otherwise), and \"fully allocated size\", the file with every block\n"
    "present. With --size there is no source: required is an empty image.\n"
    "Fixed and raw images need their full length either way (a raw file's\n"
    "holes are not subtracted, as qemu-img measure does not).\n"
    "\n"
    "Options:\n"
    "  -O, --output-format FMT  vhd, vhdx or raw (a profile may decide it)\n"
    "  -f, --source-format FMT  take SRC as FMT: raw skips probing; vhd or vhdx\n"
    "                           make sure SRC is one\n"
    "  -t, --type TYPE          fixed or dynamic (default dynamic)\n"
    "  -b, --block-size SIZE    block size of a dynamic output\n"
    "  -s, --size SIZE          measure an image of SIZE bytes, without SRC\n"
    "      --sector-size N      logical sector size of the output, 512 or 4096\n"
    "      --profile NAME       azure, hyperv or virtualpc, as convert --profile\n"
    "      --json               print {\"required\", \"fully-allocated\"} (the same\n"
    "                           as --output=json)\n"
    "      --output=human|json  choose the output format (default human)\n"
    "  -h, --help               show this help\n",
  .run = run,
  .open_options = true,
};
