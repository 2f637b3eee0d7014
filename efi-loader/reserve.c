/* SPDX-License-Identifier: BSD-3-Clause */
/* The rw reserve (see reserve.h). */
#include "reserve.h"
#include "../lib/reserve.h"
#include "console.h"
#include "efi_io.h"
#include "error.h"
#include "sfs.h"

int reserve_ensure(struct host_volume *vol, struct efi_file *f, vhd_image *img, uint64_t want,
                   uint32_t tail, uint64_t *grown)
{
  *grown = 0;
  struct vhd_reserve rs;
  uint64_t logical = f->phys_size, have = 0;
  if (vhd_get_reserve(img, &rs) == 0) {
    logical = rs.logical_size;
    have = rs.free_bytes;
  }
  if (have >= want)
    return 0;
  /* New physical size: the logical image, the reserve, the record and the
   * trailer copy, rounded up to whole clusters. */
  uint64_t cs = vol->map.cluster_size;
  uint64_t target = logical + want + RESERVE_RECORD_SIZE + tail;
  target = (target + cs - 1) / cs * cs;
  if (target < f->phys_size)
    target = f->phys_size;
  uint64_t limit = 0xffffffffull / cs * cs;   /* FAT: 4 GiB - 1 per file */
  uint64_t free_bytes;
  if (sfs_free_space(vol->sfs, &free_bytes) == 0) {
    uint64_t margin = 1u << 20;
    uint64_t room = free_bytes > margin ? (free_bytes - margin) / cs * cs : 0;
    if (limit > f->phys_size + room)
      limit = f->phys_size + room;
  }
  if (target > limit) {
    con_printf("vhdboot: note: %s: reserve limited to %llu MiB by %s\n", f->path,
               (unsigned long long)((limit > logical + RESERVE_RECORD_SIZE + tail
                                         ? limit - logical - RESERVE_RECORD_SIZE - tail : 0) >> 20),
               limit == 0xffffffffull / cs * cs ? "the 4 GiB FAT file size limit"
                                                : "the free space on the host partition");
    target = limit;
  }
  if (target < logical + RESERVE_RECORD_SIZE + tail + 512 || target <= f->phys_size)
    return 0;   /* no room at all: allocating writes will fail cleanly */

  /* Write the record and the trailer copy as the new last bytes. */
  uint8_t end[RESERVE_RECORD_SIZE + 512];
  size_t end_len = RESERVE_RECORD_SIZE + tail;
  struct reserve_record rec = { .phys = target, .logical = logical, .tail = tail };
  reserve_record_encode(end, &rec);
  if (tail) {
    int r = efi_file_read_phys(f, logical - tail, end + RESERVE_RECORD_SIZE, tail);
    if (r < 0)
      return vhd_error(-r, "%s: cannot read the image's last sector", f->path);
  }
  int r = sfs_grow(vol->sfs, f->path, target, end, end_len);
  /* The firmware's driver rewrote FAT entries the mapper may have cached. */
  fsmap_invalidate(&vol->map);
  if (r < 0)
    return r;
  *grown = target - f->phys_size;
  return 0;
}
