/* SPDX-License-Identifier: BSD-3-Clause */
/* The packing plan (pack_plan.h). Blocks are taken in file order, and
 * each moves down to the lowest place past the blocks already placed that
 * suits the format's alignment, clears its fixed structures and does not
 * overlap where the block is now (so its old copy stays whole until the
 * table stops pointing at it); a block that cannot move stays and the
 * next ones go after it.
 *
 * A copy must never land where the durable table still points. Space
 * below a block's old place that no placed block uses holds no current
 * block; it may only hold the old place of a block moved earlier in the
 * same batch, whose new place is not durable yet. So a move whose target
 * reaches the lowest old place of the batch starts a new batch
 * (commit_first): the moves before it are committed first. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "pack_plan.h"
#include "util/arith.h"
#include "util/array.h"

struct placed {
  uint64_t blk, host, bytes;
};

static int by_host(const void *a, const void *b)
{
  const struct placed *x = a, *y = b;
  return x->host < y->host ? -1 : x->host > y->host;
}

static int by_offset(const void *a, const void *b)
{
  const struct pack_range *x = a, *y = b;
  return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every block this layer stores, in file order. */
static int blocks_in_file_order(struct vhd_image *img, struct placed **out, size_t *n)
{
  struct placed *b = NULL;
  size_t cap = 0;
  int r = 0;
  *n = 0;
  for (uint64_t blk = 0;; blk++) {
    uint64_t host, bytes;
    r = img->drv->block_slot(img, blk, &host, &bytes);
    if (r == -ERANGE) {
      r = 0;
      break;
    }
    if (r <= 0) {
      if (r < 0)
        break;
      continue;
    }
    struct placed *g = array_grow(b, &cap, *n, sizeof *b, 64);
    if (!g) {
      r = vhd_error(ENOMEM, "%s: out of memory planning the compaction", img->path);
      break;
    }
    b = g;
    b[(*n)++] = (struct placed){ blk, host, bytes };
  }
  if (r < 0) {
    vhd_free(b);
    return r;
  }
  if (*n)
    qsort(b, *n, sizeof *b, by_host);
  *out = b;
  return 0;
}

/* The lowest place at or after cursor that suits the rules and clears
 * every fixed range (sorted; *next_fixed: the first that may still lie
 * ahead). */
static uint64_t place_for(const struct pack_rules *rules, size_t *next_fixed, uint64_t cursor,
                          uint64_t bytes)
{
  for (;;) {
    uint64_t to = align_up(cursor + rules->skew, rules->align) - rules->skew;
    while (*next_fixed < rules->nfixed &&
           rules->fixed[*next_fixed].offset + rules->fixed[*next_fixed].length <= to)
      ++*next_fixed;
    if (*next_fixed == rules->nfixed || to + bytes <= rules->fixed[*next_fixed].offset)
      return to;
    cursor = rules->fixed[*next_fixed].offset + rules->fixed[*next_fixed].length;
  }
}

/* The old places of the moves less every new place (new places are
 * sorted and do not overlap, so a binary search finds the first that may
 * touch an old one). */
static int released_places(struct vhd_image *img, struct pack_plan *p, uint64_t len)
{
  size_t cap = 0;
  for (size_t i = 0; i < p->n; i++) {
    uint64_t from = p->move[i].from, start = from, end = from + len;
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (p->move[mid].to + len <= from)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (size_t t = lo; start < end; t++) {
      uint64_t cut = t < p->n && p->move[t].to < end ? p->move[t].to : end;
      if (cut > start) {
        struct pack_range *g = array_grow(p->released, &cap, p->nreleased, sizeof *g, 64);
        if (!g)
          return vhd_error(ENOMEM, "%s: out of memory planning the compaction", img->path);
        p->released = g;
        p->released[p->nreleased++] = (struct pack_range){ start, cut - start };
      }
      if (cut == end)
        break;
      start = max_u64(start, p->move[t].to + len);
    }
    p->move[i].released_end = p->nreleased;
  }
  return 0;
}

void pack_plan_free(struct pack_plan *plan)
{
  vhd_free(plan->move);
  vhd_free(plan->released);
  memset(plan, 0, sizeof *plan);
}

int pack_plan_make(struct vhd_image *img, const struct pack_rules *rules,
                   struct pack_plan *plan)
{
  struct placed *b = NULL;
  size_t nb;
  memset(plan, 0, sizeof *plan);
  int r = blocks_in_file_order(img, &b, &nb);
  if (r < 0 || nb == 0) {
    vhd_free(b);
    return r;
  }
  struct pack_move *m = plan->move = vhd_malloc(nb * sizeof *m);
  if (!m) {
    vhd_free(b);
    return vhd_error(ENOMEM, "%s: out of memory planning the compaction", img->path);
  }
  if (rules->nfixed)
    qsort(rules->fixed, rules->nfixed, sizeof *rules->fixed, by_offset);
  size_t next_fixed = 0;
  uint64_t cursor = rules->start, batch_low = UINT64_MAX;
  for (size_t k = 0; k < nb; k++) {
    uint64_t old = b[k].host, len = b[k].bytes;
    uint64_t to = place_for(rules, &next_fixed, cursor, len);
    if (to + len > old) {
      /* No room below without overlapping itself: it stays. */
      cursor = max_u64(cursor, old + len);
      continue;
    }
    bool commit_first = to + len > batch_low;
    if (commit_first)
      batch_low = UINT64_MAX;
    m[plan->n++] = (struct pack_move){ b[k].blk, old, to, commit_first, 0 };
    batch_low = min_u64(batch_low, old);
    cursor = to + len;
  }
  /* Every block of a layer has the same slot size. */
  r = released_places(img, plan, b[0].bytes);
  vhd_free(b);
  if (r < 0)
    pack_plan_free(plan);
  return r;
}
