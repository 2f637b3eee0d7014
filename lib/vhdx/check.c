/* SPDX-License-Identifier: BSD-3-Clause */
/* Whole-file checks beyond what open validates (open already reported
 * headers, region tables, metadata, the log and every BAT entry to the
 * collector). */
#include "vhdx.h"
#include "error.h"

uint64_t vhdx_structures_end(const struct vhdx *s)
{
  uint64_t end = s->hdr.log_offset + s->hdr.log_length;
  if (s->reg.bat_offset + s->reg.bat_length > end)
    end = s->reg.bat_offset + s->reg.bat_length;
  if (s->reg.meta_offset + s->reg.meta_length > end)
    end = s->reg.meta_offset + s->reg.meta_length;
  for (uint64_t i = 0; i < s->bat_count; i++) {
    uint64_t e = s->bat[i];
    bool bitmap = i % (s->chunk_ratio + 1) == s->chunk_ratio;
    unsigned st = VHDX_BAT_STATE(e);
    bool located = bitmap ? s->has_parent && st == VHDX_SB_PRESENT
                          : st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
    uint64_t len = bitmap ? VHDX_BITMAP_BLOCK : s->block_size;
    if (located && VHDX_BAT_OFFSET(e) + len > end)
      end = VHDX_BAT_OFFSET(e) + len;
  }
  return end;
}

int vhdx_check(struct vhd_image *img, struct vhd_diag *d)
{
  struct vhdx *s = vhdx_of(img);
  /* Space past the last structure belongs to nothing. */
  uint64_t end = vhdx_structures_end(s);
  /* Less than a MiB cannot hold a block: slack some writers leave
   * (Disk2VHD ends its files 512 bytes after the last block). */
  if (s->file_size >= end + VHDX_MIB)
    diag_leak(d, s->file_size - end, "%s: %llu bytes after the last structure (offset %llu) "
              "belong to nothing", s->path, (unsigned long long)(s->file_size - end),
              (unsigned long long)end);
  else if (s->file_size > end)
    diag_info(d, "%s: %llu bytes of slack after the last structure", s->path,
              (unsigned long long)(s->file_size - end));
  /* Free slots between blocks: a leak where the host still spends space
   * on them, a note where they are holes (new blocks take them first). */
  uint64_t held, punched;
  int r = slots_census(&s->slots, s->io, s->block_size, &held, &punched);
  if (r == -ENOMEM)
    return vhd_error(ENOMEM, "%s: out of memory checking free block slots", s->path);
  if (r < 0)
    return r;
  if (held)
    diag_leak(d, held * s->block_size, "%s: %llu free block slots (%llu bytes) between "
              "blocks hold data no block uses; compact gives them back", s->path,
              (unsigned long long)held, (unsigned long long)(held * s->block_size));
  if (punched)
    diag_info(d, "%s: %llu free block slots (%llu bytes) between blocks are holes; new "
              "blocks take them first", s->path, (unsigned long long)punched,
              (unsigned long long)(punched * s->block_size));
  uint64_t allocated = 0;
  for (uint64_t b = 0; b < s->payload_blocks; b++) {
    unsigned st = vhdx_block_state(s, b);
    if (st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT)
      allocated++;
  }
  diag_info(d, "%s: VHDX %s, %llu of %llu blocks of %u bytes allocated, logical sectors of "
            "%u bytes%s", s->path,
            s->has_parent ? "differencing" : s->leave_allocated ? "fixed" : "dynamic",
            (unsigned long long)allocated, (unsigned long long)s->payload_blocks,
            s->block_size, s->lss, s->log_replayed ? ", log pending" : "");
  return 0;
}
