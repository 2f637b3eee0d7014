/* vhd_convert: copy a virtual disk, through its whole chain, into a new
 * image. Ranges the source reports as zero are never read; data that reads
 * as zeros is not written, so dynamic outputs stay thin and raw outputs
 * sparse. */
#include <unistd.h>

#include "error.h"
#include "image.h"
#include "util/zero.h"

/* Granularity of zero detection inside a chunk: small enough to leave
 * holes in raw outputs, large enough to keep the write calls few. */
#define ZERO_GRAIN (64 * 1024)

/* Write the non-zero parts of buf (len bytes, to be placed at off). */
static int write_nonzero(vhd_image *dst, const uint8_t *buf, size_t len, uint64_t off)
{
  size_t pos = 0;
  while (pos < len) {
    size_t n = len - pos < ZERO_GRAIN ? len - pos : ZERO_GRAIN;
    if (buffer_is_zero(buf + pos, n)) {
      pos += n;
      continue;
    }
    size_t start = pos;
    pos += n;
    while (pos < len) {
      n = len - pos < ZERO_GRAIN ? len - pos : ZERO_GRAIN;
      if (buffer_is_zero(buf + pos, n))
        break;
      pos += n;
    }
    int r = vhd_pwrite(dst, buf + start, pos - start, off + start);
    if (r < 0)
      return r;
  }
  return 0;
}

static int copy_disk(vhd_image *src, vhd_image *dst, uint64_t size, size_t chunk,
                     vhd_progress_fn progress, void *opaque)
{
  uint8_t *buf = vhd_aligned_alloc(4096, chunk);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory for a %zu-byte buffer", dst->path, chunk);
  int r = 0;
  uint64_t off = 0;
  while (off < size && r == 0) {
    uint64_t want = size - off < chunk ? size - off : chunk;
    unsigned status;
    uint64_t run;
    r = vhd_block_status(src, off, want, &status, &run, NULL);
    if (r < 0)
      break;
    if (run > want)
      run = want;
    if ((status & VHD_STATUS_ZERO) && !(status & VHD_STATUS_DATA)) {
      off += run;   /* the new image already reads zeros there */
    } else {
      /* Read whole chunks (aligned) so destination blocks fill at once. */
      uint64_t n = chunk - off % chunk;
      if (n > size - off)
        n = size - off;
      r = vhd_pread(src, buf, (size_t)n, off);
      if (r == 0)
        r = write_nonzero(dst, buf, (size_t)n, off);
      off += n;
    }
    if (r == 0 && progress && progress(opaque, off, size))
      r = vhd_error(ECANCELED, "%s: conversion cancelled", dst->path);
  }
  vhd_aligned_free(buf);
  return r;
}

int vhd_convert(vhd_image *src, const char *dst_path,
                const struct vhd_create_params *params,
                vhd_progress_fn progress, void *opaque)
{
  vhd_error_clear();
  struct vhd_create_params p = *params;
  if (p.type == VHD_TYPE_DIFFERENCING || p.parent)
    return vhd_error(EINVAL, "%s: convert makes standalone images, not differencing ones",
                     dst_path);
  if (p.size == 0)
    p.size = src->virtual_size;
  if (p.size < src->virtual_size)
    return vhd_error(EINVAL, "%s: the new size %llu is smaller than the source's %llu",
                     dst_path, (unsigned long long)p.size,
                     (unsigned long long)src->virtual_size);
  vhd_image *dst;
  int r = vhd_create(dst_path, &p, &dst);
  if (r < 0)
    return r;
  struct vhd_info info;
  r = vhd_get_info(dst, &info);
  size_t chunk = 2u << 20;
  if (r == 0 && info.block_size > chunk && info.block_size <= (64u << 20))
    chunk = info.block_size;
  if (r == 0)
    r = copy_disk(src, dst, src->virtual_size, chunk, progress, opaque);
  int r2 = vhd_close(dst);
  if (r == 0)
    r = r2;
  if (r < 0) {
    /* keep the message of the first failure */
    unlink(dst_path);
  }
  return r;
}
