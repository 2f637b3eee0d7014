/* SPDX-License-Identifier: BSD-3-Clause */
/* Partial trims that add up (trims.h). */
#include "trims.h"

#include "error.h"

#define HOST_PAGE 4096u
#define MAX_BITS (64u * 1024u)   /* 8 KiB of bits a block */

struct trim_entry {
  uint64_t block;
  uint64_t stamp;         /* when last trimmed; 0 = slot unused */
  uint8_t *bits;
};

struct trim_log {
  vhd_mutex lock;
  uint64_t block_size;
  uint64_t unit;          /* bytes a bit stands for */
  uint32_t units;         /* bits a block */
  uint64_t clock;
  struct trim_entry e[TRIMS_MAX_BLOCKS];
};

struct trim_log *trims_of(struct vhd_image *img, uint64_t block_size)
{
  if (img->trims)
    return img->trims;
  struct trim_log *t = vhd_calloc(1, sizeof *t);
  if (!t)
    return NULL;
  uint64_t unit = img->sector_size ? img->sector_size : 512;
  while (block_size / unit > MAX_BITS)
    unit *= 2;
  t->block_size = block_size;
  t->unit = unit;
  t->units = (uint32_t)((block_size + unit - 1) / unit);
  vhd_mutex_init(&t->lock);
  img->trims = t;
  return t;
}

void trims_destroy(struct trim_log *t)
{
  if (!t)
    return;
  for (unsigned i = 0; i < TRIMS_MAX_BLOCKS; i++)
    vhd_free(t->e[i].bits);
  vhd_mutex_destroy(&t->lock);
  vhd_free(t);
}

static struct trim_entry *find(struct trim_log *t, uint64_t block)
{
  for (unsigned i = 0; i < TRIMS_MAX_BLOCKS; i++)
    if (t->e[i].stamp && t->e[i].block == block)
      return &t->e[i];
  return NULL;
}

/* A free entry, else the least recently trimmed one, emptied. */
static struct trim_entry *claim(struct trim_log *t, uint64_t block)
{
  struct trim_entry *pick = &t->e[0];
  for (unsigned i = 0; i < TRIMS_MAX_BLOCKS; i++) {
    if (!t->e[i].stamp) {
      pick = &t->e[i];
      break;
    }
    if (t->e[i].stamp < pick->stamp)
      pick = &t->e[i];
  }
  if (!pick->bits && !(pick->bits = vhd_malloc((t->units + 7) / 8)))
    return NULL;
  memset(pick->bits, 0, (t->units + 7) / 8);
  pick->block = block;
  return pick;
}

static void set_bits(uint8_t *bits, uint64_t first, uint64_t end, bool value)
{
  for (uint64_t i = first; i < end; i++) {
    if (value)
      bits[i / 8] |= (uint8_t)(1u << (i % 8));
    else
      bits[i / 8] &= (uint8_t)~(1u << (i % 8));
  }
}

static bool all_set(const uint8_t *bits, uint64_t n)
{
  for (uint64_t i = 0; i < n; i++)
    if (!(bits[i / 8] & (1u << (i % 8))))
      return false;
  return true;
}

bool trims_add(struct trim_log *t, uint64_t block, uint64_t inblk, uint64_t len,
               uint64_t visible)
{
  /* Only units the trim covers whole count. */
  uint64_t first = (inblk + t->unit - 1) / t->unit;
  uint64_t end = (inblk + len == visible ? t->units : (inblk + len) / t->unit);
  uint64_t need = (visible + t->unit - 1) / t->unit;
  bool full = false;

  vhd_mutex_lock(&t->lock);
  struct trim_entry *e = find(t, block);
  if (!e && first < end)
    e = claim(t, block);
  if (e) {
    if (first < end)
      set_bits(e->bits, first, end, true);
    e->stamp = ++t->clock;
    full = all_set(e->bits, need);
    if (full)
      e->stamp = 0;
  }
  vhd_mutex_unlock(&t->lock);
  return full;
}

void trims_forget(struct trim_log *t, uint64_t block)
{
  vhd_mutex_lock(&t->lock);
  struct trim_entry *e = find(t, block);
  if (e)
    e->stamp = 0;
  vhd_mutex_unlock(&t->lock);
}

void trims_written(struct trim_log *t, uint64_t off, uint64_t len)
{
  if (!len)
    return;
  vhd_mutex_lock(&t->lock);
  for (unsigned i = 0; i < TRIMS_MAX_BLOCKS; i++) {
    struct trim_entry *e = &t->e[i];
    uint64_t start = e->block * t->block_size;
    if (!e->stamp || off >= start + t->block_size || off + len <= start)
      continue;
    /* Every unit the write touches, even in part, holds data again. */
    uint64_t a = off > start ? off - start : 0;
    uint64_t b = off + len - start < t->block_size ? off + len - start : t->block_size;
    set_bits(e->bits, a / t->unit, (b + t->unit - 1) / t->unit, false);
  }
  vhd_mutex_unlock(&t->lock);
}

int trims_punch_pages(vhd_io *io, uint64_t off, uint64_t len)
{
  uint64_t start = (off + HOST_PAGE - 1) / HOST_PAGE * HOST_PAGE;
  uint64_t end = (off + len) / HOST_PAGE * HOST_PAGE;
  if (start >= end)
    return 0;
  return io_punch_hole(io, start, end - start);
}
