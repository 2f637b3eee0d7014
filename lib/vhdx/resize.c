/* SPDX-License-Identifier: BSD-3-Clause */
/* Changing the virtual size of a VHDX.
 *
 * The size is one 8-byte metadata item; it changes in a log transaction of
 * its own (one 4 KiB sector, so one log entry: atomic), which is the commit
 * point. Everything else is ordered around it so that a crash before it
 * leaves the old disk unchanged and a crash after it the new one:
 *
 *  growing: BAT entries for the new blocks (NOT_PRESENT, or new space for a
 *  fixed file) are committed first (resize_room), then lib/ops/resize.c
 *  writes zeros over whatever the last block or a parent holds past the old
 *  end - all of it past the old end, so invisible - and then the size;
 *
 *  shrinking: the size first - from then on the blocks past the new end
 *  cannot be seen - then zeros over the rest of the last block, and whole
 *  blocks past the end become ZERO (differencing) or NOT_PRESENT and are
 *  punched. A crash before the size leaves the old disk with all its data
 *  (freeing first let a kill show zeros at the old size); a crash after it
 *  leaves blocks past the end, leaked space that a rerun of the same resize
 *  frees, and a tail that a later grow clears before it shows. The file is
 *  cut behind its last structure.
 *
 * A size whose entries do not fit in the BAT region first gets a larger
 * region (bat_move.c), a step of its own that keeps the old size. */
#include "vhdx.h"
#include "error.h"
#include "image.h"
#include "util/endian.h"
#include "util/arith.h"

#define META_IS_USER 0x1u

/* File offset of the Virtual Disk Size item. */
static int find_size_item(struct vhdx *s, uint64_t *off)
{
  uint8_t *t = vhd_malloc(VHDX_META_TABLE_SIZE);
  if (!t)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  int r = vhdx_meta_read(s, t, VHDX_META_TABLE_SIZE, s->reg.meta_offset);
  if (r < 0) {
    vhd_free(t);
    return r;
  }
  uint16_t count = get_le16(t + 10);
  r = vhd_error(EINVAL, "%s: the metadata table has no Virtual Disk Size item", s->path);
  for (uint16_t i = 0; i < count && i < VHDX_META_MAX_ENTRIES; i++) {
    const uint8_t *e = t + 32 + 32 * (size_t)i;
    if (memcmp(e, vhdx_guid_virtual_disk_size, 16) == 0 && !(get_le32(e + 24) & META_IS_USER)) {
      *off = s->reg.meta_offset + get_le32(e + 16);
      r = 0;
      break;
    }
  }
  vhd_free(t);
  if (r == 0 && *off % VHDX_SECTOR > VHDX_SECTOR - 8)
    r = vhd_error(ENOTSUP, "%s: the Virtual Disk Size item straddles two metadata sectors",
                  s->path);
  return r;
}

/* The commit point: the size item alone in one transaction. */
static int commit_size(struct vhdx *s, uint64_t size)
{
  uint64_t off = 0;
  uint8_t *sec;
  int r = find_size_item(s, &off);
  if (r == 0)
    r = vhdx_log_commit(s);   /* nothing else may ride along */
  if (r == 0)
    r = vhdx_pending_sector(s, off / VHDX_SECTOR * VHDX_SECTOR, &sec);
  if (r < 0)
    return r;
  put_le64(sec + off % VHDX_SECTOR, size);
  s->meta_dirty = true;
  return vhdx_log_commit(s);
}

/* Geometry for a new size (chunk_ratio and bat_count follow), with a BAT
 * region large enough for it. Restores the old one on failure. */
static int set_geometry(struct vhdx *s, uint64_t size)
{
  int r = vhdx_bat_limit(s->path, size, s->block_size, s->lss);
  if (r == 0)
    r = vhdx_bat_make_room(s, vhdx_bat_entries(size, s->block_size, s->lss));
  if (r < 0)
    return r;
  uint64_t old = s->virtual_size;
  s->virtual_size = size;
  r = vhdx_compute_geometry(s, NULL);
  if (r < 0) {
    s->virtual_size = old;
    vhdx_compute_geometry(s, NULL);
    return vhd_error(ENOSPC, "%s: a disk of %llu bytes needs more BAT entries than the BAT "
                     "region (%u bytes) holds", s->path, (unsigned long long)size,
                     s->reg.bat_length);
  }
  return 0;
}

