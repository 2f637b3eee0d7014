/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared helpers of the VHDX unit tests (test_vhdx_*.c): an independent
 * bit-at-a-time CRC-32C, little-endian fields, and the on-disk layout of a
 * VHDX file read straight from MS-VHDX, so tests can damage or build
 * structures without trusting the parsers they test. */
#ifndef TESTS_VHDX_UTIL_H
#define TESTS_VHDX_UTIL_H

#include <criterion/criterion.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* The tests copy whole images around; keep freed memory in the heap
 * instead of returning it to the kernel, whose page faults are slow on
 * some virtual machines. Only the speed of the test changes. */
__attribute__((constructor)) static void tv_keep_heap(void)
{
  mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
}

/* CRC-32C one bit at a time: slow, obviously right, and not the library's. */
static inline uint32_t tv_crc32c(const uint8_t *p, size_t n)
{
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
  }
  return ~c;
}

static inline uint16_t tv_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t tv_le32(const uint8_t *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t tv_le64(const uint8_t *p) { return tv_le32(p) | (uint64_t)tv_le32(p + 4) << 32; }
static inline void tv_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void tv_put32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline void tv_put64(uint8_t *p, uint64_t v)
{
  tv_put32(p, (uint32_t)v);
  tv_put32(p + 4, (uint32_t)(v >> 32));
}

/* Recompute the CRC-32C stored at csum_off of the structure at p. */
static inline void tv_fix_crc(uint8_t *p, size_t len, size_t csum_off)
{
  tv_put32(p + csum_off, 0);
  tv_put32(p + csum_off, tv_crc32c(p, len));
}

/* GUIDs on disk (Microsoft layout). */
static const uint8_t TV_GUID_BAT[16] = { 0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
                                         0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08 };
static const uint8_t TV_GUID_META[16] = { 0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B,
                                          0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E };
static const uint8_t TV_GUID_FILE_PARAMS[16] = { 0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D,
                                                 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B };
static const uint8_t TV_GUID_DISK_SIZE[16] = { 0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48,
                                               0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8 };
static const uint8_t TV_GUID_LSS[16] = { 0x1D, 0xBF, 0x41, 0x81, 0x6F, 0xA9, 0x09, 0x47,
                                         0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F };

/* The parts of a VHDX file a test needs, found from the spec alone. */
struct tv_layout {
  size_t header[2];            /* 64 KiB, 128 KiB */
  int current;                 /* index of the header with the larger sequence */
  uint64_t log_offset;
  uint32_t log_length;
  uint64_t bat_offset, meta_offset;
  uint32_t bat_length, meta_length;
  size_t region_entry[2];      /* offset of the BAT / metadata entry in copy 1 */
  uint32_t block_size, lss;
  uint64_t disk_size;
  size_t item[3];              /* file offsets of File Parameters, size, LSS */
};

static inline struct tv_layout tv_parse(const uint8_t *p, size_t len)
{
  struct tv_layout l;
  memset(&l, 0, sizeof l);
  cr_assert_geq(len, 4 * MiB, "image of %zu bytes is too small to be made by us", len);
  cr_assert_eq(memcmp(p, "vhdxfile", 8), 0);
  l.header[0] = 64 * KiB;
  l.header[1] = 128 * KiB;
  l.current = tv_le64(p + l.header[1] + 8) > tv_le64(p + l.header[0] + 8) ? 1 : 0;
  const uint8_t *h = p + l.header[l.current];
  l.log_length = tv_le32(h + 68);
  l.log_offset = tv_le64(h + 72);
  const uint8_t *rt = p + 192 * KiB;
  cr_assert_eq(memcmp(rt, "regi", 4), 0);
  for (uint32_t i = 0; i < tv_le32(rt + 8); i++) {
    const uint8_t *e = rt + 16 + 32 * i;
    if (memcmp(e, TV_GUID_BAT, 16) == 0) {
      l.bat_offset = tv_le64(e + 16);
      l.bat_length = tv_le32(e + 24);
      l.region_entry[0] = 192 * KiB + 16 + 32 * i;
    } else if (memcmp(e, TV_GUID_META, 16) == 0) {
      l.meta_offset = tv_le64(e + 16);
      l.meta_length = tv_le32(e + 24);
      l.region_entry[1] = 192 * KiB + 16 + 32 * i;
    }
  }
  cr_assert(l.bat_offset && l.meta_offset);
  const uint8_t *mt = p + l.meta_offset;
  cr_assert_eq(memcmp(mt, "metadata", 8), 0);
  for (uint16_t i = 0; i < tv_le16(mt + 10); i++) {
    const uint8_t *e = mt + 32 + 32 * i;
    size_t at = (size_t)l.meta_offset + tv_le32(e + 16);
    if (memcmp(e, TV_GUID_FILE_PARAMS, 16) == 0) {
      l.item[0] = at;
      l.block_size = tv_le32(p + at);
    } else if (memcmp(e, TV_GUID_DISK_SIZE, 16) == 0) {
      l.item[1] = at;
      l.disk_size = tv_le64(p + at);
    } else if (memcmp(e, TV_GUID_LSS, 16) == 0) {
      l.item[2] = at;
      l.lss = tv_le32(p + at);
    }
  }
  cr_assert(l.block_size && l.lss && l.disk_size);
  return l;
}

/* BAT index of payload block b. */
static inline uint64_t tv_payload_index(const struct tv_layout *l, uint64_t b)
{
  uint64_t chunk_ratio = ((uint64_t)1 << 23) * l->lss / l->block_size;
  return b + b / chunk_ratio;
}

/* Both region table copies rewritten from copy 1 with fresh checksums. */
static inline void tv_fix_region_tables(uint8_t *p)
{
  tv_fix_crc(p + 192 * KiB, 64 * KiB, 4);
  memcpy(p + 256 * KiB, p + 192 * KiB, 64 * KiB);
}

/* Rewrite both headers from the current one (sequence numbers kept). */
static inline void tv_fix_headers(uint8_t *p, const struct tv_layout *l)
{
  for (int i = 0; i < 2; i++)
    tv_fix_crc(p + l->header[i], 4096, 4);
}

/* Create an image in memory with the library; returns its bytes (malloc). */
static inline uint8_t *tv_make(const struct vhd_create_params *p, size_t *len)
{
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "made.vhdx", VHD_IO_RDWR, &io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_create_io(io, p, &img), 0, "create: %s", vhd_last_error());
  void *data;
  cr_assert_eq(vhd_io_memory_contents(io, &data, len), 0);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  return data;
}

/* Open bytes (copied) as an image. Returns the open's result. */
static inline int tv_open(const uint8_t *p, size_t len, const char *name, unsigned flags,
                          vhd_image **img, vhd_io **io_out)
{
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(p, len, name, (flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR
                                                                        : VHD_IO_RDONLY, &io), 0);
  if (io_out)
    *io_out = io;
  return vhd_open_io(io, VHD_FORMAT_AUTO, flags, img);
}

static uint64_t tv_rng_state = 0x9E3779B97F4A7C15ull;
static inline uint64_t tv_rnd(void)
{
  tv_rng_state ^= tv_rng_state << 13;
  tv_rng_state ^= tv_rng_state >> 7;
  tv_rng_state ^= tv_rng_state << 17;
  return tv_rng_state;
}

#endif
