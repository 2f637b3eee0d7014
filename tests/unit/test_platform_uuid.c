/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_uuid_generate (lib/platform/posix.c): RFC 4122 version 4 GUIDs with
 * the RFC variant, and no two alike over many calls (the VHD unique id and
 * the VHDX file, data and log GUIDs all come from it; a constant or a
 * repeating source would make children match the wrong parent). */
#include <criterion/criterion.h>
#include <string.h>

#include "platform.h"

#define COUNT 4096

Test(platform_uuid, version_4_and_distinct)
{
  static uint8_t seen[COUNT][16];
  for (int i = 0; i < COUNT; i++) {
    vhd_uuid_generate(seen[i]);
    cr_assert_eq(seen[i][6] >> 4, 4, "GUID %d is version %d", i, seen[i][6] >> 4);
    cr_assert_eq(seen[i][8] >> 6, 2, "GUID %d has variant bits %d", i, seen[i][8] >> 6);
  }
  for (int i = 0; i < COUNT; i++)
    for (int j = 0; j < i; j++)
      cr_assert_neq(memcmp(seen[i], seen[j], 16), 0, "GUIDs %d and %d are the same", j, i);
}
