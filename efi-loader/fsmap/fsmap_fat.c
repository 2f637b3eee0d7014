/* SPDX-License-Identifier: BSD-3-Clause */
/* FAT12/16/32: the BIOS parameter block and directory entries with their
 * long-name (LFN) entries. Geometry follows Microsoft's FAT specification;
 * FAT12 and FAT16 are told apart by the cluster count. */
#include "fsmap_priv.h"
#include "util/endian.h"

static bool power_of_two(uint32_t v) { return v && (v & (v - 1)) == 0; }

int fsmap_fat_mount(struct fsmap_volume *vol, const uint8_t *boot)
{
  /* Not FAT at all: no x86 jump, no boot signature, or NTFS (which shares
   * the jump and part of the BPB layout). */
  if ((boot[0] != 0xeb && boot[0] != 0xe9) || boot[510] != 0x55 || boot[511] != 0xaa ||
      memcmp(boot + 3, "NTFS    ", 8) == 0)
    return -ENOTSUP;
  uint32_t bps = get_le16(boot + 11);
  uint32_t spc = boot[13];
  uint32_t rsvd = get_le16(boot + 14);
  uint32_t nfats = boot[16];
  uint32_t root_entries = get_le16(boot + 17);
  uint32_t total16 = get_le16(boot + 19);
  uint32_t fatsz16 = get_le16(boot + 22);
  uint32_t total32 = get_le32(boot + 32);
  uint32_t fatsz32 = get_le32(boot + 36);
  if (bps < 512 || bps > 4096 || !power_of_two(bps) || !power_of_two(spc) || spc > 128 ||
      rsvd == 0 || nfats == 0 || nfats > 4)
    return -ENOTSUP;

  uint64_t total = total16 ? total16 : total32;
  uint64_t fatsz = fatsz16 ? fatsz16 : fatsz32;
  uint64_t root_sectors = ((uint64_t)root_entries * 32 + bps - 1) / bps;
  uint64_t first_data = rsvd + nfats * fatsz + root_sectors;
  if (fatsz == 0 || total <= first_data)
    return fsmap_fail(vol, EINVAL, "FAT boot sector: %llu sectors in total but the data area "
                      "starts at sector %llu", (unsigned long long)total,
                      (unsigned long long)first_data);
  if (total * bps > vol->size)
    return fsmap_fail(vol, EINVAL, "FAT boot sector: the file system (%llu bytes) is larger "
                      "than its partition (%llu bytes)", (unsigned long long)(total * bps),
                      (unsigned long long)vol->size);
  uint64_t clusters = (total - first_data) / spc;
  /* FAT32 is told by its BPB (no 16-bit FAT size), as Linux, EDK2 and
   * mtools do: small FAT32 volumes (mformat -F) have fewer than 65525
   * clusters, which the cluster-count rule alone would call FAT16. */
  if (fatsz16 == 0) {
    vol->kind = FSMAP_FAT32;
    if (root_entries != 0)
      return fsmap_fail(vol, EINVAL, "FAT32 boot sector: %u root directory entries (must be "
                        "0)", root_entries);
    if (clusters > 0x0ffffff5)
      clusters = 0x0ffffff5;
  } else if (clusters < 4085) {
    vol->kind = FSMAP_FAT12;
  } else if (clusters < 65525) {
    vol->kind = FSMAP_FAT16;
  } else {
    return fsmap_fail(vol, EINVAL, "FAT boot sector: %llu clusters are too many for FAT16 "
                      "and the BPB is not FAT32's", (unsigned long long)clusters);
  }
  uint64_t entry_bits = vol->kind == FSMAP_FAT12 ? 12 : vol->kind == FSMAP_FAT16 ? 16 : 32;
  if ((clusters + 2) * entry_bits > fatsz * bps * 8)
    return fsmap_fail(vol, EINVAL, "FAT boot sector: a FAT of %llu sectors cannot describe "
                      "%llu clusters", (unsigned long long)fatsz, (unsigned long long)clusters);

  vol->sector_size = bps;
  vol->cluster_size = bps * spc;
  vol->fat_offset = (uint64_t)rsvd * bps;
  vol->fat_bytes = fatsz * bps;
  vol->root_offset = (rsvd + nfats * fatsz) * bps;
  vol->root_bytes = root_entries * 32;
  vol->heap_offset = first_data * bps;
  vol->clusters = (uint32_t)clusters;
  if (vol->kind == FSMAP_FAT32) {
    vol->root_cluster = get_le32(boot + 44);
    if (!fsmap_cluster_ok(vol, vol->root_cluster))
      return fsmap_fail(vol, EINVAL, "FAT32 boot sector: root directory cluster %u is "
                        "outside the volume's %u clusters", vol->root_cluster, vol->clusters);
  }
  return 0;
}

