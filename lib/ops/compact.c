/* vhd_compact: give back the space of blocks that read as zeros. The
 * format drivers decide block by block (freeable.h) and reorganise their
 * files; raw files get holes punched over their zero ranges here, since
 * the file is the disk. */
#include "driver.h"
#include "error.h"
#include "image.h"
#include "reserve.h"
#include "util/zero.h"
#include "util/arith.h"

/* Zero ranges of a raw file are punched in grains of this size, aligned
 * to it, so each hole covers whole host file system blocks. */
#define RAW_GRAIN (64u * 1024)
#define RAW_CHUNK (1u << 20)


/* The file's length, a vhdboot reserve included. */
static int file_length(vhd_io *io, uint64_t *out)
{
  struct reserve_record rec;
  if (reserve_io_get(io, &rec)) {
    *out = rec.phys;
    return 0;
  }
  return io_get_size(io, out);
}

/* Host bytes the file occupies, or its length when the backend cannot
 * tell (an in-memory file has no holes). */
static int host_bytes(vhd_io *io, uint64_t *out)
{
  return io_allocated_size(io, out) == 0 ? 0 : io_get_size(io, out);
}

static int compact_raw(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
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

int vhd_compact(vhd_image *img, unsigned flags, vhd_progress_fn progress, void *opaque,
                struct vhd_compact_result *result)
{
  struct vhd_compact_result res;
  int r;

  vhd_error_clear();
  memset(&res, 0, sizeof res);
  if (flags)
    return vhd_error(EINVAL, "%s: compact takes no flags (got 0x%x)", img->path, flags);
  if (!img->writable)
    return vhd_error(EROFS, "%s: the image is open read-only; compact needs it read-write",
                     img->path);
  if ((r = file_length(img->io, &res.file_size_before)) < 0 ||
      (r = host_bytes(img->io, &res.host_bytes_before)) < 0)
    return r;

  if ((r = image_lock(img, true)) < 0)
    return r;
  if (img->drv->format == VHD_FORMAT_RAW)
    r = compact_raw(img, progress, opaque, &res);
  else if (img->drv->compact)
    r = img->drv->compact(img, progress, opaque, &res);
  else
    r = vhd_error(ENOTSUP, "%s: %s images cannot be compacted", img->path, img->drv->name);
  uint64_t reserve_freed;
  if (r == 0)
    r = reserve_io_release(img->io, &reserve_freed);   /* the file ends with the image */
  r = image_unlock(img, r);

  /* Sizes after are reported even after a failure or a cancel: the
   * image is valid either way and part of the work may be done. */
  if (file_length(img->io, &res.file_size_after) < 0 ||
      host_bytes(img->io, &res.host_bytes_after) < 0) {
    res.file_size_after = res.file_size_before;
    res.host_bytes_after = res.host_bytes_before;
  }
  if (result)
    *result = res;
  return r;
}
