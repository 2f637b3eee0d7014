/* SPDX-License-Identifier: BSD-3-Clause */
/* The block allocation table and the sector bitmaps it points at.
 *
 * The BAT interleaves payload entries with sector bitmap entries: after
 * every chunk_ratio payload entries comes the entry of the 1 MiB bitmap
 * block covering them. The whole table lives in memory (its size is bounded
 * by the BAT region, which lies inside the file); changes mark their 4 KiB
 * sector dirty until the next flush writes them through the log. Bitmap
 * sectors being changed are kept in the pending map instead. */
#include "vhdx.h"
#include "error.h"
#include "util/arith.h"
#include "util/array.h"
#include "util/endian.h"

uint64_t vhdx_bat_entries(uint64_t size, uint32_t block_size, uint32_t lss)
{
  uint64_t chunk_ratio = vhdx_chunk_ratio(lss, block_size);
  uint64_t payload = (size + block_size - 1) / block_size;
  return (payload + chunk_ratio - 1) / chunk_ratio * (chunk_ratio + 1);
}

int vhdx_bat_limit(const char *path, uint64_t size, uint32_t block_size, uint32_t lss)
{
  uint64_t entries = vhdx_bat_entries(size, block_size, lss);
  if (entries <= VHDX_MAX_BAT_ENTRIES)
    return 0;
  uint64_t least = block_size;
  while (least < VHDX_MAX_BLOCK && vhdx_bat_entries(size, (uint32_t)least, lss) >
                                      VHDX_MAX_BAT_ENTRIES)
    least *= 2;
  return vhd_error(EFBIG, "%s: a disk of %llu bytes in %u-byte blocks needs %llu BAT entries, "
                   "more than the %u this version holds in memory; blocks of %llu bytes "
                   "would do", path, (unsigned long long)size, block_size,
                   (unsigned long long)entries, VHDX_MAX_BAT_ENTRIES,
                   (unsigned long long)least);
}

int vhdx_compute_geometry(struct vhdx *s, struct vhd_diag *d)
{
  /* Limit and its reasons: vhdx.h. */
  if (vhdx_bat_limit(s->path, s->virtual_size, s->block_size, s->lss) < 0)
    return vhdx_fatal(d, "%s", vhd_last_error());
  s->chunk_ratio = vhdx_chunk_ratio(s->lss, s->block_size);
  s->payload_blocks = (s->virtual_size + s->block_size - 1) / s->block_size;
  s->bitmap_blocks = (s->payload_blocks + s->chunk_ratio - 1) / s->chunk_ratio;
  s->sectors_per_block = s->block_size / s->lss;

  /* Every payload entry must be in the region; the bitmap entry of a
   * final partial chunk (QEMU's layout) is read when it is there. */
  uint64_t last = s->payload_blocks - 1;
  uint64_t needed = vhdx_payload_index(s, last) + 1;
  uint64_t full = s->bitmap_blocks * (s->chunk_ratio + 1);
  uint64_t region_entries = s->reg.bat_length / 8;
  if (region_entries < needed)
    return vhdx_fatal(d, "%s: BAT region of %u bytes holds %llu entries, but a disk of "
                      "%llu bytes in %u-byte blocks needs %llu", s->path, s->reg.bat_length,
                      (unsigned long long)region_entries,
                      (unsigned long long)s->virtual_size, s->block_size,
                      (unsigned long long)needed);
  /* Whole 4 KiB sectors, so each one the log rewrites is fully known. */
  uint64_t count = full < region_entries ? full : region_entries;
  count = vhdx_bat_sectors(count) * VHDX_BAT_PER_SECTOR;
  if (count > region_entries)
    count = region_entries;
  s->bat_count = count;
  return 0;
}

int vhdx_load_bat(struct vhdx *s, struct vhd_diag *d)
{
  (void)d;
  if (s->bat_count > SIZE_MAX / 8)
    return vhd_error(ENOMEM, "%s: BAT of %llu entries does not fit in memory", s->path,
                     (unsigned long long)s->bat_count);
  s->bat = vhd_malloc((size_t)s->bat_count * 8);
  s->bat_dirty = vhd_calloc(vhdx_bat_dirty_bytes(s->bat_count), 1);
  uint8_t *buf = vhd_malloc(VHDX_MIB);
  if (!s->bat || !s->bat_dirty || !buf) {
    vhd_free(buf);
    return vhd_error(ENOMEM, "%s: out of memory for a BAT of %llu entries", s->path,
                     (unsigned long long)s->bat_count);
  }
  for (uint64_t i = 0; i < s->bat_count;) {
    uint64_t n = s->bat_count - i < VHDX_MIB / 8 ? s->bat_count - i : VHDX_MIB / 8;
    int r = vhdx_meta_read(s, buf, (size_t)n * 8, s->reg.bat_offset + i * 8);
    if (r < 0) {
      vhd_free(buf);
      return r;
    }
    for (uint64_t j = 0; j < n; j++)
      s->bat[i + j] = get_le64(buf + 8 * j);
    i += n;
  }
  vhd_free(buf);
  return 0;
}