static uint8_t short_name_checksum(const uint8_t *e)
{
  uint8_t sum = 0;
  for (int i = 0; i < 11; i++)
    sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + e[i]);
  return sum;
}

/* "NAME.EXT" of a short entry, as UTF-16 units (bytes above 0x7f are kept
 * as they are: the OEM code page is unknown, so they only match themselves). */
static size_t short_name(const uint8_t *e, uint16_t out[12])
{
  size_t n = 0;
  int base = 8, ext = 3;
  while (base > 0 && e[base - 1] == ' ')
    base--;
  while (ext > 0 && e[8 + ext - 1] == ' ')
    ext--;
  for (int i = 0; i < base; i++)
    out[n++] = (i == 0 && e[0] == 0x05) ? 0xe5 : e[i];
  if (ext) {
    out[n++] = '.';
    for (int i = 0; i < ext; i++)
      out[n++] = e[8 + i];
  }
  return n;
}

static const uint8_t lfn_offsets[13] = { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };

int fsmap_fat_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                   const uint16_t *name, size_t len, struct fsmap_file *out)
{
  struct dir_iter it;
  int r = dir_iter_start(&it, vol, dir);
  if (r < 0)
    return r;
  uint16_t lfn[20 * 13];
  unsigned expect = 0;     /* next LFN ordinal expected; 0: none in progress */
  bool lfn_done = false;   /* a complete LFN precedes the next short entry */
  uint8_t lfn_sum = 0;
  uint8_t e[32];
  while ((r = dir_iter_next(&it, e)) > 0) {
    if (e[0] == 0x00)
      return 0;              /* end of directory */
    if (e[0] == 0xe5) {      /* deleted */
      expect = 0;
      lfn_done = false;
      continue;
    }
    uint8_t attr = e[11];
    if ((attr & 0x3f) == 0x0f) {
      unsigned ord = e[0] & 0x1f;
      if (e[0] & 0x40) {     /* the first physical entry holds the last part */
        expect = ord;
        lfn_sum = e[13];
        lfn_done = false;
        for (size_t i = 0; i < sizeof lfn / sizeof lfn[0]; i++)
          lfn[i] = 0xffff;
      }
      if (ord == 0 || ord > 20 || ord != expect || e[13] != lfn_sum) {
        expect = 0;
        lfn_done = false;
        continue;
      }
      for (int i = 0; i < 13; i++)
        lfn[(ord - 1) * 13 + i] = get_le16(e + lfn_offsets[i]);
      expect--;
      lfn_done = expect == 0;
      continue;
    }
    bool have_lfn = lfn_done && short_name_checksum(e) == lfn_sum;
    expect = 0;
    lfn_done = false;
    if (attr & 0x08)
      continue;              /* volume label */
    bool match = false;
    if (have_lfn) {
      size_t n = 0;
      while (n < sizeof lfn / sizeof lfn[0] && lfn[n] != 0 && lfn[n] != 0xffff)
        n++;
      match = fsmap_name_equal(lfn, n, name, len);
    }
    if (!match) {
      uint16_t sn[12];
      size_t n = short_name(e, sn);
      match = fsmap_name_equal(sn, n, name, len);
    }
    if (!match)
      continue;
    memset(out, 0, sizeof *out);
    out->first_cluster = (vol->kind == FSMAP_FAT32 ? (uint32_t)get_le16(e + 20) << 16 : 0) |
                         get_le16(e + 26);
    out->directory = (attr & 0x10) != 0;
    if (!out->directory) {
      out->size = get_le32(e + 28);
      out->valid_size = out->size;
      if (out->size && !fsmap_cluster_ok(vol, out->first_cluster))
        return fsmap_fail(vol, EINVAL, "directory entry of a %llu-byte file points at "
                          "cluster %u, outside the volume's %u clusters",
                          (unsigned long long)out->size, out->first_cluster, vol->clusters);
    }
    return 1;
  }
  return r;
}
