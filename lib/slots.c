/* Free block slots (slots.h). */
#include "slots.h"

#include "io.h"

int slots_push(struct slot_list *l, uint64_t offset)
{
  if (l->count == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    uint64_t *n = vhd_realloc(l->offset, cap * sizeof *n);
    if (!n)
      return -ENOMEM;
    l->offset = n;
    l->cap = cap;
  }
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
    if (r == -EOPNOTSUPP)
      return 0;
    if (r < 0)
      return r;
    (*n)++;
  }
  return 0;
}
