/* SPDX-License-Identifier: BSD-3-Clause */
/* Creating images: parameter defaults and checks shared by every format,
 * then the driver's create, then an ordinary open of the result. */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "sized.h"

/* The flags vhd_create knows (vhd_convert has its own). */
#define CREATE_FLAGS (VHD_CREATE_OVERWRITE | VHD_CREATE_CHS_ROUND)

static int prepare(const char *name, const struct vhd_create_params *in,
                   const struct parent_link *link,
                   const struct vhd_driver **drv, struct vhd_create_params *p)
{
  *p = *in;
  *drv = driver_for_format(p->format);
  if (!*drv || !(*drv)->create)
    return vhd_error(ENOTSUP, "%s: cannot create images of format %s", name,
                     vhd_format_name(p->format) ? vhd_format_name(p->format) : "(unknown)");
  if (p->flags & ~CREATE_FLAGS)
    return vhd_error(EINVAL, "%s: unknown create flags 0x%x", name, p->flags & ~CREATE_FLAGS);
  if (p->format == VHD_FORMAT_RAW)
    p->type = VHD_TYPE_NONE;
  else if (p->type != VHD_TYPE_FIXED && p->type != VHD_TYPE_DYNAMIC &&
           p->type != VHD_TYPE_DIFFERENCING)
    return vhd_error(EINVAL, "%s: unknown disk type %d", name, (int)p->type);
  if ((p->type == VHD_TYPE_DIFFERENCING) != (p->parent != NULL))
    return vhd_error(EINVAL, "%s: %s", name, p->parent ?
                     "a parent is given but the type is not differencing" :
                     "a differencing image needs a parent");
  /* A VHDX child takes its parent's sector size unless told otherwise:
   * Hyper-V refuses a chain whose layers disagree, and a user asking for a
   * snapshot of a 4K disk means a 4K snapshot. */
  if (p->logical_sector_size == 0 && link && p->format == VHD_FORMAT_VHDX)
    p->logical_sector_size = link->image->sector_size;
  if (p->logical_sector_size == 0)
    p->logical_sector_size = 512;
  if (!sector_size_valid(p->logical_sector_size))
    return vhd_error(EINVAL, "%s: logical sector size %u is not 512 or 4096", name,
                     p->logical_sector_size);
  if (p->format != VHD_FORMAT_VHDX && p->logical_sector_size != 512)
    return vhd_error(EINVAL, "%s: only VHDX images can have %u-byte sectors", name,
                     p->logical_sector_size);
  /* VHD and raw have no field for it: a 512-byte physical sector is what
   * every reader assumes, so only that is honest to accept. */
  if (p->format != VHD_FORMAT_VHDX && p->physical_sector_size &&
      p->physical_sector_size != 512)
    return vhd_error(EINVAL, "%s: only VHDX images record a physical sector size (%u)", name,
                     p->physical_sector_size);
  if (p->block_size && (p->block_size & (p->block_size - 1)))
    return vhd_error(EINVAL, "%s: block size %u is not a power of two", name, p->block_size);
  return 0;
}

/* Common tail: size defaults, the driver's create, then reopen read-write. */
int create_on_io(vhd_io *io, const struct vhd_create_params *in,
                 const struct parent_link *link, vhd_image **out)
{
  const struct vhd_driver *drv;
  struct vhd_create_params p;
  int r = prepare(io->name, in, link, &drv, &p);
  /* A device's (an export's) size is fixed: VHD wants its footer at the very end and
   * VHDX grows its file, so only a raw image fits a device of any size. */
  if (r == 0 && io->fixed_size && drv != &vhd_driver_raw)
    r = vhd_error(EINVAL, "%s: is %s: only raw images are written onto %s (use -O raw)",
                  io->name, io->nbd_export ? "an NBD export, of a fixed size" : "a block device",
                  io->nbd_export ? "exports" : "devices");
  if (r == 0 && link && p.size == 0)
    p.size = link->image->virtual_size;
  if (r == 0 && p.size == 0)
    r = vhd_error(EINVAL, "%s: the virtual size must be given and not zero", io->name);
  if (r == 0) {
    uint64_t ss = p.logical_sector_size;
    if (p.size > UINT64_MAX - ss)
      r = vhd_error(EINVAL, "%s: virtual size %llu is too large", io->name,
                    (unsigned long long)p.size);
    else
      p.size = (p.size + ss - 1) / ss * ss;
  }
  if (r == 0)
    r = drv->create(io, &p, link);
  if (r == 0)
    r = io_flush(io);
  if (r < 0) {
    vhd_io_close(io);
    return r;
  }
  struct vhd_image *img;
  /* The caller named the parent itself, so a raw one is what it asked for. */
  unsigned flags = VHD_OPEN_RDWR |
    (link && link->image->drv == &vhd_driver_raw ? VHD_OPEN_RAW_PARENT : 0);
  r = image_open_layer(io, drv, flags, NULL, &img);
  if (r < 0)
    return r;
  r = chain_open_parents(img, NULL, 0);
  if (r < 0) {
    image_free(img);
    return r;
  }
  if (out)
    *out = img;
  else
    r = vhd_close(img);
  return r;
}

int vhd_create_io(vhd_io *io, const struct vhd_create_params *in, vhd_image **out)
{
  vhd_error_clear();
  if (out)
    *out = NULL;
  struct vhd_create_params params;
  const struct vhd_create_params *p = &params;
  int taken = create_params_take(in, &params);
  if (taken < 0) {
    vhd_io_close(io);
    return taken;
  }
  struct parent_link link = { NULL, p->parent, p->parent };
  if (p->parent) {
    vhd_io *pio;
    int r = io_open_related(io, p->parent, VHD_IO_RDONLY, &pio);
    if (r == 0)
      r = vhd_open_io(pio, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, &link.image);
    if (r < 0) {
      vhd_error_prefix(io->name);
      vhd_io_close(io);
      return r;
    }
  }
  int r = create_on_io(io, p, p->parent ? &link : NULL, out);
  vhd_close(link.image);
  return r;
}
