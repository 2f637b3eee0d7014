/* SPDX-License-Identifier: BSD-3-Clause */
/* Bitwise CRC-32: the records it checks are a few KiB at most. */
#include "util/crc32.h"

uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
  const uint8_t *p = data;
  crc = ~crc;
  while (len--) {
    crc ^= *p++;
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
  }
  return ~crc;
}
