/* SPDX-License-Identifier: BSD-3-Clause */
/* The sector bitmap cache. */
#include "vhd/bitmap.h"

#include "error.h"

#define BM_KNOWN 0x1u  /* the bitmap is known: in bits[], or all ones */
#define BM_FULL 0x2u   /* every sector is present (bits[] may be NULL) */
#define BM_DIRTY 0x4u  /* bits[] differs from the file */

/* Clean bitmaps kept in memory at most, in bytes. */
#define CACHE_BYTES (8u << 20)

uint32_t vhd_bitmap_bytes(uint32_t block_size)
{
  /* One bit per sector, whole bytes, then whole sectors: even a block of
   * one sector has a 512-byte bitmap. */
  uint32_t bytes = (block_size / 512 + 7) / 8;
  return (bytes + 511) & ~511u;
}

int vhd_bitmap_init(struct vhd_bitmap_cache *c, const char *name, uint32_t nblocks,
                    uint32_t block_size)
{
  memset(c, 0, sizeof *c);
  c->nblocks = nblocks;
  c->bytes = vhd_bitmap_bytes(block_size);
  c->sectors = block_size / 512;
  c->limit = CACHE_BYTES / c->bytes;
  if (c->limit < 16)
    c->limit = 16;
  c->bits = vhd_calloc((size_t)nblocks + 1, sizeof *c->bits);
  c->state = vhd_calloc((size_t)nblocks + 1, 1);
  if (!c->bits || !c->state) {
    vhd_free(c->bits);
    vhd_free(c->state);
    c->bits = NULL;
    c->state = NULL;
    return vhd_error(ENOMEM, "%s: out of memory for %u sector bitmaps", name, nblocks);
  }
  vhd_mutex_init(&c->lock);
  return 0;
}

void vhd_bitmap_destroy(struct vhd_bitmap_cache *c)
{
  if (!c->bits)
    return;
  for (uint32_t i = 0; i < c->nblocks; i++)
    vhd_free(c->bits[i]);
  vhd_free(c->bits);
  vhd_free(c->state);
  c->bits = NULL;
  c->state = NULL;
  vhd_mutex_destroy(&c->lock);
}

void vhd_bits_set_range(uint8_t *bits, uint32_t first, uint32_t count)
{
  uint32_t i = first, end = first + count;
  for (; i < end && (i & 7); i++)
    bits[i >> 3] |= (uint8_t)(0x80u >> (i & 7));
  if (end - i >= 8) {
    memset(bits + (i >> 3), 0xff, (end - i) >> 3);
    i += (end - i) & ~7u;
  }
  for (; i < end; i++)
    bits[i >> 3] |= (uint8_t)(0x80u >> (i & 7));
}

uint32_t vhd_bits_run(const uint8_t *bits, uint32_t first, uint32_t count, bool *set)
{
  bool v = vhd_bit_get(bits, first);
  uint8_t whole = v ? 0xff : 0x00;
  uint32_t i = first + 1, end = first + count;

  *set = v;
  while (i < end) {
    if ((i & 7) == 0 && end - i >= 8 && bits[i >> 3] == whole) {
      i += 8;
      continue;
    }
    if (vhd_bit_get(bits, i) != v)
      break;
    i++;
  }
  return i - first;
}

static bool all_ones(const uint8_t *bits, uint32_t sectors)
{
  uint32_t run;
  bool set;
  run = vhd_bits_run(bits, 0, sectors, &set);
  return set && run == sectors;
}

/* Free one clean loaded bitmap, walking round the blocks. Lock held. */
static void evict_one(struct vhd_bitmap_cache *c)
{
  for (uint32_t n = 0; n < c->nblocks; n++) {
    uint32_t b = c->clock++;
    if (c->clock >= c->nblocks)
      c->clock = 0;
    if (c->bits[b] && !(c->state[b] & BM_DIRTY)) {
      vhd_free(c->bits[b]);
      c->bits[b] = NULL;
      c->state[b] = 0;
      c->loaded--;
      return;
    }
  }
}

/* Make block blk's bitmap known; returns with the lock held (also on
 * error). The read happens without the lock so parallel readers of other
 * blocks are not serialised behind it. */
