/* SPDX-License-Identifier: BSD-3-Clause */
/* Opening the image (see open_image.h). */
#include "open_image.h"
#include "console.h"
#include "error.h"
#include "reserve.h"
#include "../lib/reserve.h"

static bool sparse(enum vhd_disk_type t)
{
  return t == VHD_TYPE_DYNAMIC || t == VHD_TYPE_DIFFERENCING;
}

/* Open path and its chain through libvhd. The core recognises a reserve
 * record from an earlier rw boot (or ignores it, as every other reader
 * of the file does, when it no longer holds). */
static int open_chain(struct host_volume *vol, const char *path, bool ram, bool rw,
                      vhd_image **img, struct efi_file **top)
{
  vhd_io *io;
  int r = efi_file_open(vol, path, rw ? VHD_IO_RDWR : VHD_IO_RDONLY, ram, &io);
  if (r < 0)
    return r;
  r = vhd_open_io(io, VHD_FORMAT_AUTO, rw ? VHD_OPEN_RDWR : VHD_OPEN_RDONLY, img);
  if (r == 0)
    *top = efi_file_find(path);
  return r;
}

/* The loader grows files only through the firmware's FAT driver, whose
 * cluster chains the mapper reads back (reserve.c). Elsewhere (exFAT,
 * ext2/3/4, NTFS, or no driver) the room must have been prepared from
 * the running OS: vhdtool boot-prepare, or vhdboot-attach at shutdown. */
static bool firmware_can_grow(const struct host_volume *vol)
{
  return vol->sfs && vol->mapped &&
         (vol->map.kind == FSMAP_FAT12 || vol->map.kind == FSMAP_FAT16 ||
          vol->map.kind == FSMAP_FAT32);
}

/* rw on a host where the file cannot grow: the file system must have been
 * shut down cleanly (fsmap.h, unclean), every byte of the file must be
 * written data (the loader writes through the disk, and the host file
 * system would read zeros back from unwritten space), and a dynamic or
 * differencing image needs a prepared reserve with room for a block. */
static int prepared_room(struct boot_image *out, uint64_t want, const struct host_volume *vol)
{
  const char *path = out->top->path;
  uint64_t at;
  if (vol->map.unclean[0])
    return vhd_error(EROFS, "%s: mode=rw: the loader does not write to %s: %s", path,
                     vol->name, vol->map.unclean);
  if (efi_file_first_unwritten(out->top, &at))
    return vhd_error(ENOSPC, "%s: mode=rw: the file has space with no written data on %s "
                     "from byte %llu on (a hole, an unwritten extent or the end of the valid "
                     "data), which the loader cannot write; run 'vhdtool boot-prepare' on the "
                     "image from the running system first", path, vol->name,
                     (unsigned long long)at);
  if (want == 0)
    return 0;
  struct vhd_reserve rs;
  if (vhd_get_reserve(out->img, &rs) < 0)
    return vhd_error(ENOSPC, "%s: mode=rw: the image has no prepared reserve for new blocks "
                     "and the loader cannot grow files on %s; run 'vhdtool boot-prepare' on "
                     "it from the running system first (or set reserve=0: writes into "
                     "allocated blocks only)", path, vol->name);
  if (rs.free_bytes < reserve_block_bytes(&out->info))
    return vhd_error(ENOSPC, "%s: mode=rw: the prepared reserve is used up (%llu KiB free, "
                     "a new block needs %llu KiB); run 'vhdtool boot-prepare' on it from the "
                     "running system", path, (unsigned long long)(rs.free_bytes >> 10),
                     (unsigned long long)(reserve_block_bytes(&out->info) >> 10));
  if (rs.free_bytes < want)
    con_printf("vhdboot: note: %s: %llu MiB of prepared reserve, less than the %llu MiB "
               "wanted\n", path, (unsigned long long)(rs.free_bytes >> 20),
               (unsigned long long)(want >> 20));
  return 0;
}

int boot_image_open(struct host_volume *vol, const struct config *cfg, struct boot_image *out)
{
  memset(out, 0, sizeof *out);
  if (cfg->backend == BACKEND_MAP && !vol->mapped)
    return vhd_error(ENOTSUP, "backend=map: %s has no file system the loader can map (FAT, "
                     "exFAT, ext2/3/4, NTFS)", vol->name);
  out->ram = cfg->backend == BACKEND_RAM || (cfg->backend == BACKEND_AUTO && !vol->mapped);

  int r = open_chain(vol, cfg->image, out->ram, false, &out->img, &out->top);
  if (r < 0)
    return r;
  if ((r = vhd_get_info(out->img, &out->info)) < 0)
    goto fail;
  out->mode = cfg->mode;
  if (out->mode == MODE_DEFAULT)
    out->mode = sparse(out->info.type) ? MODE_COW : MODE_RW;
  if (out->mode != MODE_RW)
    return 0;

  if (out->ram) {
    if (cfg->backend == BACKEND_RAM)
      r = vhd_error(EROFS, "%s: mode=rw: backend=ram holds the image in memory, where "
                    "writes could not reach the file; use mode=cow or backend=auto",
                    cfg->image);
    else
      r = vhd_error(EROFS, "%s: mode=rw: the loader cannot map %s, so the image is held in "
                    "memory, where writes could not reach the file; use mode=cow",
                    cfg->image, vol->name);
    goto fail;
  }
  /* Read-write: make room for new blocks, then reopen with a fresh map.
   * Parents stay read-only and never need room. */
  uint64_t want = !sparse(out->info.type) ? 0
                  : cfg->reserve_auto     ? reserve_default_bytes(&out->info)
                                          : cfg->reserve;
  if (firmware_can_grow(vol)) {
    uint32_t tail = out->info.format == VHD_FORMAT_VHD ? 512 : 0;
    if (want && (r = reserve_ensure(vol, out->top, out->img, want, tail, &out->grown)) < 0)
      goto fail;
  } else if ((r = prepared_room(out, want, vol)) < 0) {
    if (!cfg->fallback_cow)
      goto fail;
    con_printf("vhdboot: %s\nvhdboot: fallback=cow: this boot runs in mode cow (writes are "
               "kept in memory and lost at reset)\n", vhd_last_error());
    out->mode = MODE_COW;
    return 0;
  }
  vhd_close(out->img);
  out->img = NULL;
  r = open_chain(vol, cfg->image, false, true, &out->img, &out->top);
  if (r < 0)
    return r;
  if ((r = vhd_get_info(out->img, &out->info)) < 0)
    goto fail;
  return 0;

fail:
  vhd_close(out->img);
  out->img = NULL;
  return r;
}
