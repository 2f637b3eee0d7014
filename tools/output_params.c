/* SPDX-License-Identifier: BSD-3-Clause */
/* The choices about an output image that convert and measure share: what
 * a profile decides, and what a raw output cannot have. */
#include <getopt.h>

#include "vhdtool.h"

void output_choice_init(struct output_choice *o)
{
  *o = (struct output_choice){ .src_format = VHD_FORMAT_AUTO };
  vhd_create_params_init(&o->p);
}

int output_option(const char *me, int c, const char *arg, struct output_choice *o)
{
  switch (c) {
  case 'O':
    if (!parse_format(arg, &o->p.format))
      return usage_error(me, "unknown output format '%s' (use vhd, vhdx or raw)", arg), -1;
    o->have_format = true;
    return 1;
  case 'f':
    if (!parse_format(arg, &o->src_format))
      return usage_error(me, "unknown source format '%s' (use vhd, vhdx or raw)", arg), -1;
    return 1;
  case 't':
    if (!parse_type(arg, &o->p.type) || o->p.type == VHD_TYPE_DIFFERENCING)
      return usage_error(me, "invalid output type '%s' (use fixed or dynamic)", arg), -1;
    o->have_type = true;
    return 1;
  case 'b':
    if (!parse_size_option(me, "block size", arg, &o->block_size))
      return -1;
    if (o->block_size == 0 || o->block_size > UINT32_MAX)
      return usage_error(me, "invalid block size '%s': must be between 1 byte and 4 GiB",
                         arg), -1;
    return 1;
  case OPT_OUT_SECTOR_SIZE:
    return parse_sector_size(me, "sector-size", arg, &o->p.logical_sector_size) ? 1 : -1;
  case OPT_OUT_PROFILE:
    if (vhd_profile_from_name(arg, &o->profile) < 0)
      return usage_error(me, "unknown profile '%s' (azure, hyperv or virtualpc)", arg), -1;
    return 1;
  }
  return 0;
}


int profile_conflicts(const char *me, enum vhd_profile profile, struct vhd_create_params *p,
                      bool have_format, bool have_type, uint64_t block_size)
{
  const char *name = vhd_profile_name(profile);
  if (profile == VHD_PROFILE_HYPERV) {
    if (!have_format)
      return usage_error(me, "--profile hyperv: say the output format with -O vhd|vhdx "
                         "or DST's extension");
    if (p->format == VHD_FORMAT_RAW)
      return usage_error(me, "--profile hyperv makes a VHD or VHDX, not raw");
    return EXIT_OK;
  }
  if (have_format && p->format != VHD_FORMAT_VHD)
    return usage_error(me, "--profile %s makes a VHD; the output format %s conflicts", name,
                       vhd_format_name(p->format));
  p->format = VHD_FORMAT_VHD;
  if (profile == VHD_PROFILE_AZURE) {
    if (have_type && p->type != VHD_TYPE_FIXED)
      return usage_error(me, "--profile azure makes a fixed VHD; -t %s conflicts",
                         vhd_type_name(p->type));
    if (block_size)
      return usage_error(me, "--profile azure makes a fixed VHD, which has no blocks; drop -b");
  }
  return EXIT_OK;
}

int settle_output_type(const char *me, struct vhd_create_params *p, bool have_type,
                       uint64_t block_size)
{
  if (p->format == VHD_FORMAT_RAW) {
    if (have_type)
      return usage_error(me, "raw images have no type; drop -t");
    if (block_size)
      return usage_error(me, "raw images have no blocks; drop -b");
    p->type = VHD_TYPE_NONE;
  }
  p->block_size = (uint32_t)block_size;
  return EXIT_OK;
}
