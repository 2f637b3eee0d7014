/* SPDX-License-Identifier: BSD-3-Clause */
/* The block allocation table. */
#include "vhd/bat.h"

#include "error.h"
#include "util/endian.h"

#define SECTOR 512u

static uint32_t table_sectors(uint32_t count)
{
  return (uint32_t)(vhd_bat_padded_bytes(count) / SECTOR);
}

static int alloc_tables(const char *name, uint64_t offset, uint32_t count, struct vhd_bat *bat)
{
  memset(bat, 0, sizeof *bat);
  bat->offset = offset;
  bat->count = count;
  /* +1 keeps the allocations non-empty for a zero-entry table. */
  bat->entry = vhd_malloc(vhd_bat_bytes(count) + 4);
  bat->dirty = vhd_calloc(table_sectors(count) + 1, 1);
  if (!bat->entry || !bat->dirty) {
    vhd_bat_free(bat);
    return vhd_error(ENOMEM, "%s: out of memory for a BAT of %u entries", name, count);
  }
  return 0;
}

int vhd_bat_load(vhd_io *io, uint64_t offset, uint32_t count, struct vhd_bat *bat)
{
  int r = alloc_tables(io->name, offset, count, bat);
  if (r < 0)
    return r;
  r = io_pread(io, bat->entry, vhd_bat_bytes(count), offset);
  if (r < 0) {
    vhd_bat_free(bat);
    return r;
  }
  /* Decode in place: each entry is read before its slot is overwritten. */
  for (uint32_t i = 0; i < count; i++)
    bat->entry[i] = get_be32((const uint8_t *)&bat->entry[i]);
  return 0;
}

int vhd_bat_init_empty(const char *name, uint64_t offset, uint32_t count, struct vhd_bat *bat)
{
  int r = alloc_tables(name, offset, count, bat);
  if (r < 0)
    return r;
  for (uint32_t i = 0; i < count; i++)
    bat->entry[i] = VHD_BAT_UNUSED;
  return 0;
}

void vhd_bat_free(struct vhd_bat *bat)
{
  vhd_free(bat->entry);
  vhd_free(bat->dirty);
  bat->entry = NULL;
  bat->dirty = NULL;
}

void vhd_bat_set(struct vhd_bat *bat, uint32_t index, uint32_t value)
{
  bat->entry[index] = value;
  bat->dirty[index / (SECTOR / 4)] = 1;
  bat->any_dirty = true;
}

/* Sectors [first, first+n) of the table in on-disk form into buf. */
static void encode_sectors(const struct vhd_bat *bat, uint32_t first, uint32_t n,
                           uint8_t *buf)
{
  uint64_t e = (uint64_t)first * (SECTOR / 4);
  for (uint64_t i = 0; i < (uint64_t)n * (SECTOR / 4); i++, e++)
    put_be32(buf + i * 4, e < bat->count ? bat->entry[e] : VHD_BAT_UNUSED);
}

void vhd_bat_encode(const struct vhd_bat *bat, uint8_t *buf)
{
  encode_sectors(bat, 0, table_sectors(bat->count), buf);
}

int vhd_bat_write_dirty(vhd_io *io, struct vhd_bat *bat)
{
  enum { MAX_RUN = 128 };   /* sectors per write: 64 KiB */
  uint8_t *buf;
  uint32_t n = table_sectors(bat->count);
  int r = 0;

  if (!bat->any_dirty)
    return 0;
  buf = vhd_malloc(MAX_RUN * SECTOR);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory writing the BAT", io->name);
  for (uint32_t s = 0; s < n && r == 0;) {
    if (!bat->dirty[s]) {
      s++;
      continue;
    }
    uint32_t run = 1;
    while (s + run < n && run < MAX_RUN && bat->dirty[s + run])
      run++;
    encode_sectors(bat, s, run, buf);
    /* The last sector is written only as far as the real entries go: a
     * foreign writer may have put something right after an unpadded table. */
    uint64_t off = (uint64_t)s * SECTOR;
    uint64_t len = (uint64_t)run * SECTOR;
    if (off + len > vhd_bat_bytes(bat->count))
      len = vhd_bat_bytes(bat->count) - off;
    r = io_pwrite(io, buf, len, bat->offset + off);
    if (r == 0)
      memset(bat->dirty + s, 0, run);
    s += run;
  }
  vhd_free(buf);
  if (r == 0)
    bat->any_dirty = false;
  return r;
}

