/* The choices about an output image that convert and measure share: what
 * a profile decides, and what a raw output cannot have. */
#include "vhdtool.h"

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
