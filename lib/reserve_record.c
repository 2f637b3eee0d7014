/* SPDX-License-Identifier: BSD-3-Clause */
/* The reserve record's encoding and the rules for trusting it (reserve.h). */
#include "error.h"
#include "reserve.h"
#include "util/crc32.h"
#include "util/endian.h"

static const char magic[8] = "VHDBOOTR";

void reserve_record_encode(uint8_t rec[RESERVE_RECORD_SIZE], const struct reserve_record *r)
{
  memset(rec, 0, RESERVE_RECORD_SIZE);
  memcpy(rec, magic, 8);
  put_le32(rec + 8, 1);
  put_le32(rec + 12, r->tail);
  put_le64(rec + 16, r->phys);
  put_le64(rec + 24, r->logical);
  put_le32(rec + 32, crc32_of(rec, 32));
}

uint64_t reserve_block_bytes(const struct vhd_info *in)
{
  uint64_t bs = in->block_size ? in->block_size : (2u << 20);
  if (in->format == VHD_FORMAT_VHDX)
    return bs + (1u << 20);   /* a sector bitmap block, or the next block's 1 MiB alignment */
  /* VHD: a bit per sector, padded so that the data starts on a 4 KiB
   * boundary, as libvhd lays out every new block. */
  uint64_t bitmap = (bs / 4096 + 511) / 512 * 512;
  return (bs + bitmap + 4095) / 4096 * 4096;
}

uint64_t reserve_default_bytes(const struct vhd_info *in)
{
  /* Four blocks or 64 MiB, whichever is larger, and never more than the
   * blocks the disk could still need. VHD adds the first block's
   * alignment; VHDX 2 MiB for a sector bitmap block and the alignment of
   * the next block. */
  uint64_t bs = in->block_size ? in->block_size : (2u << 20);
  uint64_t free_blocks =
      in->total_blocks > in->allocated_blocks ? in->total_blocks - in->allocated_blocks : 0;
  uint64_t blocks = (64ull << 20) / bs;
  if (blocks < 4)
    blocks = 4;
  if (blocks > free_blocks)
    blocks = free_blocks;
  if (in->format == VHD_FORMAT_VHDX) {
    uint64_t bitmap = (bs / 4096 + 511) / 512 * 512;
    return blocks * (bs + bitmap) + 512 + (2u << 20);
  }
  return blocks * reserve_block_bytes(in) + 4096;
}

static bool decode(const uint8_t *rec, struct reserve_record *r)
{
  if (memcmp(rec, magic, 8) != 0 || get_le32(rec + 8) != 1 ||
      get_le32(rec + 32) != crc32_of(rec, 32))
    return false;
  r->tail = get_le32(rec + 12);
  r->phys = get_le64(rec + 16);
  r->logical = get_le64(rec + 24);
  return true;
}

int reserve_find(vhd_io *io, uint64_t size, enum vhd_format format,
                 struct reserve_record *out)
{
  uint32_t tail;
  if (format == VHD_FORMAT_VHD)
    tail = RESERVE_VHD_TRAILER;
  else if (format == VHD_FORMAT_VHDX)
    tail = 0;
  else
    return 0;   /* raw: the last sector is the guest's, never a record */
  if (size < (uint64_t)tail + RESERVE_RECORD_SIZE + 512)
    return 0;
  uint8_t rec[RESERVE_RECORD_SIZE];
  struct reserve_record r;
  uint64_t at = size - tail - RESERVE_RECORD_SIZE;
  int e = io_pread(io, rec, sizeof rec, at);
  if (e < 0)
    return e;
  if (!decode(rec, &r) || r.tail != tail || r.phys != size || r.logical > at ||
      r.logical < 512)
    return 0;
  if (tail) {
    /* The copy at the end must be the image's own footer. */
    uint8_t a[RESERVE_VHD_TRAILER], b[RESERVE_VHD_TRAILER];
    if ((e = io_pread(io, a, tail, r.logical - tail)) < 0 ||
        (e = io_pread(io, b, tail, size - tail)) < 0)
      return e;
    if (memcmp(a, b, tail) != 0)
      return 0;
  }
  *out = r;
  return 1;
}