uint64_t vhdx_bat_get(const struct vhdx *s, uint64_t index)
{
  return index < s->bat_count ? s->bat[index] : 0;
}

void vhdx_bat_set(struct vhdx *s, uint64_t index, uint64_t entry)
{
  s->bat[index] = entry;
  uint64_t sec = index / VHDX_BAT_PER_SECTOR;
  s->bat_dirty[sec / 8] |= (uint8_t)(1u << (sec % 8));
  s->meta_dirty = true;
}

unsigned vhdx_block_state(const struct vhdx *s, uint64_t block)
{
  unsigned st = VHDX_BAT_STATE(vhdx_bat_get(s, vhdx_payload_index(s, block)));
  return st == VHDX_BAT_UNMAPPED_OLD ? VHDX_BAT_UNMAPPED : st;
}

/* --- overlap checks ------------------------------------------------------ */

/* One allocated block in one 64-bit key, its file offset in MiB above its
 * BAT index, so that sorting the keys sorts by offset and the table of
 * keys costs 8 bytes an allocated block (the BAT has at most
 * VHDX_MAX_BAT_ENTRIES < 2^24 entries; 40 bits of MiB reach 2^60 bytes). */
#define SPAN_INDEX_BITS 24
_Static_assert(VHDX_MAX_BAT_ENTRIES <= 1u << SPAN_INDEX_BITS, "span keys hold a BAT index");
static uint64_t span_key(uint64_t offset, uint64_t index)
{
  return offset / VHDX_MIB << SPAN_INDEX_BITS | index;
}
static uint64_t span_offset(uint64_t key) { return (key >> SPAN_INDEX_BITS) * VHDX_MIB; }
static uint64_t span_index(uint64_t key) { return key & ((1u << SPAN_INDEX_BITS) - 1); }

static void sift_down(uint64_t *a, size_t start, size_t n)
{
  size_t root = start;
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n)
      return;
    if (child + 1 < n && a[child + 1] > a[child])
      child++;
    if (a[root] >= a[child])
      return;
    uint64_t t = a[root];
    a[root] = a[child];
    a[child] = t;
    root = child;
  }
}

/* Heapsort: no extra memory, no recursion, O(n log n) whatever the input. */
static void sort_spans(uint64_t *a, size_t n)
{
  for (size_t i = 1; i < n; i++)
    if (a[i] < a[i - 1])
      goto unsorted;
  return;   /* files written front to back are already in order */
unsorted:
  for (size_t i = n / 2; i-- > 0;)
    sift_down(a, i, n);
  for (size_t end = n; end-- > 1;) {
    uint64_t t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift_down(a, 0, end);
  }
}

static bool is_bitmap_index(const struct vhdx *s, uint64_t index)
{
  return index % (s->chunk_ratio + 1) == s->chunk_ratio;
}

static uint64_t span_length(const struct vhdx *s, uint64_t index)
{
  return is_bitmap_index(s, index) ? VHDX_BITMAP_BLOCK : s->block_size;
}

/* Describe BAT entry index as "payload block N" or "sector bitmap block N". */
static const char *span_kind(const struct vhdx *s, uint64_t index, uint64_t *number)
{
  uint64_t per = s->chunk_ratio + 1;
  if (is_bitmap_index(s, index)) {
    *number = index / per;
    return "sector bitmap block";
  }
  *number = index / per * s->chunk_ratio + index % per;
  return "payload block";
}

/* Blocks must not overlap each other or the fixed structures. In a
 * collecting check an overlapping block is reported and then treated as
 * not present. */
