/* SPDX-License-Identifier: BSD-3-Clause */
#include "zero.h"
#include "platform.h"

bool buffer_is_zero(const void *p, size_t len)
{
  const unsigned char *b = p;
  /* Check the first 16 bytes by hand, then let memcmp compare the buffer
   * with itself shifted by 16: it runs at memcmp's vectorised speed and
   * proves every byte equals the (zero) byte 16 before it. */
  size_t head = len < 16 ? len : 16;
  for (size_t i = 0; i < head; i++)
    if (b[i])
      return false;
  return len <= 16 || memcmp(b, b + 16, len - 16) == 0;
}
