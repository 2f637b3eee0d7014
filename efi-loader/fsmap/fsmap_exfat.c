/* SPDX-License-Identifier: BSD-3-Clause */
/* exFAT: the main boot sector and directory entry sets (File, Stream
 * Extension, File Name), checked against their set checksums. Layouts
 * follow Microsoft's exFAT file system specification. */
#include "fsmap_priv.h"
#include "util/endian.h"

#define TYPE_END 0x00
#define TYPE_FILE 0x85
#define TYPE_STREAM 0xc0
#define TYPE_NAME 0xc1
#define IN_USE 0x80

int fsmap_exfat_mount(struct fsmap_volume *vol, const uint8_t *boot)
{
  if (boot[0] != 0xeb || boot[1] != 0x76 || boot[2] != 0x90 || boot[510] != 0x55 ||
      boot[511] != 0xaa)
    return fsmap_fail(vol, EINVAL, "exFAT boot sector: bad jump instruction or signature");
  for (int i = 11; i < 64; i++)
    if (boot[i])
      return fsmap_fail(vol, EINVAL, "exFAT boot sector: byte %d of the must-be-zero area "
                        "is 0x%x", i, boot[i]);
  uint64_t volume_sectors = get_le64(boot + 72);
  uint32_t fat_off = get_le32(boot + 80);
  uint32_t fat_len = get_le32(boot + 84);
  uint32_t heap_off = get_le32(boot + 88);
  uint32_t count = get_le32(boot + 92);
  uint32_t root = get_le32(boot + 96);
  uint16_t flags = get_le16(boot + 106);
  unsigned bps_shift = boot[108];
  unsigned spc_shift = boot[109];
  unsigned nfats = boot[110];
  if (bps_shift < 9 || bps_shift > 12 || spc_shift > 25 - bps_shift)
    return fsmap_fail(vol, EINVAL, "exFAT boot sector: sector shift %u / cluster shift %u "
                      "out of range", bps_shift, spc_shift);
  if (nfats != 1 && nfats != 2)
    return fsmap_fail(vol, EINVAL, "exFAT boot sector: NumberOfFats is %u", nfats);
  uint64_t bps = 1ull << bps_shift;
  uint64_t cs = bps << spc_shift;
  if (volume_sectors > vol->size / bps)
    return fsmap_fail(vol, EINVAL, "exFAT boot sector: the file system (%llu sectors) is "
                      "larger than its partition (%llu bytes)",
                      (unsigned long long)volume_sectors, (unsigned long long)vol->size);
  if (fat_off < 24 || (uint64_t)fat_len * bps < ((uint64_t)count + 2) * 4 ||
      (uint64_t)fat_off + (uint64_t)fat_len * nfats > heap_off)
    return fsmap_fail(vol, EINVAL, "exFAT boot sector: FAT at sector %u (%u sectors x %u) "
                      "does not fit before the cluster heap at sector %u or cannot describe "
                      "%u clusters", fat_off, fat_len, nfats, heap_off, count);
  if (count > 0xfffffff5 || (uint64_t)heap_off * bps + (uint64_t)count * cs > volume_sectors * bps)
    return fsmap_fail(vol, EINVAL, "exFAT boot sector: %u clusters of %llu bytes from sector "
                      "%u run past the end of the volume", count, (unsigned long long)cs,
                      heap_off);
  vol->kind = FSMAP_EXFAT;
  vol->sector_size = (uint32_t)bps;
  vol->cluster_size = (uint32_t)cs;
  /* With two FATs, VolumeFlags bit 0 says which one is active. */
  vol->fat_offset = ((uint64_t)fat_off + ((nfats == 2 && (flags & 1)) ? fat_len : 0)) * bps;
  vol->fat_bytes = (uint64_t)fat_len * bps;
  vol->heap_offset = (uint64_t)heap_off * bps;
  vol->clusters = count;
  vol->root_cluster = root;
  if (!fsmap_cluster_ok(vol, root))
    return fsmap_fail(vol, EINVAL, "exFAT boot sector: root directory cluster %u is outside "
                      "the volume's %u clusters", root, count);
  return 0;
}

