/* SPDX-License-Identifier: BSD-3-Clause */
/* Free block slots (slots.h). */
#include "slots.h"

#include "driver.h"
#include "io.h"
#include "util/array.h"
#include "util/zero.h"

int slots_push(struct slot_list *l, uint64_t offset)
{
  uint64_t *n = array_grow(l->offset, &l->cap, l->count, sizeof *n, 16);
  if (!n)
    return -ENOMEM;
  l->offset = n;
  l->offset[l->count++] = offset;
  return 0;
}

/* A linear scan: lists are short (a few slots per trim burst) and taking
 * one costs a block write anyway. */
bool slots_take_lowest(struct free_slots *f, uint64_t *offset)
{
  struct slot_list *l = &f->reusable;
  if (!l->count)
    return false;
  size_t best = 0;
  for (size_t i = 1; i < l->count; i++)
    if (l->offset[i] < l->offset[best])
      best = i;
  *offset = l->offset[best];
  l->offset[best] = l->offset[--l->count];
  return true;
}

void slots_commit(struct free_slots *f)
{
  while (f->freed.count) {
    if (slots_push(&f->reusable, f->freed.offset[f->freed.count - 1]) < 0)
      break;   /* out of memory: the space is merely not reused */
    f->freed.count--;
  }
  f->freed.count = 0;
}

static void drop_from(struct slot_list *l, uint64_t end)
{
  size_t keep = 0;
  for (size_t i = 0; i < l->count; i++)
    if (l->offset[i] < end)
      l->offset[keep++] = l->offset[i];
  l->count = keep;
}

void slots_drop_from(struct free_slots *f, uint64_t end)
{
  drop_from(&f->freed, end);
  drop_from(&f->reusable, end);
}

void slots_clear(struct free_slots *f)
{
  f->freed.count = 0;
  f->reusable.count = 0;
}

size_t slots_count(const struct free_slots *f)
{
  return f->freed.count + f->reusable.count;
}

void slots_free(struct free_slots *f)
{
  vhd_free(f->freed.offset);
  vhd_free(f->reusable.offset);
  f->freed = f->reusable = (struct slot_list){0};
}

int slots_punch_reusable(const struct free_slots *f, struct vhd_io *io, uint64_t bytes,
                         uint64_t *n)
{
  *n = 0;
  for (size_t i = 0; i < f->reusable.count; i++) {
    int r = io_punch_hole(io, f->reusable.offset[i], bytes);
    if (r == -ENOTSUP)
      return 0;
    if (r < 0)
      return r;
    (*n)++;
  }
  return 0;
}

int slots_punch_released(struct vhd_io *io, const struct pack_range *places, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    int r = io_punch_hole(io, places[i].offset, places[i].length);
    if (r == -ENOTSUP)
      return 0;
    if (r < 0)
      return r;
  }
  return 0;
}

#define HOST_PAGE 4096u
#define SCAN_CHUNK (64u * 1024u)

/* Whether [start, end) holds anything but holes (or zeros, where the
 * backend cannot tell holes). */
static int holds_data(struct vhd_io *io, uint64_t start, uint64_t end, uint8_t *buf,
                      bool *held)
{
  uint64_t data, hole;
  *held = false;
  if (start >= end)
    return 0;
  if (io->ops->find_data && io->ops->find_data(io->opaque, start, &data, &hole) == 0) {
    *held = data < end;
    return 0;
  }
  for (uint64_t off = start; off < end; off += SCAN_CHUNK) {
    size_t n = end - off < SCAN_CHUNK ? (size_t)(end - off) : SCAN_CHUNK;
    int r = io_pread(io, buf, n, off);
    if (r < 0)
      return r;
    if (!buffer_is_zero(buf, n)) {
      *held = true;
      return 0;
    }
  }
  return 0;
}

int slots_census(const struct free_slots *f, struct vhd_io *io, uint64_t bytes,
                 uint64_t *held, uint64_t *punched)
{
  const struct slot_list *lists[] = { &f->freed, &f->reusable };
  uint8_t *buf = vhd_malloc(SCAN_CHUNK);
  int r = 0;
  *held = *punched = 0;
  if (!buf)
    return -ENOMEM;
  for (size_t l = 0; l < 2 && r == 0; l++)
    for (size_t i = 0; i < lists[l]->count && r == 0; i++) {
      /* Only whole host pages can be holes: the slot's edges may share
       * theirs with its neighbours. */
      uint64_t off = lists[l]->offset[i];
      uint64_t first = (off + HOST_PAGE - 1) / HOST_PAGE * HOST_PAGE;
      uint64_t end = (off + bytes) / HOST_PAGE * HOST_PAGE;
      bool has;
      r = holds_data(io, first, end, buf, &has);
      if (has)
        (*held)++;
      else
        (*punched)++;
    }
  vhd_free(buf);
  return r;
}
