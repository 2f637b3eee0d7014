/* SPDX-License-Identifier: BSD-3-Clause */
/* Console output and the UTF-8 <-> UCS-2 conversions the firmware needs. */
#include "console.h"
#include "efi_env.h"
#include "platform.h"
#include "util/strfmt.h"

int utf8_to_ucs2(const char *src, uint16_t *dst, size_t dst_len)
{
  const uint8_t *s = (const uint8_t *)src;
  size_t n = 0;
  while (*s) {
    uint32_t c = *s++;
    int more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (c >= 0x80 && c < 0xc0)
      c = '?';   /* stray continuation byte */
    else if (more)
      c &= 0x3fu >> more;
    for (; more; more--) {
      if ((*s & 0xc0) != 0x80) {
        c = '?';
        break;
      }
      c = c << 6 | (*s++ & 0x3f);
    }
    if (c > 0xffff || (c >= 0xd800 && c < 0xe000))
      c = '?';
    if (n + 1 >= dst_len)
      return -1;
    dst[n++] = (uint16_t)c;
  }
  if (dst_len == 0)
    return -1;
  dst[n] = 0;
  return (int)n;
}

int ucs2_to_utf8(const uint16_t *src, size_t n, char *dst, size_t dst_len)
{
  size_t len = 0;
  if (dst_len == 0)
    return -1;
  for (size_t i = 0; i < n && src[i]; i++) {
    uint32_t c = src[i];
    uint8_t buf[3];
    size_t k;
    if (c < 0x80) {
      buf[0] = (uint8_t)c;
      k = 1;
    } else if (c < 0x800) {
      buf[0] = (uint8_t)(0xc0 | c >> 6);
      buf[1] = (uint8_t)(0x80 | (c & 0x3f));
      k = 2;
    } else {
      buf[0] = (uint8_t)(0xe0 | c >> 12);
      buf[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
      buf[2] = (uint8_t)(0x80 | (c & 0x3f));
      k = 3;
    }
    if (len + k >= dst_len) {
      dst[len] = '\0';
      return -1;
    }
    memcpy(dst + len, buf, k);
    len += k;
  }
  dst[len] = '\0';
  return (int)len;
}

void con_vprintf(const char *fmt, va_list ap)
{
  char text[1024];
  CHAR16 wide[1100];
  vhd_vsnprintf(text, sizeof text, fmt, ap);
  /* Expand "\n" to CR LF while converting; OutputString wants both. */
  char line[1100];
  size_t j = 0;
  for (size_t i = 0; text[i] && j + 2 < sizeof line; i++) {
    if (text[i] == '\n')
      line[j++] = '\r';
    line[j++] = text[i];
  }
  line[j] = '\0';
  if (utf8_to_ucs2(line, wide, sizeof wide / sizeof wide[0]) < 0)
    return;
  if (efi_st && efi_st->ConOut)
    efi_st->ConOut->OutputString(efi_st->ConOut, wide);
}

void con_printf(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  con_vprintf(fmt, ap);
  va_end(ap);
}
