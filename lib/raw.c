/* SPDX-License-Identifier: BSD-3-Clause */
/* The raw driver: the file is the disk. */
#include "driver.h"
#include "error.h"
#include "trims.h"
#include "util/arith.h"
#include "util/zero.h"

static int raw_probe(vhd_io *io, uint64_t file_size)
{
  (void)io;
  (void)file_size;
  return 1;   /* anything is a raw disk, but every other format is surer */
}

static int raw_open(struct vhd_image *img, struct vhd_diag *d)
{
  (void)d;
  img->type = VHD_TYPE_NONE;
  img->sector_size = 1;   /* no alignment needed: no read-modify-write */
  return io_get_size(img->io, &img->virtual_size);
}

static void raw_close(struct vhd_image *img) { (void)img; }

static int raw_read(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
  return io_pread(img->io, buf, len, off);
}

static int raw_write(struct vhd_image *img, const void *buf, size_t len,
                     uint64_t off, bool exclusive)
{
  (void)exclusive;
  return io_pwrite(img->io, buf, len, off);
}

static int raw_flush(struct vhd_image *img) { return io_flush(img->io); }

/* Compact: the file is the disk, so its zero ranges are punched, in
 * grains of RAW_GRAIN aligned to it so each hole covers whole host file
 * system blocks. */
#define RAW_GRAIN (64u * 1024)
#define RAW_CHUNK (1u << 20)

static int raw_compact(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
                       struct vhd_compact_result *res)
{
  uint64_t size = img->virtual_size, off = 0;
  uint8_t *buf = vhd_malloc(RAW_CHUNK);
  int r = 0;

  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory compacting", img->path);
  while (off < size && r == 0) {
    uint64_t data, hole;
    r = io_find_data(img->io, off, &data, &hole);
    if (r < 0)
      break;
    if (data >= size)
      break;
    /* Start at the grain holding the first data byte. */
    off = data / RAW_GRAIN * RAW_GRAIN;
    uint64_t n = min_u64(RAW_CHUNK, size - off);
    r = io_pread(img->io, buf, (size_t)n, off);
    for (uint64_t g = 0; r == 0 && g < n; g += RAW_GRAIN) {
      uint64_t len = min_u64(RAW_GRAIN, n - g);
      if (!buffer_is_zero(buf + g, (size_t)len))
        continue;
      r = io_punch_hole(img->io, off + g, len);
      if (r == -ENOTSUP) {
        r = 0;
        off = size;   /* the host cannot: nothing to gain from reading on */
        break;
      }
      if (r == 0)
        res->blocks_freed++;
    }
    if (off < size)
      off += n;
    if (r == 0 && progress && progress(opaque, min_u64(off, size), size))
      r = vhd_error(ECANCELED, "%s: compact cancelled", img->path);
  }
  vhd_free(buf);
  if (r == 0)
    r = io_flush(img->io);
  return r;
}

/* A trim: the host pages inside the range go back; nothing is written. */
static int raw_discard(struct vhd_image *img, uint64_t off, uint64_t len)
{
  int r = trims_punch_pages(img->io, off, len);
  return r == -ENOTSUP ? 0 : r;
}

static int raw_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                            enum layer_state *state, uint64_t *run)
{
  uint64_t data, hole;
  int r = io_find_data(img->io, off, &data, &hole);
  if (r < 0)
    return r;
  if (data > off) {
    *state = LAYER_ZERO;
    *run = data - off;
  } else {
    *state = LAYER_DATA;
    *run = hole > off ? hole - off : len;
  }
  if (*run > len || *run == 0)
    *run = len;
  return 0;
}

/* The file is the disk. */
static int raw_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                           uint64_t *run)
{
  (void)img;
  *host = off;
  *run = len;
  return 0;
}

static void raw_info(struct vhd_image *img, struct vhd_info *info)
{
  /* Over a block device, the device's own sectors. */
  info->logical_sector_size = img->io->logical_sector_size ? img->io->logical_sector_size : 512;
  info->physical_sector_size = img->io->physical_sector_size ? img->io->physical_sector_size :
                               info->logical_sector_size;
}

static int raw_create(vhd_io *io, const struct vhd_create_params *p,
                      const struct parent_link *parent)
{
  (void)parent;
  return io_set_size(io, p->size);
}

/* The file is the disk: a truncate grows (with zeros) or cuts it. */
static int raw_resize(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                      void *opaque)
{
  (void)progress;
  (void)opaque;
  int r = io_set_size(img->io, new_size);
  if (r == 0)
    r = io_flush(img->io);
  if (r == 0)
    img->virtual_size = new_size;
  return r;
}

const struct vhd_driver vhd_driver_raw = {
  .name = "raw",
  .format = VHD_FORMAT_RAW,
  .probe = raw_probe,
  .open = raw_open,
  .close = raw_close,
  .read = raw_read,
  .write = raw_write,
  .flush = raw_flush,
  .zero = image_zero_by_punch,
  .compact = raw_compact,
  .discard = raw_discard,
  .block_status = raw_block_status,
  .host_extent = raw_host_extent,
  .info = raw_info,
  .create = raw_create,
  .resize = raw_resize,
};