/* Hold count entries in memory, the new ones read from the region. */
static int load_bat_to(struct vhdx *s, uint64_t old_count, uint64_t count)
{
  if (count <= old_count)
    return 0;
  uint64_t *bat = vhd_realloc(s->bat, (size_t)count * 8);
  if (!bat)
    return vhd_error(ENOMEM, "%s: out of memory for a BAT of %llu entries", s->path,
                     (unsigned long long)count);
  s->bat = bat;
  size_t old_bytes = vhdx_bat_dirty_bytes(old_count);
  size_t bytes = vhdx_bat_dirty_bytes(count);
  uint8_t *dirty = vhd_realloc(s->bat_dirty, bytes);
  if (!dirty)
    return vhd_error(ENOMEM, "%s: out of memory for a BAT of %llu entries", s->path,
                     (unsigned long long)count);
  memset(dirty + old_bytes, 0, bytes - old_bytes);
  s->bat_dirty = dirty;
  uint8_t buf[VHDX_SECTOR];
  for (uint64_t i = old_count; i < count;) {
    uint64_t n = min_u64(count - i, VHDX_SECTOR / 8);
    int r = vhdx_meta_read(s, buf, (size_t)n * 8, s->reg.bat_offset + i * 8);
    if (r < 0)
      return r;
    for (uint64_t j = 0; j < n; j++)
      s->bat[i + j] = get_le64(buf + 8 * j);
    i += n;
  }
  return 0;
}

static bool is_bitmap_index(const struct vhdx *s, uint64_t i)
{
  return i % (s->chunk_ratio + 1) == s->chunk_ratio;
}

/* Cut the file behind its last structure: space left there by an
 * interrupted resize or by freed blocks belongs to nothing. */
static int trim_tail(struct vhdx *s)
{
  uint64_t end = align_up(vhdx_structures_end(s), VHDX_MIB);
  uint64_t size;
  int r = io_get_size(s->io, &size);
  if (r < 0 || size <= end)
    return r;
  if ((r = io_set_size(s->io, end)) < 0 || (r = vhdx_sync(s)) < 0)
    return r;
  /* Punched space remembered for reuse may lie past the cut. */
  slots_drop_from(&s->slots, end);
  s->file_size = s->alloc_end = end;
  return 0;
}

/* The first step of a grow (resize_room): the BAT region and the entries
 * of the new blocks (NOT_PRESENT, or new space for a fixed file) are
 * committed - all of it past the old end, so invisible - and the view
 * reaches size. The operation layer then clears what the new area shows
 * from before; vhdx_resize commits the size. */
static int grow_room(struct vhdx *s, uint64_t size, uint64_t *stale_end)
{
  uint64_t old_size = s->virtual_size, old_count = s->bat_count;
  uint64_t old_blocks = s->payload_blocks, old_chunks = s->bitmap_blocks;
  bool fixed = s->leave_allocated && !s->has_parent;
  int r = set_geometry(s, size);
  if (r < 0)
    return r;
  if ((r = load_bat_to(s, old_count, s->bat_count)) < 0 || (r = vhdx_begin_change(s)) < 0)
    goto undo;

  /* Entries of the new blocks; the region may hold anything there. */
  uint64_t space = s->alloc_end;
  for (uint64_t b = old_blocks; b < s->payload_blocks; b++) {
    uint64_t want = 0;
    if (fixed) {
      want = VHDX_BAT_ENTRY(VHDX_BAT_FULLY_PRESENT, space);
      space += s->block_size;
    }
    if (s->bat[vhdx_payload_index(s, b)] != want)
      vhdx_bat_set(s, vhdx_payload_index(s, b), want);
  }
  for (uint64_t c = old_chunks; c < s->bitmap_blocks && s->has_parent; c++)
    if (vhdx_bitmap_index(s, c) < s->bat_count && s->bat[vhdx_bitmap_index(s, c)])
      vhdx_bat_set(s, vhdx_bitmap_index(s, c), 0);
  if (space > s->alloc_end) {
    /* A fixed file's new blocks: fresh space, a hole reading as zeros. */
    if ((r = io_set_size(s->io, space)) < 0)
      goto undo;
    s->alloc_end = s->file_size = space;
  }
  if ((r = vhdx_log_commit(s)) < 0)
    goto undo;
  /* The old last block may hold bytes past the old end, and a parent may
   * hold some anywhere; new blocks of this file are empty. */
  *stale_end = s->has_parent ? size : min_u64(size, align_up(old_size, s->block_size));
  return 0;
undo:
  /* The file still has the old size; so must the view of it. */
  s->virtual_size = old_size;
  vhdx_compute_geometry(s, NULL);
  return r;
}

/* Free the blocks past the end of the disk (their entries become state,
 * NOT_PRESENT or ZERO to hide a parent; bitmap entries NOT_PRESENT) and
 * punch their space. */
static int free_past(struct vhdx *s, uint64_t blocks, uint64_t chunks, unsigned state)
{
  uint64_t per = s->chunk_ratio + 1;
  for (uint64_t i = vhdx_payload_index(s, blocks ? blocks - 1 : 0); i < s->bat_count; i++) {
    uint64_t e = s->bat[i];
    unsigned st = VHDX_BAT_STATE(e);
    bool bitmap = is_bitmap_index(s, i);
    uint64_t num = bitmap ? i / per : i / per * s->chunk_ratio + i % per;
    bool located = bitmap ? st == VHDX_SB_PRESENT
                          : st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
    if (!located || (bitmap ? num < chunks : num < blocks))
      continue;
    int r = vhdx_begin_change(s);
    if (r < 0)
      return r;
    vhdx_bat_set(s, i, bitmap ? 0 : VHDX_BAT_ENTRY(state, 0));
    r = io_punch_hole(s->io, VHDX_BAT_OFFSET(e), bitmap ? VHDX_BITMAP_BLOCK : s->block_size);
    if (r < 0 && r != -ENOTSUP)
      return r;
  }
  return vhdx_log_commit(s);
}

