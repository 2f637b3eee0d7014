/* SPDX-License-Identifier: BSD-3-Clause */
/* Making the BAT region big enough for a larger disk (resize).
 *
 * The region grows where it is when it is the last structure of the file,
 * else a new, larger region is laid out behind the last structure; either
 * way nothing has to move out of its way. The order makes every crash
 * harmless:
 *
 *  1. the new region's bytes (the current entries, zeros for the rest) are
 *     written where nothing refers to them yet - past the last structure -
 *     and flushed: a crash leaves the old file with space behind it that
 *     belongs to nothing (a leak the next resize or repair cuts off);
 *  2. the commit point: both region table copies, changed together in one
 *     log entry (so one atomic step: replayed whole or not at all);
 *  3. the old region, now referenced by nothing, is punched.
 *
 * The disk keeps its size throughout: a region larger than its entries
 * need is valid, so the size change that follows is resize.c's ordinary
 * grow. */
#include "vhdx.h"
#include "error.h"
#include "util/arith.h"
#include "util/endian.h"

/* Sectors of the one log entry that changes both region tables. */
#define REGION_SECTORS (2u * VHDX_REGION_SIZE / VHDX_SECTOR)

/* Write the new region's content at dest: entries [first, bat_count) from
 * memory (authoritative, and equal to the file once flushed), zeros up to
 * length. */
static int write_region(struct vhdx *s, uint64_t dest, uint64_t first, uint64_t length)
{
  uint8_t *buf = vhd_malloc(VHDX_MIB);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  int r = 0;
  for (uint64_t at = first * 8; r == 0 && at < length; at += VHDX_MIB) {
    size_t n = (size_t)min_u64(length - at, VHDX_MIB);
    memset(buf, 0, n);
    for (size_t k = 0; k < n / 8 && at / 8 + k < s->bat_count; k++)
      put_le64(buf + 8 * k, s->bat[at / 8 + k]);
    r = io_pwrite(s->io, buf, n, dest + at);
  }
  vhd_free(buf);
  return r;
}

/* Point the BAT entry of the region table the open used (copy 1 when it
 * is valid) at [offset, offset + length), and lay the result over both
 * copies in the pending metadata. */
static int stage_region_tables(struct vhdx *s, uint64_t offset, uint32_t length)
{
  uint8_t *raw = NULL;
  int r = vhdx_read_region_copies(s, &raw);
  if (r < 0)
    return r;
  struct vhdx_regions parsed;
  uint8_t *t = raw;
  if (vhdx_parse_region_table(s->path, "region table 1 at 192 KiB", raw, &parsed) < 0)
    t = raw + VHDX_REGION_SIZE;
  vhd_error_clear();
  uint32_t count = get_le32(t + 8);
  r = vhd_error(EINVAL, "%s: the region table has no BAT entry", s->path);
  for (uint32_t i = 0; i < count && i < VHDX_REGION_MAX_ENTRIES; i++) {
    uint8_t *e = t + 16 + 32 * (size_t)i;
    if (memcmp(e, vhdx_guid_bat, 16) == 0) {
      put_le64(e + 16, offset);
      put_le32(e + 24, length);
      r = 0;
      break;
    }
  }
  if (r == 0) {
    vhd_error_clear();
    put_le32(t + 4, vhdx_checksum(t, VHDX_REGION_SIZE, 4));
    r = vhdx_meta_write(s, VHDX_REGION1_OFFSET, t, VHDX_REGION_SIZE);
  }
  if (r == 0)
    r = vhdx_meta_write(s, VHDX_REGION2_OFFSET, t, VHDX_REGION_SIZE);
  vhd_free(raw);
  return r;
}

int vhdx_bat_make_room(struct vhdx *s, uint64_t entries)
{
  uint64_t length = align_up(entries * 8, VHDX_MIB);
  if (length <= s->reg.bat_length)
    return 0;
  if (length > UINT32_MAX - VHDX_MIB)
    return vhd_error(EFBIG, "%s: a BAT of %llu entries does not fit in one region", s->path,
                     (unsigned long long)entries);
  /* Both region tables must change in one log entry, or a crash between
   * two entries could leave copies that disagree. */
  if (vhdx_log_entry_size(REGION_SECTORS) > (uint64_t)s->hdr.log_length - VHDX_SECTOR)
    return vhd_error(ENOTSUP, "%s: the log (%u bytes) is too small to move the BAT region "
                     "in one step", s->path, s->hdr.log_length);
  int r = vhdx_log_commit(s);   /* nothing else may ride along */
  if (r < 0)
    return r;

  uint64_t old_offset = s->reg.bat_offset, old_length = s->reg.bat_length;
  uint64_t end = vhdx_structures_end(s);
  bool in_place = old_offset + old_length == end && s->reg.other_end <= old_offset;
  uint64_t dest = in_place ? old_offset
                           : align_up(max_u64(max_u64(end, s->reg.other_end), s->alloc_end),
                                      VHDX_MIB);
  uint64_t first = in_place ? old_length / 8 : 0;
  if ((r = vhdx_begin_change(s)) < 0 || (r = write_region(s, dest, first, length)) < 0 ||
      (r = vhdx_sync(s)) < 0)
    return r;
  /* Blocks allocated from now on go behind the new region, and the log
   * entry's last_file_offset covers it. */
  s->alloc_end = max_u64(s->alloc_end, dest + length);
  s->file_size = max_u64(s->file_size, dest + length);

  if ((r = stage_region_tables(s, dest, (uint32_t)length)) < 0 ||
      (r = vhdx_log_commit(s)) < 0)
    return r;
  s->reg.bat_offset = dest;
  s->reg.bat_length = (uint32_t)length;
  if (!in_place) {
    r = io_punch_hole(s->io, old_offset, old_length);
    if (r < 0 && r != -ENOTSUP)
      return r;
  }
  return 0;
}
