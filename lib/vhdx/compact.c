/* SPDX-License-Identifier: BSD-3-Clause */
/* Compacting a dynamic or differencing VHDX, and where its blocks lie.
 *
 * A present block that reads as zeros (freeable.h) becomes NOT_PRESENT
 * when the layers below read as zeros there too, else ZERO (which hides
 * them); its space is punched at once, which is safe before the BAT change
 * is durable because the old block reads as zeros either way. The BAT
 * change goes through the log like every metadata change. Once it is
 * durable and the log is empty, free space at the end of the file is cut
 * off. Blocks are not moved: the holes already give the space back.
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
    r = io_flush(s->io);
  if (r < 0)
    return r;
  s->file_size = end;
  if (s->alloc_end > end)
    s->alloc_end = end;
  slots_drop_from(&s->slots, end);
  return 0;
}

int vhdx_compact(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
                 struct vhd_compact_result *result)
{
  struct vhdx *s = vhdx_of(img);
  uint64_t total = 0, done = 0;
  bool cancelled = false, header_done = false;
  int r = 0;

  if (s->leave_allocated && !s->has_parent)
    return 0;   /* a fixed file keeps every block (MS-VHDX 2.5.1.1) */
  if (s->broken)
    return vhd_error(EIO, "%s: an earlier metadata update failed; close and reopen the "
                     "image", s->path);
  for (uint64_t b = 0; b < s->payload_blocks; b++)
    total += is_present(vhdx_block_state(s, b));
  uint8_t *buf = vhd_malloc(SCAN_CHUNK);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory compacting", s->path);

  for (uint64_t b = 0; b < s->payload_blocks && r == 0 && !cancelled; b++) {
    if (!is_present(vhdx_block_state(s, b)))
      continue;
    uint64_t off = b * s->block_size;
    uint64_t len = s->virtual_size - off < s->block_size ? s->virtual_size - off
                                                          : s->block_size;
    enum freeable f;
    r = block_freeable(img, off, len, buf, SCAN_CHUNK, &f);
    if (r == 0 && f != FREEABLE_NO) {
      if (!header_done && !s->guids_updated)
        r = vhdx_header_update(s, VHDX_NEW_FILE_GUID, NULL);
      header_done = true;
      uint64_t idx = vhdx_payload_index(s, b);
      uint64_t old = VHDX_BAT_OFFSET(vhdx_bat_get(s, idx));
      unsigned state = f == FREEABLE_ABSENT && s->has_parent ? VHDX_BAT_NOT_PRESENT
                                                             : VHDX_BAT_ZERO;
      if (r == 0) {
        vhdx_bat_set(s, idx, VHDX_BAT_ENTRY(state, 0));
        result->blocks_freed++;
        int p = io_punch_hole(s->io, old, s->block_size);
        vhdx_slot_freed(s, old);
        if (p < 0 && p != -ENOTSUP)
          r = p;
      }
    }
    done++;
    if (r == 0 && progress && progress(opaque, done, total))
      cancelled = true;
  }
  vhd_free(buf);
  /* Free slots found at open may still hold old bytes; no durable BAT
   * entry references them, so their space can go back at once. */
  uint64_t punched;
  if (r == 0)
    r = slots_punch_reusable(&s->slots, s->io, s->block_size, &punched);
  /* What was changed is committed even when cancelled. */
  int r2 = vhdx_log_commit(s);
  if (r == 0)
    r = r2;
  if (r == 0)
    r = vhdx_cut_tail(s);
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