/* Zeros over [size, end of its block) in a present last block, so a later
 * grow finds zeros there. The bytes lie past the new end: written raw. */
static int zero_block_tail(struct vhdx *s, uint64_t size)
{
  uint64_t b = (size - 1) / s->block_size, in = size - b * s->block_size;
  unsigned st = vhdx_block_state(s, b);
  if (in == s->block_size ||
      (st != VHDX_BAT_FULLY_PRESENT && st != VHDX_BAT_PARTIALLY_PRESENT))
    return 0;
  uint64_t off = VHDX_BAT_OFFSET(vhdx_bat_get(s, vhdx_payload_index(s, b))) + in;
  uint64_t len = s->block_size - in;
  if (io_punch_hole(s->io, off, len) == 0)
    return 0;
  uint8_t *z = vhd_calloc(1, (size_t)min_u64(len, VHDX_MIB));
  if (!z)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  int r = 0;
  for (uint64_t done = 0; r == 0 && done < len; done += VHDX_MIB)
    r = io_pwrite(s->io, z, (size_t)min_u64(len - done, VHDX_MIB), off + done);
  vhd_free(z);
  return r;
}

static int shrink(struct vhd_image *img, struct vhdx *s, uint64_t size)
{
  uint64_t blocks = (size + s->block_size - 1) / s->block_size;
  uint64_t chunks = (blocks + s->chunk_ratio - 1) / s->chunk_ratio;
  unsigned gone = s->has_parent ? VHDX_BAT_ZERO : VHDX_BAT_NOT_PRESENT;
  int r = vhdx_begin_change(s);
  if (r == 0)
    r = commit_size(s, size);
  if (r < 0)
    return r;
  img->virtual_size = size;
  /* Everything below lies past the new end, where nothing can be seen. */
  if ((r = zero_block_tail(s, size)) < 0 || (r = free_past(s, blocks, chunks, gone)) < 0)
    return r;
  if ((r = set_geometry(s, size)) < 0)
    return r;
  return trim_tail(s);
}

/* The size limits every step checks; a size the in-memory BAT cannot
 * hold is refused before the file is touched (trim_tail would cut a
 * writer's slack). */
static int size_allowed(struct vhdx *s, uint64_t new_size)
{
  if (new_size > VHDX_MAX_VIRTUAL_SIZE)
    return vhd_error(EFBIG, "%s: new size %llu exceeds the VHDX limit of 64 TiB", s->path,
                     (unsigned long long)new_size);
  return new_size > s->virtual_size ? vhdx_bat_limit(s->path, new_size, s->block_size, s->lss)
                                    : 0;
}

int vhdx_resize_room(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                     void *opaque, uint64_t *stale_end)
{
  struct vhdx *s = vhdx_of(img);
  (void)progress;
  (void)opaque;
  *stale_end = img->virtual_size;
  int r = size_allowed(s, new_size);
  if (r < 0 || new_size <= s->virtual_size)
    return r;
  /* Space an interrupted grow left at the end is reused. */
  if ((r = vhdx_flush(img)) < 0 || (r = trim_tail(s)) < 0)
    return r;
  return grow_room(s, new_size, stale_end);
}

int vhdx_resize(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                void *opaque)
{
  struct vhdx *s = vhdx_of(img);
  (void)progress;
  (void)opaque;
  int r = size_allowed(s, new_size);
  if (r == 0)
    r = vhdx_flush(img);   /* the cleared new area durable before the size */
  if (r < 0)
    return r;
  if (new_size > img->virtual_size) {
    if (new_size != s->virtual_size)
      return vhd_error(EINVAL, "%s: growing to %llu bytes needs resize_room first", s->path,
                       (unsigned long long)new_size);
    if ((r = commit_size(s, new_size)) < 0)
      return r;
    img->virtual_size = new_size;
    return 0;
  }
  if (new_size == img->virtual_size) {
    /* A room given up (the view back to the file's size), or what an
     * interrupted shrink left: blocks past the end, a tail belonging to
     * nothing. */
    if (s->virtual_size != new_size) {
      s->virtual_size = new_size;
      if ((r = vhdx_compute_geometry(s, NULL)) < 0)
        return r;
    }
    uint64_t chunks = (s->payload_blocks + s->chunk_ratio - 1) / s->chunk_ratio;
    r = free_past(s, s->payload_blocks, chunks, s->has_parent ? VHDX_BAT_ZERO
                                                              : VHDX_BAT_NOT_PRESENT);
    return r < 0 ? r : trim_tail(s);
  }
  if ((r = trim_tail(s)) < 0)
    return r;
  return shrink(img, s, new_size);
}