static uint16_t set_checksum(const uint8_t *set, size_t entries)
{
  uint16_t sum = 0;
  for (size_t i = 0; i < entries * 32; i++) {
    if (i == 2 || i == 3)
      continue;
    sum = (uint16_t)(((sum & 1) ? 0x8000 : 0) + (sum >> 1) + set[i]);
  }
  return sum;
}

int fsmap_exfat_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                     const uint16_t *name, size_t len, struct fsmap_file *out)
{
  struct dir_iter it;
  int r = dir_iter_start(&it, vol, dir);
  if (r < 0)
    return r;
  uint8_t set[19 * 32];
  while ((r = dir_iter_next(&it, set)) > 0) {
    if (set[0] == TYPE_END)
      return 0;
    if (set[0] != TYPE_FILE)
      continue;              /* other primary entries, unused or stray secondaries */
    unsigned secondary = set[1];
    if (secondary < 2 || secondary > 18)
      return fsmap_fail(vol, EINVAL, "exFAT file entry with %u secondary entries", secondary);
    for (unsigned i = 1; i <= secondary; i++) {
      r = dir_iter_next(&it, set + 32 * i);
      if (r < 0)
        return r;
      if (r == 0 || !(set[32 * i] & IN_USE))
        return fsmap_fail(vol, EINVAL, "exFAT directory entry set ends after %u of its %u "
                          "secondary entries", i - 1, secondary);
    }
    if (set_checksum(set, secondary + 1) != get_le16(set + 2))
      return fsmap_fail(vol, EINVAL, "exFAT directory entry set: checksum 0x%04x, expected "
                        "0x%04x", get_le16(set + 2), set_checksum(set, secondary + 1));
    const uint8_t *stream = set + 32;
    if (stream[0] != TYPE_STREAM)
      return fsmap_fail(vol, EINVAL, "exFAT file entry not followed by a stream extension "
                        "(type 0x%02x)", stream[0]);
    unsigned name_len = stream[3];
    unsigned name_entries = (name_len + 14) / 15;
    if (name_len == 0 || name_entries > secondary - 1)
      return fsmap_fail(vol, EINVAL, "exFAT name of %u characters does not fit %u file name "
                        "entries", name_len, secondary - 1);
    uint16_t stored[FSMAP_NAME_MAX];
    for (unsigned i = 0; i < name_len; i++) {
      const uint8_t *ne = set + 64 + 32 * (i / 15);
      if (ne[0] != TYPE_NAME)
        return fsmap_fail(vol, EINVAL, "exFAT file name entry has type 0x%02x", ne[0]);
      stored[i] = get_le16(ne + 2 + 2 * (i % 15));
    }
    if (!fsmap_name_equal(stored, name_len, name, len))
      continue;

    memset(out, 0, sizeof *out);
    out->directory = (get_le16(set + 4) & 0x10) != 0;
    uint8_t flags = stream[1];
    uint64_t valid = get_le64(stream + 8);
    uint64_t size = get_le64(stream + 24);
    if (flags & 1) {         /* AllocationPossible */
      out->first_cluster = get_le32(stream + 20);
      out->contiguous = (flags & 2) != 0;
      out->size = size;
      out->valid_size = valid;
      if (valid > size)
        return fsmap_fail(vol, EINVAL, "exFAT stream extension: valid data length %llu "
                          "exceeds data length %llu", (unsigned long long)valid,
                          (unsigned long long)size);
      if ((size || out->directory) && !fsmap_cluster_ok(vol, out->first_cluster))
        return fsmap_fail(vol, EINVAL, "exFAT stream extension points at cluster %u, "
                          "outside the volume's %u clusters", out->first_cluster,
                          vol->clusters);
    }
    return 1;
  }
  return r;
}
