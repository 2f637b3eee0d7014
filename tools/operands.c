/* SPDX-License-Identifier: BSD-3-Clause */
/* What most subcommands do right after their options: take the one FILE
 * operand, open it, read its info. Kept in one place so every command
 * words its usage errors and open failures the same way. */
#include <errno.h>

#include "vhdtool.h"

const char *single_file_operand(const char *cmd, int argc, char **argv, int first)
{
  if (first >= argc) {
    usage_error(cmd, "missing FILE");
    return NULL;
  }
  if (first + 1 < argc) {
    usage_error(cmd, "unexpected argument '%s'", argv[first + 1]);
    return NULL;
  }
  return argv[first];
}

int open_image(const char *path, unsigned flags, vhd_image **img, struct vhd_info *info)
{
  int r = open_with_options(path, flags, img);
  if (r < 0) {
    *img = NULL;
    return fail_lib(path, r);
  }
  r = vhd_get_info(*img, info);
  if (r < 0) {
    int st = fail_lib(path, r);
    vhd_close(*img);
    *img = NULL;
    return st;
  }
  return EXIT_OK;
}

int open_source(const char *path, enum vhd_format format, vhd_image **img,
                struct vhd_info *info)
{
  int st = open_image(path, format == VHD_FORMAT_RAW ? VHD_OPEN_RAW : VHD_OPEN_RDONLY, img,
                      info);
  if (st != EXIT_OK || format == VHD_FORMAT_AUTO || info->format == format)
    return st;
  vhd_close(*img);
  *img = NULL;
  return fail("%s: is a %s image, not %s", path, vhd_format_name(info->format),
              vhd_format_name(format));
}

int close_in_place(const char *path, vhd_image *img, int r, const char *interrupted_note)
{
  int st = EXIT_OK;
  if (r == -ECANCELED && interrupted())
    st = fail("%s: %s", path, interrupted_note);
  else if (r < 0)
    st = fail_lib(path, r);
  int rc = vhd_close(img);
  if (rc < 0 && st == EXIT_OK)
    st = fail_lib(path, rc);
  return st;
}