static int check_overlaps(struct vhdx *s, struct vhd_diag *d, uint64_t *sp, size_t n)
{
  sort_spans(sp, n);
  struct {
    const char *name;
    uint64_t offset, length;
  } fixed[] = {
    { "the file header", 0, VHDX_MIB },
    { "the log", s->hdr.log_offset, s->hdr.log_length },
    { "the BAT region", s->reg.bat_offset, s->reg.bat_length },
    { "the metadata region", s->reg.meta_offset, s->reg.meta_length },
  };
  for (size_t i = 0; i < n; i++) {
    uint64_t len = span_length(s, span_index(sp[i])), num;
    const char *kind = span_kind(s, span_index(sp[i]), &num);
    for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) {
      if (fixed[f].length && span_offset(sp[i]) < fixed[f].offset + fixed[f].length &&
          fixed[f].offset < span_offset(sp[i]) + len) {
        int r = diag_corrupt(d, "%s: %s %llu at offset %llu overlaps %s", s->path, kind,
                             (unsigned long long)num, (unsigned long long)span_offset(sp[i]),
                             fixed[f].name);
        if (r < 0)
          return r;
        s->bat[span_index(sp[i])] = 0;
      }
    }
    if (i + 1 < n && span_offset(sp[i + 1]) < span_offset(sp[i]) + len) {
      uint64_t num2;
      const char *kind2 = span_kind(s, span_index(sp[i + 1]), &num2);
      int r = diag_corrupt(d, "%s: %s %llu at offset %llu overlaps %s %llu at offset %llu",
                           s->path, kind2, (unsigned long long)num2,
                           (unsigned long long)span_offset(sp[i + 1]), kind,
                           (unsigned long long)num, (unsigned long long)span_offset(sp[i]));
      if (r < 0)
        return r;
      s->bat[span_index(sp[i + 1])] = 0;
    }
  }
  return 0;
}

/* The payload block slots between the header section (the first MiB) and
 * the last located block that nothing uses: no block (sp sorted by
 * offset, overlapping ones included, so a doubtful place is never handed
 * out), no log, no region, known or not. Offsets and lengths are whole
 * MiB, so every slot is aligned. */
static int find_free_slots(struct vhdx *s, const uint64_t *sp, size_t n)
{
  const uint64_t fixed[][2] = {
    { s->hdr.log_offset, s->hdr.log_length },
    { s->reg.bat_offset, s->reg.bat_length },
    { s->reg.meta_offset, s->reg.meta_length },
    { s->reg.other_start, s->reg.other_end - s->reg.other_start },
  };
  if (n == 0 || (s->leave_allocated && !s->has_parent))
    return 0;
  /* A real file has no more free slots than blocks it can hold at once
   * (each slot held one); a hostile one can claim any gap, so the walk
   * stops there: memory and time stay bounded by the table. */
  uint64_t cap = s->payload_blocks + s->bitmap_blocks;
  uint64_t pos = VHDX_MIB;
  for (size_t i = 0; i < n && s->slots.reusable.count < cap; i++) {
    uint64_t next = span_offset(sp[i]);
    while (pos + s->block_size <= next && s->slots.reusable.count < cap) {
      bool moved = false;
      for (size_t f = 0; f < sizeof fixed / sizeof fixed[0] && !moved; f++)
        if (fixed[f][1] && pos < fixed[f][0] + fixed[f][1] && fixed[f][0] < pos + s->block_size) {
          pos = align_up(fixed[f][0] + fixed[f][1], VHDX_MIB);
          moved = true;
        }
      if (moved)
        continue;
      if (slots_push(&s->slots.reusable, pos) < 0)
        return vhd_error(ENOMEM, "%s: out of memory listing free block slots", s->path);
      pos += s->block_size;
    }
    if (next + span_length(s, span_index(sp[i])) > pos)
      pos = next + span_length(s, span_index(sp[i]));
  }
  return 0;
}

