/* SPDX-License-Identifier: BSD-3-Clause */
/* Compacting a dynamic or differencing VHDX, and where its blocks lie.
 *
 * Two phases, each leaving a file that opens after a crash at any point
 * (at worst with leaked space, which a rerun gives back):
 *  1. Free: a present block that reads as zeros (freeable.h) becomes
 *     NOT_PRESENT when the layers below read as zeros there too, else ZERO
 *     (which hides them); its space is punched at once, which is safe
 *     before the BAT change is durable because the old block reads as
 *     zeros either way. The change is committed through the log.
 *  2. Pack (the moves decided by lib/ops/pack_plan.c, which keeps each
 *     copy off space the durable BAT references): a batch of blocks is
 *     copied, then one log commit flushes the copies and repoints their
 *     BAT entries; an old place is reused only after that commit. Blocks
 *     move down past the log and the regions; sector bitmap blocks
 *     (differencing files) stay where they are.
 * Once the last commit is durable and the log is empty, free space at the
 * end of the file is cut off.
 *
 * Content is unchanged, so the data write GUID stays (children of this
 * file keep their link); the file write GUID changes as for any write. */
#include "vhdx.h"
#include "error.h"
#include "freeable.h"
#include "util/arith.h"

#define SCAN_CHUNK VHDX_MIB

static bool is_present(unsigned st)
{
  return st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
}

/* After a commit that left the log empty: cut free space off the end and
 * forget reusable space that was in it. */
int vhdx_cut_tail(struct vhdx *s)
{
  if (s->meta_dirty || s->log_guid_in_header)
    return 0;
  uint64_t end = align_up(vhdx_structures_end(s), VHDX_MIB);
  if (end < VHDX_MIB)
    end = VHDX_MIB;
  if (end >= s->file_size)
    return 0;
  int r = io_set_size(s->io, end);
  if (r == 0)
    r = vhdx_sync(s);
  if (r < 0)
    return r;
  s->file_size = end;
  if (s->alloc_end > end)
    s->alloc_end = end;
  slots_drop_from(&s->slots, end);
  return 0;
}

struct compact_run {
  struct vhd_image *img;
  struct vhdx *s;
  vhd_progress_fn progress;
  void *opaque;
  uint64_t done, total;
  bool header_done;   /* the file write GUID is renewed */
  uint8_t *buf;       /* SCAN_CHUNK bytes */
};

/* One unit of work done; true when the caller cancelled. */
static bool step(struct compact_run *c)
{
  c->done++;
  return c->progress && c->progress(c->opaque, c->done, c->total) != 0;
}

/* Before the first change: a new file write GUID, the data write GUID
 * kept (the content stays the same). */
static int begin(struct compact_run *c)
{
  if (c->header_done || c->s->guids_updated)
    return 0;
  int r = vhdx_header_update(c->s, VHDX_NEW_FILE_GUID, NULL);
  c->header_done = r == 0;
  return r;
}

/* Phase 1: zero-reading blocks lose their space. */
static int free_zero_blocks(struct compact_run *c, uint64_t *freed, bool *cancelled)
{
  struct vhdx *s = c->s;
  int r = 0;
  for (uint64_t b = 0; b < s->payload_blocks && r == 0; b++) {
    if (!is_present(vhdx_block_state(s, b)))
      continue;
    uint64_t off = b * s->block_size;
    enum freeable f;
    r = block_freeable(c->img, off, min_u64(s->block_size, s->virtual_size - off), c->buf,
                       SCAN_CHUNK, &f);
    if (r == 0 && f != FREEABLE_NO && (r = begin(c)) == 0) {
      uint64_t idx = vhdx_payload_index(s, b);
      uint64_t old = VHDX_BAT_OFFSET(vhdx_bat_get(s, idx));
      unsigned state = f == FREEABLE_ABSENT && s->has_parent ? VHDX_BAT_NOT_PRESENT
                                                             : VHDX_BAT_ZERO;
      vhdx_bat_set(s, idx, VHDX_BAT_ENTRY(state, 0));
      (*freed)++;
      int p = io_punch_hole(s->io, old, s->block_size);
      vhdx_slot_freed(s, old);
      if (p < 0 && p != -ENOTSUP)
        r = p;
    }
    if (r == 0 && step(c)) {
      *cancelled = true;
      break;
    }
  }
  return r;
}

/* Copy a block's bytes to a place no durable BAT entry references. */
static int copy_block(struct compact_run *c, uint64_t from, uint64_t to)
{
  for (uint64_t done = 0; done < c->s->block_size; done += SCAN_CHUNK) {
    int r = io_pread(c->s->io, c->buf, SCAN_CHUNK, from + done);
    if (r == 0)
      r = io_pwrite(c->s->io, c->buf, SCAN_CHUNK, to + done);
    if (r < 0)
      return r;
  }
  return 0;
}

/* Blocks go past the first MiB in whole MiB, off the log, the regions and
 * the sector bitmap blocks. A fixed file keeps every block where it is. */
