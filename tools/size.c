/* SPDX-License-Identifier: BSD-3-Clause */
/* Sizes on the command line: plain bytes or a binary suffix. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vhdtool.h"

/* Shift for a suffix letter; -1 when it is not one. */
static int suffix_shift(char c)
{
  switch (toupper((unsigned char)c)) {
  case 'K': return 10;
  case 'M': return 20;
  case 'G': return 30;
  case 'T': return 40;
  case 'P': return 50;
  case 'E': return 60;
  default: return -1;
  }
}

bool parse_size(const char *text, uint64_t *out, const char **why)
{
  const char *p = text;
  uint64_t value = 0;

  /* Digits by hand: strtoull() would take "-1", " 5" and "0x10". */
  if (!isdigit((unsigned char)*p)) {
    *why = "expected a number of bytes, optionally with a K, M, G or T suffix";
    return false;
  }
  for (; isdigit((unsigned char)*p); p++) {
    unsigned d = (unsigned)(*p - '0');
    if (value > (UINT64_MAX - d) / 10) {
      *why = "number too large";
      return false;
    }
    value = value * 10 + d;
  }

  int shift = 0;
  if (*p != '\0') {
    /* "B" alone means bytes; otherwise one letter, optionally "iB". A
     * decimal "GB" is refused rather than guessed at. */
    if ((*p == 'B' || *p == 'b') && p[1] == '\0') {
      p++;
    } else {
      shift = suffix_shift(*p);
      if (shift < 0) {
        *why = "unknown suffix (use K, M, G, T or KiB, MiB, GiB, TiB: powers of 1024)";
        return false;
      }
      p++;
      if (*p != '\0' && strcasecmp(p, "iB") != 0) {
        *why = "unknown suffix (use K, M, G, T or KiB, MiB, GiB, TiB: powers of 1024)";
        return false;
      }
    }
  }

  if (shift > 0 && value > (UINT64_MAX >> shift)) {
    *why = "number too large";
    return false;
  }
  *out = value << shift;
  return true;
}

bool parse_size_option(const char *cmd, const char *option, const char *text,
                       uint64_t *out)
{
  const char *why;
  if (parse_size(text, out, &why))
    return true;
  usage_error(cmd, "invalid %s '%s': %s", option, text, why);
  return false;
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) {
    snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
    return buf;
  }
  int u = 0;
  double v = (double)bytes / 1024.0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    u++;
  }
  /* Exact multiples print without decimals: "32 MiB", not "32.00 MiB". */
  if ((bytes & ((1ull << (10 * (u + 1))) - 1)) == 0)
    snprintf(buf, len, "%.0f %s", v, units[u]);
  else
    snprintf(buf, len, "%.2f %s", v, units[u]);
  return buf;
}

const char *format_size_exact(uint64_t bytes, char *buf, size_t len)
{
  char approx[32];
  if (bytes < 1024)
    snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
  else
    snprintf(buf, len, "%s (%llu bytes)", format_size(bytes, approx, sizeof approx),
             (unsigned long long)bytes);
  return buf;
}