/* In-place heap sort of 64-bit keys (no qsort in freestanding builds). */
static void sift_down(uint64_t *a, size_t root, size_t n)
{
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

void vhd_sort_u64(uint64_t *a, size_t n)
{
  for (size_t i = n / 2; i-- > 0;)
    sift_down(a, i, n);
  for (size_t end = n; end-- > 1;) {
    uint64_t t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift_down(a, 0, end);
  }
}

/* Report a bad entry; with a collector, forget it and go on. */
#define BAD_ENTRY(i, ...)                    \
  do {                                       \
    int r_ = diag_corrupt(d, __VA_ARGS__);   \
    if (r_ < 0)                              \
      return r_;                             \
    bat->entry[i] = VHD_BAT_UNUSED;          \
  } while (0)

int vhd_bat_validate(struct vhd_bat *bat, const char *path, uint64_t block_bytes,
                     const struct vhd_file_range *meta, size_t nmeta, uint64_t limit,
                     struct vhd_diag *d)
{
  uint64_t used = 0;

  for (uint32_t i = 0; i < bat->count; i++) {
    uint32_t e = bat->entry[i];
    if (e == VHD_BAT_UNUSED)
      continue;
    uint64_t start = (uint64_t)e * SECTOR, end = start + block_bytes;
    /* Overlaps first: an entry of 0 in a file smaller than a block is a
     * block on top of the footer copy, not one past the end. */
    const char *over = NULL;
    for (size_t m = 0; m < nmeta && !over; m++)
      if (start < meta[m].end && meta[m].start < end)
        over = meta[m].what;
    if (over)
      BAD_ENTRY(i, "%s: BAT entry %u points at sector %u, so its block (offset %llu, "
                "%llu bytes) overlaps %s", path, i, e, (unsigned long long)start,
                (unsigned long long)block_bytes, over);
    else if (start >= limit)
      BAD_ENTRY(i, "%s: BAT entry %u points at sector %u (offset %llu), past the end "
                "of the file's data at offset %llu", path, i, e,
                (unsigned long long)start, (unsigned long long)limit);
    else if (end > limit)
      BAD_ENTRY(i, "%s: BAT entry %u points at sector %u, so its block (offset %llu, "
                "%llu bytes) runs past the end of the file's data at offset %llu",
                path, i, e, (unsigned long long)start, (unsigned long long)block_bytes,
                (unsigned long long)limit);
    else
      used++;
  }
  if (used < 2)
    return 0;

  /* Blocks all have the same length, so after sorting by start it is
   * enough to compare each block with the last one kept. Key: sector in
   * the high half, entry index in the low half. */
  uint64_t *keys = vhd_malloc(used * sizeof *keys);
  if (!keys)
    return vhd_error(ENOMEM, "%s: out of memory checking the BAT", path);
  size_t k = 0;
  for (uint32_t i = 0; i < bat->count; i++)
    if (bat->entry[i] != VHD_BAT_UNUSED)
      keys[k++] = (uint64_t)bat->entry[i] << 32 | i;
  vhd_sort_u64(keys, k);
  uint64_t prev = keys[0];
  for (size_t j = 1; j < k; j++) {
    uint64_t prev_start = (prev >> 32) * SECTOR;
    uint64_t start = (keys[j] >> 32) * SECTOR;
    uint32_t i = (uint32_t)keys[j];
    if (start < prev_start + block_bytes) {
      int r = diag_corrupt(d, "%s: BAT entries %u and %u overlap (sectors %u and %u)",
                           path, (uint32_t)prev, i, (uint32_t)(prev >> 32),
                           (uint32_t)(keys[j] >> 32));
      if (r < 0) {
        vhd_free(keys);
        return r;
      }
      bat->entry[i] = VHD_BAT_UNUSED;
      continue;
    }
    prev = keys[j];
  }
  vhd_free(keys);
  return 0;
}

uint64_t vhd_bat_blocks_end(const struct vhd_bat *bat, uint64_t block_bytes)
{
  uint64_t end = 0;
  for (uint32_t i = 0; i < bat->count; i++)
    if (bat->entry[i] != VHD_BAT_UNUSED) {
      uint64_t e = (uint64_t)bat->entry[i] * SECTOR + block_bytes;
      if (e > end)
        end = e;
    }
  return end;
}

uint64_t vhd_bat_count_used(const struct vhd_bat *bat, uint32_t n)
{
  uint64_t used = 0;
  if (n > bat->count)
    n = bat->count;
  for (uint32_t i = 0; i < n; i++)
    used += bat->entry[i] != VHD_BAT_UNUSED;
  return used;
}