static int ensure_loaded(struct vhd_bitmap_cache *c, vhd_io *io, uint32_t blk,
                         uint64_t off)
{
  uint8_t *buf;
  int r;

  vhd_mutex_lock(&c->lock);
  if (c->state[blk] & BM_KNOWN)
    return 0;
  vhd_mutex_unlock(&c->lock);

  buf = vhd_malloc(c->bytes);
  if (!buf) {
    vhd_mutex_lock(&c->lock);
    return vhd_error(ENOMEM, "%s: out of memory for a sector bitmap", io->name);
  }
  r = io_pread(io, buf, c->bytes, off);
  vhd_mutex_lock(&c->lock);
  if (r < 0) {
    vhd_free(buf);
    return r;
  }
  if (c->state[blk] & BM_KNOWN) {   /* another reader was quicker */
    vhd_free(buf);
    return 0;
  }
  if (all_ones(buf, c->sectors)) {
    vhd_free(buf);
    c->state[blk] = BM_KNOWN | BM_FULL;
    return 0;
  }
  if (c->loaded >= c->limit)
    evict_one(c);
  c->bits[blk] = buf;
  c->state[blk] = BM_KNOWN;
  c->loaded++;
  return 0;
}

int vhd_bitmap_run(struct vhd_bitmap_cache *c, vhd_io *io, uint32_t blk, uint64_t off,
                   uint32_t first, uint32_t count, bool *set, uint32_t *run)
{
  int r = ensure_loaded(c, io, blk, off);
  if (r == 0) {
    if (c->state[blk] & BM_FULL) {
      *set = true;
      *run = count;
    } else {
      *run = vhd_bits_run(c->bits[blk], first, count, set);
    }
  }
  vhd_mutex_unlock(&c->lock);
  return r;
}

int vhd_bitmap_set(struct vhd_bitmap_cache *c, vhd_io *io, uint32_t blk, uint64_t off,
                   uint32_t first, uint32_t count)
{
  int r = ensure_loaded(c, io, blk, off);
  if (r == 0 && !(c->state[blk] & BM_FULL)) {
    uint8_t *bits = c->bits[blk];
    bool set;
    if (vhd_bits_run(bits, first, count, &set) != count || !set) {
      r = 1;
      vhd_bits_set_range(bits, first, count);
      if (!(c->state[blk] & BM_DIRTY)) {
        c->state[blk] |= BM_DIRTY;
        c->ndirty++;
      }
      if (all_ones(bits, c->sectors))
        c->state[blk] |= BM_FULL;
    }
  }
  vhd_mutex_unlock(&c->lock);
  return r;
}

static void drop_locked(struct vhd_bitmap_cache *c, uint32_t blk)
{
  if (c->bits[blk]) {
    vhd_free(c->bits[blk]);
    c->bits[blk] = NULL;
    c->loaded--;
  }
  if (c->state[blk] & BM_DIRTY)
    c->ndirty--;
  c->state[blk] = 0;
}

void vhd_bitmap_install(struct vhd_bitmap_cache *c, uint32_t blk, const uint8_t *bits)
{
  uint8_t *copy = NULL;

  if (bits && !all_ones(bits, c->sectors)) {
    copy = vhd_malloc(c->bytes);
    if (!copy)
      return;   /* not cached: it is read back from the file when needed */
    memcpy(copy, bits, c->bytes);
  }
  vhd_mutex_lock(&c->lock);
  drop_locked(c, blk);
  if (copy) {
    if (c->loaded >= c->limit)
      evict_one(c);
    c->bits[blk] = copy;
    c->state[blk] = BM_KNOWN;
    c->loaded++;
  } else {
    c->state[blk] = BM_KNOWN | BM_FULL;
  }
  vhd_mutex_unlock(&c->lock);
}

void vhd_bitmap_forget(struct vhd_bitmap_cache *c, uint32_t blk)
{
  vhd_mutex_lock(&c->lock);
  drop_locked(c, blk);
  vhd_mutex_unlock(&c->lock);
}

bool vhd_bitmap_any_dirty(struct vhd_bitmap_cache *c)
{
  bool any;
  if (!c->bits)
    return false;
  vhd_mutex_lock(&c->lock);
  any = c->ndirty > 0;
  vhd_mutex_unlock(&c->lock);
  return any;
}

int vhd_bitmap_write_dirty(struct vhd_bitmap_cache *c, vhd_io *io,
                           uint64_t (*offset_of)(void *opaque, uint32_t blk),
                           void *opaque)
{
  int r = 0;

  if (!c->bits)
    return 0;
  vhd_mutex_lock(&c->lock);
  for (uint32_t b = 0; b < c->nblocks && c->ndirty > 0 && r == 0; b++) {
    if (!(c->state[b] & BM_DIRTY))
      continue;
    r = io_pwrite(io, c->bits[b], c->bytes, offset_of(opaque, b));
    if (r == 0) {
      c->state[b] &= (uint8_t)~BM_DIRTY;
      c->ndirty--;
    }
  }
  vhd_mutex_unlock(&c->lock);
  return r;
}
