/* SPDX-License-Identifier: BSD-3-Clause */
/* The copy-on-write overlay (see overlay.h). */
#include "overlay.h"
#include "platform.h"

struct entry {
  struct entry *next;
  uint64_t block;
  uint8_t data[];
};

struct overlay {
  uint32_t block_size;
  uint64_t count;
  size_t buckets;     /* power of two */
  struct entry **table;
};

static size_t slot(const struct overlay *ov, uint64_t block)
{
  uint64_t h = block * 0x9e3779b97f4a7c15ull;
  return (size_t)(h >> 32) & (ov->buckets - 1);
}

int overlay_new(uint32_t block_size, struct overlay **out)
{
  struct overlay *ov = vhd_calloc(1, sizeof *ov);
  if (!ov)
    return -ENOMEM;
  ov->block_size = block_size;
  ov->buckets = 1024;
  ov->table = vhd_calloc(ov->buckets, sizeof *ov->table);
  if (!ov->table) {
    vhd_free(ov);
    return -ENOMEM;
  }
  *out = ov;
  return 0;
}

void overlay_free(struct overlay *ov)
{
  if (!ov)
    return;
  for (size_t i = 0; i < ov->buckets; i++)
    for (struct entry *e = ov->table[i], *next; e; e = next) {
      next = e->next;
      vhd_free(e);
    }
  vhd_free(ov->table);
  vhd_free(ov);
}

const uint8_t *overlay_get(const struct overlay *ov, uint64_t block)
{
  for (const struct entry *e = ov->table[slot(ov, block)]; e; e = e->next)
    if (e->block == block)
      return e->data;
  return NULL;
}

/* Keep chains short: double the table when it is as full as it is long.
 * A failed grow is harmless (chains just get longer). */
static void maybe_grow(struct overlay *ov)
{
  if (ov->count < ov->buckets)
    return;
  size_t n = ov->buckets * 2;
  struct entry **t = vhd_calloc(n, sizeof *t);
  if (!t)
    return;
  struct overlay bigger = *ov;
  bigger.buckets = n;
  bigger.table = t;
  for (size_t i = 0; i < ov->buckets; i++)
    for (struct entry *e = ov->table[i], *next; e; e = next) {
      next = e->next;
      size_t s = slot(&bigger, e->block);
      e->next = t[s];
      t[s] = e;
    }
  vhd_free(ov->table);
  ov->table = t;
  ov->buckets = n;
}

int overlay_put(struct overlay *ov, uint64_t block, const uint8_t *data)
{
  uint8_t *have = (uint8_t *)overlay_get(ov, block);
  if (have) {
    memcpy(have, data, ov->block_size);
    return 0;
  }
  struct entry *e = vhd_malloc(sizeof *e + ov->block_size);
  if (!e)
    return -ENOMEM;
  e->block = block;
  memcpy(e->data, data, ov->block_size);
  size_t s = slot(ov, block);
  e->next = ov->table[s];
  ov->table[s] = e;
  ov->count++;
  maybe_grow(ov);
  return 0;
}

uint64_t overlay_blocks(const struct overlay *ov) { return ov->count; }