int vhdx_validate_bat(struct vhdx *s, struct vhd_diag *d)
{
  uint64_t reserved = 0, stale_offset = 0, sb_ignored = 0, past_end = 0;
  size_t nspan = 0, cap = 0;
  uint64_t *sp = NULL;
  uint64_t end = align_up(s->file_size, VHDX_MIB);
  if (s->hdr.log_length && s->hdr.log_offset + s->hdr.log_length > end)
    end = s->hdr.log_offset + s->hdr.log_length;
  if (s->reg.bat_offset + s->reg.bat_length > end)
    end = s->reg.bat_offset + s->reg.bat_length;
  if (s->reg.meta_offset + s->reg.meta_length > end)
    end = s->reg.meta_offset + s->reg.meta_length;
  int r = 0;

  for (uint64_t i = 0; i < s->bat_count; i++) {
    uint64_t e = s->bat[i];
    unsigned st = VHDX_BAT_STATE(e);
    uint64_t off = VHDX_BAT_OFFSET(e);
    bool bitmap = is_bitmap_index(s, i);
    uint64_t num;
    const char *kind = span_kind(s, i, &num);
    if (bitmap ? num >= s->bitmap_blocks : num >= s->payload_blocks)
      continue;   /* entries past the disk are never used */
    if (bitmap && !s->has_parent) {
      /* Unused in fixed and dynamic files; QEMU before 8.0 could leave
       * garbage here (issue #727), so these are never trusted. */
      if (e)
        sb_ignored++;
      continue;
    }
    if (bitmap ? (st != VHDX_SB_NOT_PRESENT && st != VHDX_SB_PRESENT)
               : (st == VHDX_BAT_RESERVED_STATE || (st == VHDX_BAT_PARTIALLY_PRESENT && !s->has_parent))) {
      r = diag_corrupt(d, "%s: BAT entry of %s %llu has state %u, which is not valid%s",
                       s->path, kind, (unsigned long long)num, st,
                       s->has_parent ? "" : " in a file without a parent");
      if (r < 0)
        goto out;
      s->bat[i] = 0;
      continue;
    }
    if (VHDX_BAT_RESERVED(e))
      reserved++;
    bool located = bitmap ? st == VHDX_SB_PRESENT
                          : (st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT);
    if (!located) {
      if (off && (st == VHDX_BAT_NOT_PRESENT || st == VHDX_BAT_ZERO))
        stale_offset++;
      continue;
    }
    uint64_t len = bitmap ? VHDX_BITMAP_BLOCK : s->block_size;
    if (off < VHDX_MIB || off >= s->file_size || off >> 60) {   /* >> 60: see span_key */
      if (off < VHDX_MIB)
        r = diag_corrupt(d, "%s: %s %llu is at offset %llu, inside the header section "
                         "(the first MiB), where no block can be", s->path, kind,
                         (unsigned long long)num, (unsigned long long)off);
      else
        r = diag_corrupt(d, "%s: %s %llu is at offset %llu, past the end of the file "
                         "(%llu bytes)", s->path, kind, (unsigned long long)num,
                         (unsigned long long)off, (unsigned long long)s->file_size);
      if (r < 0)
        goto out;
      s->bat[i] = 0;
      continue;
    }
    if (off + len > s->file_size)
      past_end++;   /* QEMU-made files may stop inside their last block */
    if (off + len > end)
      end = off + len;
    uint64_t *n = array_grow(sp, &cap, nspan, sizeof *n, 256);
    if (!n) {
      r = vhd_error(ENOMEM, "%s: out of memory checking the BAT", s->path);
      goto out;
    }
    sp = n;
    sp[nspan++] = span_key(off, i);
  }

  /* A partially present block needs its chunk's sector bitmap. */
  if (s->has_parent) {
    for (uint64_t b = 0; b < s->payload_blocks; b++) {
      uint64_t idx = vhdx_payload_index(s, b);
      if (VHDX_BAT_STATE(s->bat[idx]) != VHDX_BAT_PARTIALLY_PRESENT)
        continue;
      uint64_t c = b / s->chunk_ratio;
      if (VHDX_BAT_STATE(vhdx_bat_get(s, vhdx_bitmap_index(s, c))) != VHDX_SB_PRESENT) {
        r = diag_corrupt(d, "%s: payload block %llu is partially present but sector bitmap "
                         "block %llu is not present", s->path, (unsigned long long)b,
                         (unsigned long long)c);
        if (r < 0)
          goto out;
        s->bat[idx] = 0;
      }
    }
  }

  r = check_overlaps(s, d, sp, nspan);
  if (r == 0)
    r = find_free_slots(s, sp, nspan);
  if (r < 0)
    goto out;
  if (reserved)
    vhdx_warn(s, d, "%s: %llu BAT entries have reserved bits set (ignored)", s->path,
              (unsigned long long)reserved);
  if (stale_offset)
    diag_info(d, "%s: %llu BAT entries in state NOT_PRESENT or ZERO carry a file offset "
              "(ignored; Hyper-V wants 0 there)", s->path, (unsigned long long)stale_offset);
  if (sb_ignored)
    diag_info(d, "%s: %llu sector bitmap entries of a file without a parent are not zero "
              "(ignored)", s->path, (unsigned long long)sb_ignored);
  if (past_end)
    diag_info(d, "%s: %llu blocks end past the end of the file; the missing part reads as "
              "zeros", s->path, (unsigned long long)past_end);
  s->alloc_end = align_up(end, VHDX_MIB);
  r = 0;
out:
  vhd_free(sp);
  return r;
}

/* --- sector bitmaps ---------------------------------------------------- */

static uint64_t bitmap_offset(const struct vhdx *s, uint64_t chunk)
{
  uint64_t e = vhdx_bat_get(s, vhdx_bitmap_index(s, chunk));
  return VHDX_BAT_STATE(e) == VHDX_SB_PRESENT ? VHDX_BAT_OFFSET(e) : 0;
}

