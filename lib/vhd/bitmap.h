/* SPDX-License-Identifier: BSD-3-Clause */
/* Cache of the per-block sector bitmaps of a VHD.
 *
 * Differencing reads need a block's bitmap on every request, and writes
 * must know whether the sectors they touch are already marked. Bitmaps are
 * loaded on first use and kept here; changes made to blocks that are
 * already allocated stay in memory (dirty) until flush writes them after
 * the data is durable. Readers running in parallel under the image's
 * shared lock fill the cache, so it has its own mutex.
 *
 * Bit order is MSB first: sector i of a block is bit 0x80 >> (i % 8) of
 * byte i / 8. */
#ifndef LIBVHD_VHD_BITMAP_H
#define LIBVHD_VHD_BITMAP_H

#include "io.h"
#include "platform.h"

struct vhd_bitmap_cache {
  vhd_mutex lock;
  uint32_t nblocks;
  uint32_t bytes;        /* bitmap bytes per block, padded to sectors */
  uint32_t sectors;      /* sectors per block: bits that matter */
  uint8_t **bits;        /* per block: loaded bitmap, or NULL */
  uint8_t *state;        /* per block: BM_* flags (bitmap.c) */
  size_t loaded;         /* bitmaps held in memory */
  size_t limit;          /* clean bitmaps kept before evicting */
  uint32_t clock;        /* eviction cursor */
  size_t ndirty;
};

int vhd_bitmap_init(struct vhd_bitmap_cache *c, const char *name, uint32_t nblocks,
                    uint32_t block_size);
void vhd_bitmap_destroy(struct vhd_bitmap_cache *c);

/* Bytes of one block's bitmap on disk (block_size / 4096, whole sectors). */
uint32_t vhd_bitmap_bytes(uint32_t block_size);

/* In block blk (bitmap at file offset off), sectors [first, first+count):
 * *set gets the first sector's bit and *run the number of sectors from
 * first that share it (1..count). */
int vhd_bitmap_run(struct vhd_bitmap_cache *c, vhd_io *io, uint32_t blk, uint64_t off,
                   uint32_t first, uint32_t count, bool *set, uint32_t *run);
/* Mark sectors [first, first+count) present. A change makes the bitmap
 * dirty and returns 1 (0 when they already were). Caller holds the
 * image's exclusive lock. */
int vhd_bitmap_set(struct vhd_bitmap_cache *c, vhd_io *io, uint32_t blk, uint64_t off,
                   uint32_t first, uint32_t count);
/* A newly allocated block whose bitmap was just written: bits (bytes long)
 * or NULL for all ones. Stays clean. */
void vhd_bitmap_install(struct vhd_bitmap_cache *c, uint32_t blk, const uint8_t *bits);
/* The block was freed: drop whatever is known about it. */
void vhd_bitmap_forget(struct vhd_bitmap_cache *c, uint32_t blk);
bool vhd_bitmap_any_dirty(struct vhd_bitmap_cache *c);
/* Write every dirty bitmap; offset_of(opaque, blk) gives its file offset. */
int vhd_bitmap_write_dirty(struct vhd_bitmap_cache *c, vhd_io *io,
                           uint64_t (*offset_of)(void *opaque, uint32_t blk),
                           void *opaque);

/* Bit helpers on a raw bitmap (also used by create and the tests). */
static inline bool vhd_bit_get(const uint8_t *bits, uint32_t i)
{
  return (bits[i >> 3] & (0x80u >> (i & 7))) != 0;
}
void vhd_bits_set_range(uint8_t *bits, uint32_t first, uint32_t count);
/* Sectors from first (at most count) whose bit equals that of first. */
uint32_t vhd_bits_run(const uint8_t *bits, uint32_t first, uint32_t count, bool *set);

#endif
