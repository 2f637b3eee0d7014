/* Opening the image (see open_image.h). */
#include "open_image.h"
#include "console.h"
#include "error.h"
#include "reserve.h"

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

int boot_image_open(struct host_volume *vol, const struct config *cfg, struct boot_image *out)
{
  memset(out, 0, sizeof *out);
  if (cfg->backend == BACKEND_MAP && !vol->mapped)
    return vhd_error(ENOTSUP, "backend=map: %s has no FAT or exFAT file system the loader "
                     "can map", vol->name);
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
  /* Read-write: make room for new blocks (growing the host file through
   * the firmware, which changes its clusters), then reopen with a fresh
   * map. Parents stay read-only and never need room. */
  if (sparse(out->info.type)) {
    uint32_t tail = out->info.format == VHD_FORMAT_VHD ? 512 : 0;
    uint64_t want = cfg->reserve_auto ? reserve_default(&out->info) : cfg->reserve;
    if (want && (r = reserve_ensure(vol, out->top, out->img, want, tail, &out->grown)) < 0)
      goto fail;
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