int vhdx_bitmap_run(struct vhdx *s, uint64_t chunk, uint64_t first, uint64_t max,
                    bool *set, uint64_t *run)
{
  uint64_t base = bitmap_offset(s, chunk);
  if (!base) {
    *set = false;
    *run = max;
    return 0;
  }
  uint8_t sec[VHDX_SECTOR];
  uint64_t pos = first, n = 0, loaded = UINT64_MAX;
  bool v = false;
  while (n < max) {
    uint64_t byte = pos / 8;
    uint64_t secno = byte / VHDX_SECTOR;
    if (secno != loaded) {
      int r = vhdx_meta_read(s, sec, VHDX_SECTOR, base + secno * VHDX_SECTOR);
      if (r < 0)
        return r;
      loaded = secno;
    }
    uint8_t b = sec[byte % VHDX_SECTOR];
    if (pos % 8 == 0 && n > 0 && max - n >= 8 && b == (v ? 0xFF : 0x00)) {
      pos += 8;
      n += 8;
      continue;
    }
    bool bit = (b >> (pos % 8)) & 1;
    if (n == 0)
      v = bit;
    else if (bit != v)
      break;
    pos++;
    n++;
  }
  *set = v;
  *run = n;
  return 0;
}

int vhdx_pending_sector(struct vhdx *s, uint64_t off, uint8_t **out)
{
  size_t lo = 0, hi = s->npend;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->pend[mid].offset < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < s->npend && s->pend[lo].offset == off) {
    *out = s->pend[lo].data;
    return 0;
  }
  struct vhdx_pending *n = array_grow(s->pend, &s->cap_pend, s->npend, sizeof *n, 16);
  if (!n)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  s->pend = n;
  uint8_t *data = vhd_malloc(VHDX_SECTOR);
  if (!data)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  int r = vhdx_meta_read(s, data, VHDX_SECTOR, off);
  if (r < 0) {
    vhd_free(data);
    return r;
  }
  memmove(&s->pend[lo + 1], &s->pend[lo], (s->npend - lo) * sizeof *s->pend);
  s->pend[lo] = (struct vhdx_pending){ off, data };
  s->npend++;
  *out = data;
  return 0;
}

int vhdx_bitmap_assign(struct vhdx *s, uint64_t chunk, uint64_t first, uint64_t count,
                       bool value)
{
  uint64_t base = bitmap_offset(s, chunk);
  if (!base)
    return vhd_error(EIO, "%s: sector bitmap block %llu is not allocated", s->path,
                     (unsigned long long)chunk);
  uint64_t pos = first, end = first + count;
  while (pos < end) {
    uint64_t secno = pos / 8 / VHDX_SECTOR;
    uint64_t sec_end = (secno + 1) * VHDX_SECTOR * 8;
    uint64_t stop = end < sec_end ? end : sec_end;
    uint8_t *sec = NULL;
    int r = vhdx_pending_sector(s, base + secno * VHDX_SECTOR, &sec);
    if (r < 0)
      return r;
    for (; pos < stop; pos++) {
      uint64_t byte = pos / 8 % VHDX_SECTOR;
      if (pos % 8 == 0 && stop - pos >= 8) {
        sec[byte] = value ? 0xFF : 0x00;
        pos += 7;
        continue;
      }
      if (value)
        sec[byte] |= (uint8_t)(1u << (pos % 8));
      else
        sec[byte] &= (uint8_t)~(1u << (pos % 8));
    }
  }
  s->meta_dirty = true;
  return 0;
}

void vhdx_pending_free(struct vhdx *s)
{
  for (size_t i = 0; i < s->npend; i++)
    vhd_free(s->pend[i].data);
  s->npend = 0;
}

/* --- free block slots --------------------------------------------------- */

void vhdx_slot_freed(struct vhdx *s, uint64_t offset)
{
  (void)slots_push(&s->slots.freed, offset);
}

int vhdx_meta_write(struct vhdx *s, uint64_t off, const uint8_t *buf, size_t len)
{
  while (len > 0) {
    uint64_t sec_off = off / VHDX_SECTOR * VHDX_SECTOR;
    size_t in = (size_t)(off - sec_off);
    size_t n = VHDX_SECTOR - in < len ? VHDX_SECTOR - in : len;
    uint8_t *sec;
    int r = vhdx_pending_sector(s, sec_off, &sec);
    if (r < 0)
      return r;
    memcpy(sec + in, buf, n);
    off += n;
    buf += n;
    len -= n;
  }
  s->meta_dirty = true;
  return 0;
}
