/* SPDX-License-Identifier: BSD-3-Clause */
/* Free block slots of a dynamic or differencing VHD (slots.h): finding
 * them at open and clearing one before a new block goes there; and the
 * footer put back at the end after a crash, the other thing a read-write
 * open sets right about the file's layout. */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "util/arith.h"

#define SECTOR VHD_SECTOR_SIZE

/* The first meta range that [start, end) overlaps, or NULL. */
static const struct vhd_file_range *meta_in(const struct vhd_file_range *meta, size_t nmeta,
                                            uint64_t start, uint64_t end)
{
  for (size_t m = 0; m < nmeta; m++)
    if (meta[m].end > meta[m].start && start < meta[m].end && meta[m].start < end)
      return &meta[m];
  return NULL;
}

int vhd_find_free_slots(struct vhd_image *img, struct vhd_state *s,
                        const struct vhd_file_range *meta, size_t nmeta)
{
  uint64_t used = vhd_bat_count_used(&s->bat, s->bat.count);
  uint64_t bytes = vhd_slot_bytes(s);
  if (used == 0)
    return 0;
  uint64_t *start = vhd_malloc(used * sizeof *start);
  if (!start)
    return vhd_error(ENOMEM, "%s: out of memory listing free block slots", img->path);
  size_t n = 0;
  for (uint32_t i = 0; i < s->bat.count; i++)
    if (s->bat.entry[i] != VHD_BAT_UNUSED)
      start[n++] = (uint64_t)s->bat.entry[i] * SECTOR;
  vhd_sort_u64(start, n);

  /* Walk the gaps from the end of the header, BAT and locators to the
   * last block; a slot may not cover a meta range (set-parent can put
   * locator payloads after the blocks). */
  uint64_t pos = align_up(s->meta_end, SECTOR);
  int r = 0;
  /* A real file has no more free slots than its table has entries (each
   * slot held a block); a hostile one can claim any gap, so the walk stops
   * there: memory and time stay bounded by the table. */
  uint64_t cap = s->bat.count;
  for (size_t i = 0; i < n && r == 0 && s->slots.reusable.count < cap; i++) {
    while (pos + bytes <= start[i] && s->slots.reusable.count < cap) {
      const struct vhd_file_range *m = meta_in(meta, nmeta, pos, pos + bytes);
      if (m) {
        pos = align_up(m->end, SECTOR);
        continue;
      }
      /* Inside a gap, where a new block would go (data 4 KiB-aligned). */
      uint64_t at = vhd_block_start_after(s, pos);
      if (at + bytes <= start[i] && !meta_in(meta, nmeta, at, at + bytes))
        pos = at;
      if (slots_push(&s->slots.reusable, pos) < 0) {
        r = vhd_error(ENOMEM, "%s: out of memory listing free block slots", img->path);
        break;
      }
      pos += bytes;
    }
    if (start[i] + bytes > pos)
      pos = start[i] + bytes;
  }
  vhd_free(start);
  return r;
}

int vhd_clear_slot(struct vhd_image *img, struct vhd_state *s, uint64_t start)
{
  /* The sector bitmap is written by the caller; the data must read as
   * zeros wherever the new block does not write. */
  return io_zero_range(img->io, start + s->bitmap_bytes, s->block_size);
}

int vhd_restore_footer(struct vhd_image *img, struct vhd_state *s)
{
  uint8_t buf[VHD_FOOTER_SIZE];
  uint64_t pos = align_up(s->data_end, SECTOR);
  int r;

  /* Past data_end nothing durable points (an allocation that did not
   * finish), so the footer may overwrite it; the cut comes after the
   * footer is durable, and the copy at offset 0 stays valid throughout. */
  vhd_footer_encode(&s->footer, buf);
  if ((r = io_pwrite(img->io, buf, sizeof buf, pos)) < 0 || (r = io_flush(img->io)) < 0 ||
      (r = io_set_size(img->io, pos + VHD_FOOTER_SIZE)) < 0 || (r = io_flush(img->io)) < 0)
    return r;
  s->footer_pos = pos;
  s->footer_short = false;
  s->footer_from_copy = false;
  return 0;
}
