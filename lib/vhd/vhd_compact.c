/* SPDX-License-Identifier: BSD-3-Clause */
/* Compacting a dynamic or differencing VHD, and where its blocks lie.
 *
 * Compact runs in two phases, each leaving an image that opens after a
 * crash at any point (at worst with leaked space):
 *  1. Free: every block that reads as zeros, with zeros below it too
 *     (freeable.h), loses its BAT entry; the table is made durable, then
 *     the block's space is punched.
 *  2. Pack (the moves decided by lib/ops/pack_plan.c): a block is copied
 *     to space no durable BAT entry references, the copy is flushed, then
 *     its BAT entry is repointed and flushed; only after that may its old
 *     place be reused. Finally the footer goes to the new end and the file
 *     is cut (vhd_fmt_flush's tail shrink: footer first, then the cut).
 */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "freeable.h"
#include "util/arith.h"

#define SECTOR VHD_SECTOR_SIZE
#define COPY_CHUNK (1u << 20)

struct compact_run {
  struct vhd_image *img;
  struct vhd_state *s;
  vhd_progress_fn progress;
  void *opaque;
  uint64_t done, total;
  uint8_t *buf;   /* COPY_CHUNK bytes */
};

/* One unit of work done; non-zero when the caller cancelled. */
static bool step(struct compact_run *c)
{
  c->done++;
  return c->progress && c->progress(c->opaque, c->done, c->total) != 0;
}

static uint64_t block_bytes(const struct vhd_state *s)
{
  return (uint64_t)s->bitmap_bytes + s->block_size;
}

/* Phase 1. Freed blocks are punched once the BAT without them is durable;
 * a host that cannot punch just keeps the space until phase 2. */
static int free_zero_blocks(struct compact_run *c, uint64_t *freed, bool *cancelled)
{
  struct vhd_image *img = c->img;
  struct vhd_state *s = c->s;
  uint32_t *old = vhd_malloc(((size_t)s->total_blocks + 1) * sizeof *old);
  size_t nold = 0;
  int r = 0;

  if (!old)
    return vhd_error(ENOMEM, "%s: out of memory compacting", img->path);
  for (uint32_t blk = 0; blk < s->total_blocks && r == 0; blk++) {
    if (s->bat.entry[blk] == VHD_BAT_UNUSED)
      continue;
    uint64_t off = (uint64_t)blk * s->block_size;
    enum freeable f;
    r = block_freeable(img, off, min_u64(s->block_size, img->virtual_size - off), c->buf,
                       COPY_CHUNK, &f);
    if (r < 0)
      break;
    /* No VHD state says "zeros" while hiding the parent: such a block
     * stays (FREEABLE_ZERO). */
    if (f == FREEABLE_ABSENT && (r = vhd_batmap_invalidate(img, s)) < 0)
      break;
    if (f == FREEABLE_ABSENT) {
      old[nold++] = s->bat.entry[blk];
      vhd_bat_set(&s->bat, blk, VHD_BAT_UNUSED);
      vhd_bitmap_forget(&s->bitmaps, blk);
      s->meta_dirty = true;
    }
    if (step(c)) {
      *cancelled = true;
      break;
    }
  }
  /* Commit what was freed even when the scan stopped early. */
  int r2 = vhd_fmt_flush(img);
  if (r == 0)
    r = r2;
  for (size_t i = 0; r == 0 && i < nold && s->can_punch; i++) {
    int p = io_punch_hole(img->io, (uint64_t)old[i] * SECTOR, block_bytes(s));
    if (p == -ENOTSUP)
      s->can_punch = false;
    else if (p < 0)
      r = p;
  }
  *freed = nold;
  vhd_free(old);
  return r;
}

/* Copy one block's bytes (bitmap and data) from one file place to another
 * that does not overlap it. */
static int copy_block(struct compact_run *c, uint64_t from, uint64_t to)
{
  uint64_t len = block_bytes(c->s);
  for (uint64_t done = 0; done < len;) {
    size_t n = (size_t)min_u64(COPY_CHUNK, len - done);
    int r = io_pread(c->img->io, c->buf, n, from + done);
    if (r == 0)
      r = io_pwrite(c->img->io, c->buf, n, to + done);
    if (r < 0)
      return r;
    done += n;
  }
  return 0;
}

/* Blocks go after the header, BAT and locators (meta_end). In a file
 * whose blocks all have their data on 4 KiB boundaries (Hyper-V's aligned
 * layout) the moved blocks keep that alignment. */
