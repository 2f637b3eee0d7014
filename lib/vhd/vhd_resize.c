/* SPDX-License-Identifier: BSD-3-Clause */
/* Changing the virtual size of a VHD.
 *
 * A crash at any point must leave the old or the new size and an image
 * that opens. The size lives in the footer, and a dynamic or differencing
 * file has two copies of it (end of file, offset 0) which open compares:
 * they cannot change together, so the copy is first blanked (a missing
 * copy is only a warning, and the next change rewrites it), then the
 * footer at the end - the commit point - then the copy.
 *
 * Fixed: growing writes the new footer at the new end first (the file
 * then has the new size), then zeros the old footer, now guest data.
 * Shrinking writes the new footer at the new end, then cuts the file.
 *
 * Dynamic and differencing, growing: the BAT needs an entry per block.
 * When the sectors after it are taken, whatever is there (data blocks,
 * parent locator payloads) is copied to the end of the file, made
 * durable, and only then pointed at; the table is extended with unused
 * entries and max_table_entries raised (one header sector), all before the
 * size changes. Data this layer (or a parent) holds past the old end is
 * zeroed first, so the new area reads as zeros. Shrinking commits the
 * size, then frees the blocks past the end through the ordinary flush,
 * which also cuts the file when they were at its tail. */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "util/arith.h"

#define SECTOR VHD_SECTOR_SIZE
#define COPY_CHUNK (1u << 20)

static int put_footer(struct vhd_image *img, struct vhd_state *s, uint64_t pos)
{
  uint8_t buf[VHD_FOOTER_SIZE];
  vhd_footer_encode(&s->footer, buf);
  return io_pwrite(img->io, buf, sizeof buf, pos);
}

static int write_then_flush(struct vhd_image *img, const void *buf, size_t len, uint64_t off)
{
  int r = io_pwrite(img->io, buf, len, off);
  return r < 0 ? r : io_flush(img->io);
}

/* Creators whose disks every reader (qemu included) sizes by current_size.
 * Any other creator is sized by its CHS geometry somewhere, so a new size
 * for it must be a CHS product to read back the same everywhere. */
static bool sized_by_current_size(const uint8_t app[4])
{
  static const char *const exact[] = {"win ", "qem2", "d2v ", "CTXS", "tap\0"};
  for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
    if (memcmp(app, exact[i], 4) == 0)
      return true;
  return false;
}

/* The size the footer will say, given the size asked for. */
static uint64_t footer_size_for(const struct vhd_footer *f, uint64_t size)
{
  if (!sized_by_current_size(f->creator_app))
    size = vhd_chs_round_up(size / SECTOR) * SECTOR;
  return size;
}

/* original_size is "the size at creation", but libvhdi (20210425) takes it
 * for the disk's size, so it follows the new size too. */
static void set_footer_size(struct vhd_footer *f, uint64_t size)
{
  f->original_size = size;
  f->current_size = size;
  vhd_chs_from_sectors(size / SECTOR, &f->cylinders, &f->heads, &f->sectors_per_track);
}

