/* SPDX-License-Identifier: BSD-3-Clause */
/* CRC-32 (IEEE 802.3, as zlib's crc32 and UEFI's CalculateCrc32), for
 * vhdboot's records: the reserve record (lib/reserve.h) and the loader's
 * OS hand-off. */
#ifndef LIBVHD_UTIL_CRC32_H
#define LIBVHD_UTIL_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32_update(uint32_t crc, const void *data, size_t len);
static inline uint32_t crc32_of(const void *data, size_t len) { return crc32_update(0, data, len); }

#endif