int vhd_fmt_pack_rules(struct vhd_image *img, struct pack_rules *rules)
{
  struct vhd_state *s = vhd_state(img);
  if (!vhd_is_sparse(s))
    return -ENOTSUP;
  bool aligned = true;
  for (uint32_t i = 0; i < s->bat.count && aligned; i++)
    if (s->bat.entry[i] != VHD_BAT_UNUSED)
      aligned = (vhd_block_offset(s, i) + s->bitmap_bytes) % VHD_DATA_ALIGN == 0;
  rules->start = align_up(s->meta_end, SECTOR);
  rules->align = aligned ? VHD_DATA_ALIGN : SECTOR;
  rules->skew = aligned ? s->bitmap_bytes : 0;
  /* Entries past the disk's last block (a table longer than the disk
   * needs) are no blocks to move, but what they point at stays theirs. */
  uint32_t extra = vhd_bat_count_used(&s->bat, s->bat.count) -
                   vhd_bat_count_used(&s->bat, s->total_blocks);
  if (extra == 0)
    return 0;
  rules->fixed = vhd_malloc((size_t)extra * sizeof *rules->fixed);
  if (!rules->fixed)
    return vhd_error(ENOMEM, "%s: out of memory compacting", img->path);
  for (uint32_t i = s->total_blocks; i < s->bat.count; i++)
    if (s->bat.entry[i] != VHD_BAT_UNUSED)
      rules->fixed[rules->nfixed++] = (struct pack_range){ vhd_block_offset(s, i),
                                                           block_bytes(s) };
  return 0;
}

int vhd_fmt_move_blocks(struct vhd_image *img, const struct pack_plan *plan,
                        vhd_progress_fn progress, void *opaque)
{
  struct vhd_state *s = vhd_state(img);
  struct compact_run c = { img, s, progress, opaque, 0, plan->n, NULL };
  bool cancelled = false;
  int r = 0;
  c.buf = vhd_malloc(COPY_CHUNK);
  if (!c.buf)
    return vhd_error(ENOMEM, "%s: out of memory compacting", img->path);
  size_t released = 0;   /* of the moves made */
  for (size_t k = 0; k < plan->n && r == 0 && !cancelled; k++) {
    const struct pack_move *m = &plan->move[k];
    if (m->commit_first)
      r = vhd_fmt_flush(img);
    if (r == 0)
      r = copy_block(&c, m->from, m->to);
    if (r < 0)
      break;
    vhd_bat_set(&s->bat, (uint32_t)m->blk, (uint32_t)(m->to / SECTOR));
    s->meta_dirty = true;
    released = m->released_end;
    cancelled = step(&c);
  }
  vhd_free(c.buf);
  /* The last batch; then the old places (no durable entry points there
   * now) give back their space; then the footer goes to the new end and
   * the file is cut, so no punch can reach the footer. */
  int r2 = vhd_fmt_flush(img);
  if (r == 0)
    r = r2;
  if (r == 0 && s->can_punch)
    r = slots_punch_released(img->io, plan->released, released);
  s->trimmed = true;
  r2 = vhd_fmt_flush(img);
  if (r == 0)
    r = r2;
  if (r == 0 && cancelled)
    r = vhd_error(ECANCELED, "%s: compact cancelled", img->path);
  return r;
}

int vhd_fmt_compact(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
                    struct vhd_compact_result *result)
{
  struct vhd_state *s = vhd_state(img);
  struct compact_run c = { img, s, progress, opaque, 0, 0, NULL };
  /* Packing (move_blocks, next) fills the free slots itself. */
  slots_clear(&s->slots);
  bool cancelled = false;
  uint64_t freed = 0;
  int r;

  if (!vhd_is_sparse(s))
    return 0;   /* a fixed disk has no blocks to free */
  /* Start from a durable, consistent file. */
  if ((r = vhd_fmt_flush(img)) < 0)
    return r;
  /* Work: each block of the disk looked at. */
  c.total = vhd_bat_count_used(&s->bat, s->total_blocks);
  c.buf = vhd_malloc(COPY_CHUNK);
  if (!c.buf)
    return vhd_error(ENOMEM, "%s: out of memory compacting", img->path);
  r = free_zero_blocks(&c, &freed, &cancelled);
  result->blocks_freed = freed;
  vhd_free(c.buf);
  if (r == 0 && cancelled)
    r = vhd_error(ECANCELED, "%s: compact cancelled", img->path);
  return r;
}

int vhd_fmt_block_slot(struct vhd_image *img, uint64_t blk, uint64_t *host, uint64_t *bytes)
{
  struct vhd_state *s = vhd_state(img);
  if (!vhd_is_sparse(s) || blk >= s->total_blocks)
    return -ERANGE;
  if (s->bat.entry[blk] == VHD_BAT_UNUSED)
    return 0;
  *host = vhd_block_offset(s, (uint32_t)blk);
  *bytes = block_bytes(s);
  return 1;
}