static int cancelled(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
                     uint64_t done, uint64_t total)
{
  if (progress && progress(opaque, done, total))
    return vhd_error(ECANCELED, "%s: resize cancelled (the image keeps its old size)",
                     img->path);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Fixed                                                               */

static int resize_fixed(struct vhd_image *img, struct vhd_state *s, uint64_t new_size)
{
  uint64_t old_size = img->virtual_size, footer_pos = s->footer_pos, file_size;
  int r;

  /* Bytes between the old size and the old footer (padding some writers
   * leave) are not guest data yet: zeroed before the size takes them in. */
  if (new_size > old_size && old_size < footer_pos &&
      ((r = io_zero_range(img->io, old_size, min_u64(new_size, footer_pos) - old_size)) < 0 ||
       (r = io_flush(img->io)) < 0))
    return r;
  set_footer_size(&s->footer, new_size);
  if ((r = put_footer(img, s, new_size)) < 0 || (r = io_flush(img->io)) < 0 ||
      (r = io_get_size(img->io, &file_size)) < 0)
    return r;
  if (file_size > new_size + VHD_FOOTER_SIZE &&
      ((r = io_set_size(img->io, new_size + VHD_FOOTER_SIZE)) < 0 || (r = io_flush(img->io)) < 0))
    return r;
  if (new_size > footer_pos) {
    /* The old footer lies inside the disk now; until this write a crash
     * shows its bytes in the new area, never in the old one. */
    uint64_t len = min_u64(new_size - footer_pos, VHD_FOOTER_SIZE);
    if ((r = io_zero_range(img->io, footer_pos, len)) < 0 || (r = io_flush(img->io)) < 0)
      return r;
  }
  s->footer_pos = s->data_end = new_size;
  s->footer_short = false;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Dynamic and differencing: making room after the BAT                 */

/* Reserve len bytes at the end for a structure being moved: not below
 * floor (the area being cleared), reusing space leaked past data_end, and
 * with the footer moved past it first so the file always ends in one. */
static int reserve_tail(struct vhd_image *img, struct vhd_state *s, uint64_t len,
                        uint64_t floor, uint64_t *out)
{
  uint64_t start = align_up(max_u64(s->data_end, floor), SECTOR);
  uint64_t end = start + align_up(len, SECTOR);
  if (end / SECTOR >= VHD_BAT_UNUSED)
    return vhd_error(EFBIG, "%s: no room to move a structure: a VHD cannot address data "
                     "beyond 2 TiB", img->path);
  if (end > s->footer_pos) {
    int r = put_footer(img, s, end);
    if (r == 0)
      r = io_flush(img->io);
    if (r < 0)
      return r;
    s->footer_pos = end;
  }
  s->data_end = end;
  *out = start;
  return 0;
}

static int copy_range(struct vhd_image *img, uint64_t from, uint64_t to, uint64_t len)
{
  uint8_t *buf = vhd_malloc((size_t)min_u64(len, COPY_CHUNK));
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory moving a block", img->path);
  int r = 0;
  for (uint64_t done = 0; done < len && r == 0;) {
    size_t n = (size_t)min_u64(len - done, COPY_CHUNK);
    r = io_pread(img->io, buf, n, from + done);
    if (r == 0)
      r = io_pwrite(img->io, buf, n, to + done);
    done += n;
  }
  vhd_free(buf);
  return r;
}

/* Block blk to the end of the file: copied and durable before the BAT
 * entry (one sector) points at the copy. A crash before that leaves the
 * old block in use and the copy leaked at the tail, which the next move
 * reuses. Once nothing durable points at the old place, its space goes
 * back to the host (a cancelled resize leaves it a free slot). */
static int move_block(struct vhd_image *img, struct vhd_state *s, uint32_t blk, uint64_t floor)
{
  uint64_t len = (uint64_t)s->bitmap_bytes + s->block_size, dest = 0;
  uint64_t old = vhd_block_offset(s, blk);
  /* Where a new block would go: its data 4 KiB-aligned. */
  int r = reserve_tail(img, s, len, vhd_block_start_after(s, max_u64(s->data_end, floor)),
                       &dest);
  if (r == 0)
    r = copy_range(img, vhd_block_offset(s, blk), dest, len);
  if (r == 0)
    r = io_flush(img->io);
  if (r < 0)
    return r;
  vhd_bat_set(&s->bat, blk, (uint32_t)(dest / SECTOR));
  vhd_bitmap_forget(&s->bitmaps, blk);
  if ((r = vhd_bat_write_dirty(img->io, &s->bat)) < 0 || (r = io_flush(img->io)) < 0)
    return r;
  r = io_punch_hole(img->io, old, len);
  return r == -ENOTSUP ? 0 : r;
}

static int write_header(struct vhd_image *img, struct vhd_state *s)
{
  uint8_t buf[VHD_HEADER_SIZE];
  vhd_header_encode(&s->header, buf);
  return write_then_flush(img, buf, sizeof buf, s->header_offset);
}

/* A parent locator's payload to the end of the file, then the header
 * (one write of its two sectors) points at it. */
static int move_locator(struct vhd_image *img, struct vhd_state *s, unsigned i, uint64_t space,
                        uint64_t floor)
{
  struct vhd_locator *l = &s->header.loc[i];
  uint64_t dest = 0;
  int r = reserve_tail(img, s, space, floor, &dest);
  if (r == 0)
    r = copy_range(img, l->data_offset, dest, space);
  if (r == 0)
    r = io_flush(img->io);
  if (r < 0)
    return r;
  uint64_t old = l->data_offset;
  l->data_offset = dest;
  r = write_header(img, s);
  if (r < 0)
    l->data_offset = old;
  return r;
}

static uint64_t locator_space(const struct vhd_locator *l)
{
  uint64_t space;
  if (!vhd_locator_space_bytes(l->data_space, &space) || space < l->data_length)
    space = l->data_length;
  return align_up(space, SECTOR);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
  return a < b + blen && b < a + alen;
}

/* Clear [from, to), the sectors the longer BAT will take: every block and
 * locator payload there goes to the end of the file. */
static int make_room(struct vhd_image *img, struct vhd_state *s, uint64_t from, uint64_t to,
                     vhd_progress_fn progress, void *opaque)
{
  uint64_t block_bytes = (uint64_t)s->bitmap_bytes + s->block_size;
  uint64_t total = 0, done = 0;
  int r;

  if (overlaps(s->header_offset, VHD_HEADER_SIZE, from, to - from))
    return vhd_error(ENOSPC, "%s: the BAT cannot grow: the dynamic header (offset 0x%llx) "
                     "follows it", img->path, (unsigned long long)s->header_offset);
  for (uint32_t i = 0; i < s->bat.count; i++)
    if (s->bat.entry[i] != VHD_BAT_UNUSED &&
        overlaps(vhd_block_offset(s, i), block_bytes, from, to - from))
      total++;

  /* The footer first, when the table will reach over it. */
  if (to > s->footer_pos) {
    uint64_t unused;
    if ((r = reserve_tail(img, s, 0, to, &unused)) < 0)
      return r;
  }
  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++) {
    const struct vhd_locator *l = &s->header.loc[i];
    uint64_t space = locator_space(l);
    if (l->code != VHD_LOC_NONE && space && overlaps(l->data_offset, space, from, to - from) &&
        (r = move_locator(img, s, i, space, to)) < 0)
      return r;
  }
  for (uint32_t i = 0; i < s->bat.count; i++) {
    if (s->bat.entry[i] == VHD_BAT_UNUSED ||
        !overlaps(vhd_block_offset(s, i), block_bytes, from, to - from))
      continue;
    if ((r = cancelled(img, progress, opaque, done, total)) < 0 ||
        (r = move_block(img, s, i, to)) < 0)
      return r;
    done++;
  }
  if (s->data_end < to)
    s->data_end = to;
  return cancelled(img, progress, opaque, total, total);
}

/* Extend the table to count entries: room made, the new entries written
 * as unused and durable, then max_table_entries raised. */
static int grow_bat(struct vhd_image *img, struct vhd_state *s, uint32_t count,
                    vhd_progress_fn progress, void *opaque)
{
  uint64_t from = s->bat.offset + vhd_bat_bytes(s->bat.count);
  uint64_t to = s->bat.offset + vhd_bat_padded_bytes(count);
  struct vhd_bat bigger;
  int r;

  /* resize_sparse has already disabled a blktap batmap, which this
   * longer table now covers. */
  if ((r = make_room(img, s, from, to, progress, opaque)) < 0)
    return r;
  if ((r = vhd_bat_init_empty(img->path, s->bat.offset, count, &bigger)) < 0)
    return r;
  memcpy(bigger.entry, s->bat.entry, vhd_bat_bytes(s->bat.count));
  uint8_t *ones = vhd_malloc(to - from);
  if (!ones) {
    vhd_bat_free(&bigger);
    return vhd_error(ENOMEM, "%s: out of memory growing the BAT", img->path);
  }
  memset(ones, 0xff, to - from);
  r = write_then_flush(img, ones, to - from, from);
  vhd_free(ones);
  struct vhd_bitmap_cache cache;
  if (r == 0)
    r = vhd_bitmap_init(&cache, img->path, count, s->block_size);
  if (r < 0) {
    vhd_bat_free(&bigger);
    return r;
  }
  uint32_t old_count = s->header.max_table_entries;
  s->header.max_table_entries = count;
  if ((r = write_header(img, s)) < 0) {
    s->header.max_table_entries = old_count;
    vhd_bitmap_destroy(&cache);
    vhd_bat_free(&bigger);
    return r;
  }
  /* The caller flushed, so no bitmap or BAT change is lost here. */
  vhd_bat_free(&s->bat);
  s->bat = bigger;
  vhd_bitmap_destroy(&s->bitmaps);
  s->bitmaps = cache;
  s->meta_end = max_u64(s->meta_end, to);
  s->data_end = max_u64(s->data_end, s->meta_end);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Dynamic and differencing: the size itself                           */

/* The footer at the end is the commit point; the copy is blanked before
 * and rewritten after (see the top of the file). */
static int commit_size(struct vhd_image *img, struct vhd_state *s, uint64_t size)
{
  static const uint8_t blank[VHD_FOOTER_SIZE];
  int r;

  set_footer_size(&s->footer, size);
  if ((r = write_then_flush(img, blank, sizeof blank, 0)) < 0 ||
      (r = put_footer(img, s, s->footer_pos)) < 0 || (r = io_flush(img->io)) < 0)
    return r;
  img->virtual_size = vhd_footer_virtual_size(&s->footer) & ~(uint64_t)(SECTOR - 1);
  s->total_blocks = (uint32_t)((img->virtual_size + s->block_size - 1) / s->block_size);
  if ((r = put_footer(img, s, 0)) < 0 || (r = io_flush(img->io)) < 0)
    return r;
  s->footer_from_copy = s->copy_mismatch = s->footer_short = false;
  return 0;
}

/* After the size went down: blocks past the end are freed (the flush
 * writes the BAT and cuts the file), and what the last block holds past
 * the end is zeroed so a later grow finds zeros. */
static int free_past_end(struct vhd_image *img, struct vhd_state *s, uint64_t size)
{
  uint32_t keep = (uint32_t)((size + s->block_size - 1) / s->block_size);
  uint64_t tail_end = (uint64_t)keep * s->block_size;
  int r;

  if (tail_end > size && keep - 1 < s->bat.count && s->bat.entry[keep - 1] != VHD_BAT_UNUSED) {
    /* The driver's zero works inside the virtual size; this part of the
     * block lies past it, so write the zeros directly. */
    uint64_t off = vhd_block_offset(s, keep - 1) + s->bitmap_bytes + (size - (tail_end - s->block_size));
    if ((r = io_zero_range(img->io, off, tail_end - size)) < 0)
      return r;
  }
  for (uint32_t i = keep; i < s->bat.count; i++) {
    if (s->bat.entry[i] == VHD_BAT_UNUSED)
      continue;
    uint64_t start = vhd_block_offset(s, i);
    vhd_bat_set(&s->bat, i, VHD_BAT_UNUSED);
    vhd_bitmap_forget(&s->bitmaps, i);
    s->trimmed = true;
    s->meta_dirty = true;
    /* Reads of the freed block before the BAT is durable may see zeros:
     * they lie past the new end, which is what a reader sees anyway. */
    r = io_punch_hole(img->io, start, (uint64_t)s->bitmap_bytes + s->block_size);
    if (r < 0 && r != -ENOTSUP)
      return r;
  }
  return vhd_fmt_flush(img);
}

/* The size is already the one asked for, but a resize may have stopped
 * after its commit: a blanked footer copy, blocks past the end. */
static int finish_interrupted(struct vhd_image *img, struct vhd_state *s)
{
  int r;
  if (s->copy_mismatch && !s->footer_from_copy) {
    if ((r = put_footer(img, s, 0)) < 0 || (r = io_flush(img->io)) < 0)
      return r;
    s->copy_mismatch = false;
  }
  if (vhd_bat_count_used(&s->bat, s->bat.count) > vhd_bat_count_used(&s->bat, s->total_blocks))
    return free_past_end(img, s, img->virtual_size);
  return 0;
}

/* The checks and rounding every step of a resize applies: the size the
 * footer will record for new_size. */
static int footer_target(struct vhd_image *img, struct vhd_state *s, uint64_t new_size,
                         uint64_t *out)
{
  if (new_size > VHD_MAX_VIRTUAL_SIZE)
    return vhd_error(EFBIG, "%s: new size %llu exceeds the VHD limit of 2040 GiB", img->path,
                     (unsigned long long)new_size);
  new_size = footer_size_for(&s->footer, new_size);
  if (new_size > VHD_MAX_VIRTUAL_SIZE)
    return vhd_error(EFBIG, "%s: new size %llu (rounded to a CHS geometry, as creator of "
                     "this file needs) exceeds the VHD limit of 2040 GiB", img->path,
                     (unsigned long long)new_size);
  uint64_t blocks = vhd_is_sparse(s) ? (new_size + s->block_size - 1) / s->block_size : 0;
  if (blocks > VHD_MAX_BAT_ENTRIES)
    return vhd_error(EFBIG, "%s: %llu blocks of %u bytes are more than the %u a VHD BAT may "
                     "hold", img->path, (unsigned long long)blocks, s->block_size,
                     VHD_MAX_BAT_ENTRIES);
  *out = new_size;
  return 0;
}

int vhd_fmt_resize_room(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                        void *opaque, uint64_t *stale_end)
{
  struct vhd_state *s = vhd_state(img);
  *stale_end = img->virtual_size;
  /* A longer BAT may grow over free slots; they are found again at the
   * next open. */
  slots_clear(&s->slots);
  int r = footer_target(img, s, new_size, &new_size);
  if (r < 0 || !vhd_is_sparse(s) || new_size <= img->virtual_size)
    return r;   /* a fixed VHD zeroes its own padding as it grows */
  uint32_t blocks = (uint32_t)((new_size + s->block_size - 1) / s->block_size);
  /* Start from a clean state: every pending change durable. A blktap
   * batmap (a bit per block, right after the BAT) would neither cover the
   * new blocks nor survive a longer table: disabled first, as blktap does. */
  if ((r = vhd_fmt_flush(img)) < 0 || (r = vhd_batmap_invalidate(img, s)) < 0 ||
      (r = io_flush(img->io)) < 0)
    return r;
  if (blocks > s->bat.count && (r = grow_bat(img, s, blocks, progress, opaque)) < 0)
    return r;
  /* Up to the end of the old last block, this layer may hold stale bytes;
   * beyond it only a differencing layer's parent can show through. */
  *stale_end = new_size;
  return 0;
}

static int resize_sparse(struct vhd_image *img, struct vhd_state *s, uint64_t new_size)
{
  uint64_t blocks = (new_size + s->block_size - 1) / s->block_size;
  int r;

  /* The cleared area (and everything else) durable before the size. */
  if ((r = vhd_fmt_flush(img)) < 0 || (r = vhd_batmap_invalidate(img, s)) < 0 ||
      (r = io_flush(img->io)) < 0)
    return r;
  if (new_size < img->virtual_size) {
    if ((r = commit_size(img, s, new_size)) < 0)
      return r;
    return free_past_end(img, s, new_size);
  }
  if (blocks > s->bat.count)
    return vhd_error(EINVAL, "%s: growing to %llu bytes needs resize_room first", img->path,
                     (unsigned long long)new_size);
  return commit_size(img, s, new_size);
}

int vhd_fmt_resize(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                   void *opaque)
{
  struct vhd_state *s = vhd_state(img);
  (void)progress;
  (void)opaque;
  slots_clear(&s->slots);
  int r = footer_target(img, s, new_size, &new_size);
  if (r < 0)
    return r;
  if (new_size == img->virtual_size)
    return vhd_is_sparse(s) ? finish_interrupted(img, s) : 0;
  if (!vhd_is_sparse(s)) {
    r = resize_fixed(img, s, new_size);
    if (r == 0)
      img->virtual_size = new_size;
    return r;
  }
  return resize_sparse(img, s, new_size);
}
