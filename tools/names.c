/* SPDX-License-Identifier: BSD-3-Clause */
/* Names of formats and types on the command line, file-name extensions,
 * and the text of ids. The names themselves come from the library, so the
 * tool and the library can never disagree on spelling. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vhdtool.h"

bool parse_format(const char *name, enum vhd_format *out)
{
  static const enum vhd_format all[] = {VHD_FORMAT_RAW, VHD_FORMAT_VHD, VHD_FORMAT_VHDX,
                                        VHD_FORMAT_QCOW2, VHD_FORMAT_VMDK,
                                        VHD_FORMAT_VDI};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *n = vhd_format_name(all[i]);
    if (n && strcasecmp(n, name) == 0) {
      *out = all[i];
      return true;
    }
  }
  return false;
}

bool parse_type(const char *name, enum vhd_disk_type *out)
{
  static const enum vhd_disk_type all[] = {VHD_TYPE_FIXED, VHD_TYPE_DYNAMIC,
                                           VHD_TYPE_DIFFERENCING};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *n = vhd_type_name(all[i]);
    if (n && strcasecmp(n, name) == 0) {
      *out = all[i];
      return true;
    }
  }
  return false;
}

bool format_from_extension(const char *path, bool allow_raw, enum vhd_format *out)
{
  static const struct {
    const char *ext;
    enum vhd_format format;
  } table[] = {
    {".vhd", VHD_FORMAT_VHD},   {".avhd", VHD_FORMAT_VHD},
    {".vhdx", VHD_FORMAT_VHDX}, {".avhdx", VHD_FORMAT_VHDX},
    {".raw", VHD_FORMAT_RAW},   {".img", VHD_FORMAT_RAW},
  };
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  if (!dot)
    return false;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcasecmp(dot, table[i].ext) != 0)
      continue;
    if (table[i].format == VHD_FORMAT_RAW && !allow_raw)
      return false;
    *out = table[i].format;
    return true;
  }
  return false;
}

void format_id(enum vhd_format format, const uint8_t id[16], char out[37])
{
  uint8_t b[16];
  memcpy(b, id, 16);
  if (format == VHD_FORMAT_VHDX) {
    /* Microsoft layout: Data1 (4 bytes), Data2 and Data3 (2 bytes each)
     * are little-endian; swap them into reading order. */
    uint8_t t;
    t = b[0]; b[0] = b[3]; b[3] = t;
    t = b[1]; b[1] = b[2]; b[2] = t;
    t = b[4]; b[4] = b[5]; b[5] = t;
    t = b[6]; b[6] = b[7]; b[7] = t;
  }
  snprintf(out, 37,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
           b[11], b[12], b[13], b[14], b[15]);
}

bool id_is_zero(const uint8_t id[16])
{
  for (int i = 0; i < 16; i++)
    if (id[i])
      return false;
  return true;
}

bool parse_sector_size(const char *cmd, const char *option, const char *text,
                       uint32_t *out)
{
  if (strcmp(text, "512") == 0) {
    *out = 512;
    return true;
  }
  if (strcmp(text, "4096") == 0 || strcasecmp(text, "4K") == 0 ||
      strcasecmp(text, "4KiB") == 0) {
    *out = 4096;
    return true;
  }
  usage_error(cmd, "invalid --%s '%s': use 512 or 4096", option, text);
  return false;
}
