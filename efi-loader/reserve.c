/* The rw reserve (see reserve.h). */
#include "reserve.h"
#include "console.h"
#include "crc32.h"
#include "efi_io.h"
#include "error.h"
#include "sfs.h"
#include "util/endian.h"

static const char magic[8] = "VHDBOOTR";

void reserve_record_encode(uint8_t rec[RESERVE_RECORD_SIZE], uint64_t phys, uint64_t logical,
                           uint32_t tail)
{
  memset(rec, 0, RESERVE_RECORD_SIZE);
  memcpy(rec, magic, 8);
  put_le32(rec + 8, 1);          /* version */
  put_le32(rec + 12, tail);
  put_le64(rec + 16, phys);
  put_le64(rec + 24, logical);
  put_le32(rec + 32, crc32_of(rec, 32));
}

static bool record_decode(const uint8_t *rec, uint64_t *phys, uint64_t *logical, uint32_t *tail)
{
  if (memcmp(rec, magic, 8) != 0 || get_le32(rec + 8) != 1 ||
      get_le32(rec + 32) != crc32_of(rec, 32))
    return false;
  *tail = get_le32(rec + 12);
  *phys = get_le64(rec + 16);
  *logical = get_le64(rec + 24);
  return true;
}

bool reserve_apply_record(struct efi_file *f)
{
  static const uint32_t tails[2] = { 0, 512 };
  for (int i = 0; i < 2; i++) {
    uint32_t t = tails[i];
    if (f->phys_size < (uint64_t)t + RESERVE_RECORD_SIZE + 512)
      continue;
    uint64_t off = f->phys_size - t - RESERVE_RECORD_SIZE;
    uint8_t rec[RESERVE_RECORD_SIZE];
    uint64_t phys, logical;
    uint32_t tail;
    if (efi_file_read_phys(f, off, rec, sizeof rec) < 0 ||
        !record_decode(rec, &phys, &logical, &tail) || tail != t || phys != f->phys_size ||
        logical > off || logical < 512)
      continue;
    if (t) {
      /* The trailer copy must be the image's own trailer. */
      uint8_t a[512], b[512];
      if (efi_file_read_phys(f, logical - t, a, t) < 0 ||
          efi_file_read_phys(f, f->phys_size - t, b, t) < 0 || memcmp(a, b, t) != 0)
        continue;
    }
    f->size = logical;
    f->record_off = off;
    f->tail = t;
    return true;
  }
  return false;
}

uint64_t reserve_default(const struct vhd_info *in)
{
  uint64_t free_blocks =
      in->total_blocks > in->allocated_blocks ? in->total_blocks - in->allocated_blocks : 0;
  /* A block plus its sector bitmap (VHD: a bit per sector rounded up to
   * 512 bytes), the VHD footer, and for VHDX the 1 MiB alignment and one
   * sector bitmap block per 4 GiB chunk (differencing). */
  uint64_t bitmap = ((uint64_t)in->block_size / 4096 + 511) / 512 * 512;
  if (bitmap < 512)
    bitmap = 512;
  uint64_t r = free_blocks * ((uint64_t)in->block_size + bitmap) + 512;
  if (in->format == VHD_FORMAT_VHDX)
    r += ((in->virtual_size >> 32) + 2) * (1u << 20);
  return r;
}

int reserve_ensure(struct host_volume *vol, struct efi_file *f, uint64_t want, uint32_t tail,
                   uint64_t *grown)
{
  *grown = 0;
  uint64_t have = 0;
  if (f->record_off)
    have = f->record_off > f->size ? f->record_off - f->size : 0;
  if (have >= want)
    return 0;
  if (!vol->sfs)
    return vhd_error(ENOSPC, "%s: mode=rw needs %llu MiB of room to allocate blocks, but the "
                     "firmware cannot write %s to make it (set reserve=0 to allow writes "
                     "into allocated blocks only)", f->path,
                     (unsigned long long)((want + (1 << 20) - 1) >> 20), vol->name);
  /* New physical size: the logical image, the reserve, the record and the
   * trailer copy, rounded up to whole clusters. */
  uint64_t cs = vol->mapped ? vol->map.cluster_size : 4096;
  uint64_t target = f->size + want + RESERVE_RECORD_SIZE + tail;
  target = (target + cs - 1) / cs * cs;
  if (target < f->phys_size)
    target = f->phys_size;
  uint64_t limit = (uint64_t)-1;
  if (vol->mapped && vol->map.kind != FSMAP_EXFAT)
    limit = 0xffffffffull / cs * cs;            /* FAT: 4 GiB - 1 per file */
  uint64_t free_bytes;
  if (sfs_free_space(vol->sfs, &free_bytes) == 0) {
    uint64_t margin = 1u << 20;
    uint64_t room = free_bytes > margin ? (free_bytes - margin) / cs * cs : 0;
    if (limit > f->phys_size + room)
      limit = f->phys_size + room;
  }
  if (target > limit) {
    con_printf("vhdboot: note: %s: reserve limited to %llu MiB by %s\n", f->path,
               (unsigned long long)((limit > f->size + RESERVE_RECORD_SIZE + tail
                                         ? limit - f->size - RESERVE_RECORD_SIZE - tail : 0) >> 20),
               limit == 0xffffffffull / cs * cs ? "the 4 GiB FAT file size limit"
                                                : "the free space on the host partition");
    target = limit;
  }
  if (target < f->size + RESERVE_RECORD_SIZE + tail + 512 || target <= f->phys_size)
    return 0;   /* no room at all: allocating writes will fail cleanly */

  /* Write the record and the trailer copy as the new last bytes. */
  uint8_t end[RESERVE_RECORD_SIZE + 512];
  size_t end_len = RESERVE_RECORD_SIZE + tail;
  reserve_record_encode(end, target, f->size, tail);
  if (tail) {
    int r = efi_file_read_phys(f, f->size - tail, end + RESERVE_RECORD_SIZE, tail);
    if (r < 0)
      return vhd_error(-r, "%s: cannot read the image's last sector", f->path);
  }
  int r = sfs_grow(vol->sfs, f->path, target, end, end_len);
  /* The firmware's driver rewrote FAT entries the mapper may have cached. */
  if (vol->mapped)
    fsmap_invalidate(&vol->map);
  if (r < 0)
    return r;
  *grown = target - f->phys_size;
  return 0;
}

void reserve_attach(struct efi_file *f, uint32_t tail, const uint8_t cookie[8])
{
  if (!f->record_off)
    return;
  f->tail = tail;
  if (cookie)
    memcpy(f->tail_cookie, cookie, 8);
  f->capacity = f->record_off;   /* growth stops before the record */
}
