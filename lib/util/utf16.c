/* SPDX-License-Identifier: BSD-3-Clause */
/* UTF-16 <-> UTF-8 for names stored inside images. */
#include "utf16.h"
#include "platform.h"

static unsigned unit_at(const uint8_t *p, bool be)
{
  return be ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[0] | p[1] << 8);
}

static size_t put_utf8(char *out, uint32_t cp)
{
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | cp >> 12);
    out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | cp >> 18);
  out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

char *utf16_to_utf8(const uint8_t *src, size_t nbytes, bool be)
{
  size_t units = nbytes / 2;
  /* Each unit yields at most 3 bytes (a surrogate pair: 4 bytes for 2). */
  char *out = vhd_malloc(units * 3 + 1);
  if (!out)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < units; i++) {
    uint32_t cp = unit_at(src + 2 * i, be);
    if (cp == 0)
      break;
    if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < units) {
      unsigned lo = unit_at(src + 2 * (i + 1), be);
      if (lo >= 0xDC00 && lo < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        i++;
      } else {
        cp = 0xFFFD;
      }
    } else if (cp >= 0xD800 && cp < 0xE000) {
      cp = 0xFFFD;   /* unpaired surrogate: Windows names are not strict UTF-16 */
    }
    o += put_utf8(out + o, cp);
  }
  out[o] = '\0';
  return out;
}

/* Decode one UTF-8 sequence; returns its length or 0 when invalid. */
static size_t get_utf8(const unsigned char *s, uint32_t *cp)
{
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  size_t n;
  uint32_t v;
  if ((s[0] & 0xE0) == 0xC0) { n = 2; v = s[0] & 0x1F; }
  else if ((s[0] & 0xF0) == 0xE0) { n = 3; v = s[0] & 0x0F; }
  else if ((s[0] & 0xF8) == 0xF0) { n = 4; v = s[0] & 0x07; }
  else return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = v << 6 | (s[i] & 0x3F);
  }
  static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
  if (v < min_for_len[n] || v > 0x10FFFF || (v >= 0xD800 && v < 0xE000))
    return 0;
  *cp = v;
  return n;
}

int utf8_to_utf16(const char *src, uint8_t *dst, size_t dst_size, bool be)
{
  const unsigned char *s = (const unsigned char *)src;
  size_t o = 0;
  while (*s) {
    uint32_t cp;
    size_t n = get_utf8(s, &cp);
    if (n == 0)
      return -EINVAL;
    s += n;
    unsigned units[2];
    size_t count = 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units[0] = 0xD800 + (cp >> 10);
      units[1] = 0xDC00 + (cp & 0x3FF);
      count = 2;
    } else {
      units[0] = cp;
    }
    for (size_t i = 0; i < count; i++) {
      if (o + 2 > dst_size)
        return -ERANGE;
      dst[o + (be ? 0 : 1)] = (uint8_t)(units[i] >> 8);
      dst[o + (be ? 1 : 0)] = (uint8_t)units[i];
      o += 2;
    }
  }
  return (int)o;
}