int vhdx_pack_rules(struct vhd_image *img, struct pack_rules *rules)
{
  struct vhdx *s = vhdx_of(img);
  if (s->leave_allocated && !s->has_parent)
    return -ENOTSUP;
  size_t cap = 4 + (s->has_parent ? (size_t)s->bitmap_blocks : 0);
  struct pack_range *f = rules->fixed = vhd_malloc(cap * sizeof *f);
  if (!f)
    return vhd_error(ENOMEM, "%s: out of memory compacting", s->path);
  f[0] = (struct pack_range){ s->hdr.log_offset, s->hdr.log_length };
  f[1] = (struct pack_range){ s->reg.bat_offset, s->reg.bat_length };
  f[2] = (struct pack_range){ s->reg.meta_offset, s->reg.meta_length };
  f[3] = (struct pack_range){ s->reg.other_start, s->reg.other_end - s->reg.other_start };
  rules->nfixed = 4;
  for (uint64_t chunk = 0; chunk < s->bitmap_blocks && s->has_parent; chunk++) {
    uint64_t e = vhdx_bat_get(s, vhdx_bitmap_index(s, chunk));
    if (VHDX_BAT_STATE(e) == VHDX_SB_PRESENT)
      f[rules->nfixed++] = (struct pack_range){ VHDX_BAT_OFFSET(e), VHDX_BITMAP_BLOCK };
  }
  rules->start = VHDX_MIB;
  rules->align = VHDX_MIB;
  rules->skew = 0;
  return 0;
}

int vhdx_move_blocks(struct vhd_image *img, const struct pack_plan *plan,
                     vhd_progress_fn progress, void *opaque)
{
  struct vhdx *s = vhdx_of(img);
  struct compact_run c = { .img = img, .s = s, .progress = progress, .opaque = opaque,
                           .total = plan->n };
  bool cancelled = false;
  int r = 0;
  if (plan->n == 0)
    return 0;
  c.buf = vhd_malloc(SCAN_CHUNK);
  if (!c.buf)
    return vhd_error(ENOMEM, "%s: out of memory compacting", s->path);
  /* The plan places blocks in free space itself; the list would go stale. */
  slots_clear(&s->slots);
  size_t released = 0;   /* of the moves made */
  for (size_t k = 0; k < plan->n && r == 0 && !cancelled; k++) {
    const struct pack_move *m = &plan->move[k];
    uint64_t idx = vhdx_payload_index(s, m->blk);
    if (m->commit_first)
      r = vhdx_log_commit(s);
    if (r == 0)
      r = begin(&c);
    if (r == 0)
      r = copy_block(&c, m->from, m->to);
    if (r < 0)
      break;
    vhdx_bat_set(s, idx, VHDX_BAT_ENTRY(VHDX_BAT_STATE(vhdx_bat_get(s, idx)), m->to));
    released = m->released_end;
    cancelled = step(&c);
  }
  vhd_free(c.buf);
  int r2 = vhdx_log_commit(s);
  if (r == 0)
    r = r2;
  if (r == 0)
    r = vhdx_cut_tail(s);
  /* Old places the cut left (below a block that stayed) hold old copies. */
  if (r == 0)
    r = slots_punch_released(s->io, plan->released, released);
  if (r == 0 && cancelled)
    r = vhd_error(ECANCELED, "%s: compact cancelled", s->path);
  return r;
}

int vhdx_compact(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
                 struct vhd_compact_result *result)
{
  struct vhdx *s = vhdx_of(img);
  struct compact_run c = { .img = img, .s = s, .progress = progress, .opaque = opaque };
  bool cancelled = false;
  uint64_t punched;
  int r;

  if (s->leave_allocated && !s->has_parent)
    return 0;   /* a fixed file keeps every block (MS-VHDX 2.5.1.1) */
  if (s->broken)
    return vhd_error(EIO, "%s: an earlier metadata update failed; close and reopen the "
                     "image", s->path);
  /* Start from a durable file: every freed slot reusable. */
  if ((r = vhdx_log_commit(s)) < 0)
    return r;
  /* Work: each present block looked at. */
  for (uint64_t b = 0; b < s->payload_blocks; b++)
    c.total += is_present(vhdx_block_state(s, b));
  c.buf = vhd_malloc(SCAN_CHUNK);
  if (!c.buf)
    return vhd_error(ENOMEM, "%s: out of memory compacting", s->path);

  r = free_zero_blocks(&c, &result->blocks_freed, &cancelled);
  /* Free slots found at open may still hold old bytes; no durable BAT
   * entry references them, so their space can go back at once. */
  if (r == 0)
    r = slots_punch_reusable(&s->slots, s->io, s->block_size, &punched);
  /* What was changed is committed even when cancelled. */
  int r2 = vhdx_log_commit(s);
  if (r == 0)
    r = r2;
  if (r == 0)
    r = vhdx_cut_tail(s);
  vhd_free(c.buf);
  if (r == 0 && cancelled)
    r = vhd_error(ECANCELED, "%s: compact cancelled", s->path);
  return r;
}

uint64_t vhdx_image_end(struct vhd_image *img) { return vhdx_structures_end(vhdx_of(img)); }

int vhdx_block_slot(struct vhd_image *img, uint64_t blk, uint64_t *host, uint64_t *bytes)
{
  struct vhdx *s = vhdx_of(img);
  if (blk >= s->payload_blocks)
    return -ERANGE;
  uint64_t e = vhdx_bat_get(s, vhdx_payload_index(s, blk));
  if (!is_present(VHDX_BAT_STATE(e)))
    return 0;
  *host = VHDX_BAT_OFFSET(e);
  *bytes = s->block_size;
  return 1;
}
