/* SPDX-License-Identifier: BSD-3-Clause */
/* GUIDs as GPT stores them (first three fields little-endian) and as text. */
#include "attach.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Byte i of the text form comes from byte order[i] of the stored form. */
static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };

void guid_to_text(const uint8_t g[16], char out[37])
{
  char *p = out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *p++ = '-';
    p += sprintf(p, "%02x", g[order[i]]);
  }
}

int guid_from_text(const char *s, uint8_t g[16])
{
  if (strlen(s) != 36)
    return -1;
  int byte = 0;
  for (int i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-')
        return -1;
      i++;
      continue;
    }
    if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
      return -1;
    unsigned v;
    sscanf(s + i, "%2x", &v);
    g[order[byte++]] = (uint8_t)v;
    i += 2;
  }
  return 0;
}
