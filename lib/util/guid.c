/* SPDX-License-Identifier: BSD-3-Clause */
#include "guid.h"
#include "platform.h"

static const char hexdigits[] = "0123456789abcdef";

static void format_bytes(const uint8_t b[16], char out[37])
{
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hexdigits[b[i] >> 4];
    out[o++] = hexdigits[b[i] & 15];
  }
  out[o] = '\0';
}

/* Microsoft layout <-> RFC 4122 order: the first three fields swap. */
static void swap_ms(const uint8_t in[16], uint8_t out[16])
{
  static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
  for (int i = 0; i < 16; i++)
    out[i] = in[order[i]];
}

void uuid_format(const uint8_t id[16], char out[37]) { format_bytes(id, out); }

void guid_format_ms(const uint8_t guid[16], char out[37])
{
  uint8_t rfc[16];
  swap_ms(guid, rfc);
  format_bytes(rfc, out);
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool guid_parse_ms(const char *text, uint8_t guid[16])
{
  const char *p = text;
  bool braces = *p == '{';
  if (braces)
    p++;
  uint8_t rfc[16];
  for (int i = 0; i < 16; i++) {
    if ((i == 4 || i == 6 || i == 8 || i == 10) && *p++ != '-')
      return false;
    int hi = hexval(p[0]), lo = hi >= 0 ? hexval(p[1]) : -1;
    if (hi < 0 || lo < 0)
      return false;
    rfc[i] = (uint8_t)(hi << 4 | lo);
    p += 2;
  }
  if (braces && *p++ != '}')
    return false;
  if (*p)
    return false;
  swap_ms(rfc, guid);
  return true;
}

bool guid_is_zero(const uint8_t id[16])
{
  for (int i = 0; i < 16; i++)
    if (id[i])
      return false;
  return true;
}
