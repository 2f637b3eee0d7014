/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_convert: copy a virtual disk, through its whole chain, into a new
 * image. Ranges the source reports as zero are never read; data that reads
 * as zeros is not written, so dynamic outputs stay thin and raw outputs
 * sparse (the copy itself is copy_disk.c).
 *
 * Durability. The output is a new file that is removed when the conversion
 * fails, so the crash-ordering flushes the drivers do for a long-lived
 * image buy nothing until the conversion has succeeded; what is left is
 * whether the finished file must be on stable storage when the call
 * returns. By default it need not be, as with `qemu-img convert`
 * (cache=unsafe), cp and dd: the drivers still write data before the
 * metadata that points at it, but no flush waits for the disk, so the
 * kernel writes back in its own time. Waiting costs about as much as the
 * copy itself on this kind of host (bench/README.md). VHD_CONVERT_SYNC asks
 * for every flush the drivers make.
 *
 * Page cache. With VHD_CONVERT_DIRECT the data pieces are written with
 * O_DIRECT: the kernel's copy into freshly allocated cache pages is most of
 * a buffered conversion's CPU time, and on a loaded VM whose free memory goes
 * back to the host it cost 3-5 times the wall time of direct writes. On a
 * quiet machine the page cache was faster (direct writes wait for the disk
 * one piece at a time), so buffered is the default (bench/README.md).
 * Metadata always goes through the cache. */
#include <unistd.h>

#include "copy_disk.h"
#include "differ.h"
#include "error.h"
#include "image.h"
#include "sized.h"

#define CONVERT_FLAGS (VHD_CONVERT_SYNC | VHD_CONVERT_DIRECT)
#include "io.h"

/* The output file, seen through a wrapper (io_wrap) whose flush does
 * nothing unless the caller asked for durability and whose data writes may
 * go around the page cache. Every other call goes to the file. */
struct output {
  bool sync;
  bool writeback_hint;
  bool direct;
};

/* Writes of data pieces; below this a write is metadata (footers, bitmaps,
 * BAT, log): those go through the page cache. */
#define DIRECT_MIN (64u << 10)
#define DIRECT_ALIGN 4096u
/* The memory alignment O_DIRECT asks of the block devices this runs on
 * (their logical sector); a file system that wants more says EINVAL, and
 * the output then stays buffered. */
#define DIRECT_MEM_ALIGN 512u
/* Below this, a write is metadata or a small piece: not worth a hint. */
#define WRITEBACK_HINT_MIN (256u << 10)

static int buffered_pwrite(struct output *out, vhd_io *f, const uint8_t *buf, size_t count,
                           uint64_t offset)
{
  int r = io_pwrite(f, buf, count, offset);
  /* A durable output waits for the disk at the end; starting writeback of
   * each piece now overlaps that wait with the rest of the copy. */
  if (r == 0 && out->writeback_hint && count >= WRITEBACK_HINT_MIN)
    io_file_start_writeback(f, offset, count);
  return r;
}

/* A data piece that starts 4 KiB-aligned goes around the page cache, its
 * unaligned tail (if any) buffered. */
static int out_pwrite(void *o, vhd_io *f, const void *buf, size_t count, uint64_t offset)
{
  struct output *out = o;
  const uint8_t *p = buf;
  uint64_t b = (offset + count) / DIRECT_ALIGN * DIRECT_ALIGN;
  if (!out->direct || offset % DIRECT_ALIGN || b - offset < DIRECT_MIN ||
      (uintptr_t)p % DIRECT_MEM_ALIGN)
    return buffered_pwrite(out, f, p, count, offset);
  int r = io_file_pwrite_direct(f, p, (size_t)(b - offset), offset);
  if (r == -ENOTSUP) {
    out->direct = false;   /* not here: the page cache from now on */
    return buffered_pwrite(out, f, p, count, offset);
  }
  if (r == 0 && b < offset + count)
    r = buffered_pwrite(out, f, p + (b - offset), (size_t)(offset + count - b), b);
  return r;
}

static int out_flush(void *o, vhd_io *f)
{
  return ((struct output *)o)->sync ? io_flush(f) : 0;
}

static void out_close(void *o, vhd_io *f)
{
  vhd_io_close(f);
  vhd_free(o);
}

static const struct io_overrides output_overrides = {
  .pwrite = out_pwrite,
  .flush = out_flush,
  .close = out_close,
};

/* Create the output file and the new image on it (returned read-write);
 * flags: VHD_CONVERT_*. */
static int create_output(const char *path, const struct vhd_create_params *p,
                         unsigned flags, vhd_image **dst)
{
  vhd_io *file;
  unsigned ioflags = VHD_IO_RDWR | VHD_IO_CREATE |
                     ((p->flags & VHD_CREATE_OVERWRITE) ? VHD_IO_TRUNC : 0);
  int r = vhd_is_nbd_uri(path) ? vhd_io_open_nbd(path, NULL, ioflags, &file)
                                : vhd_io_open_file(path, ioflags, &file);
  if (r < 0)
    return r;
  struct output *out = vhd_calloc(1, sizeof *out);
  if (!out) {
    vhd_io_close(file);
    return vhd_error(ENOMEM, "%s: out of memory", path);
  }
  out->sync = (flags & VHD_CONVERT_SYNC) != 0;
  /* Not for dynamic VHD: a block's data starts 512 bytes in, right after
   * its bitmap in the same page, and direct writes next to cached pages
   * made ext4 fall back to synchronous writes (raw -> VHD 40 times slower,
   * bench/README.md); buffered misaligned writes are the cheap case there. */
  out->direct = (flags & VHD_CONVERT_DIRECT) &&
                !(p->format == VHD_FORMAT_VHD && p->type != VHD_TYPE_FIXED);
  out->writeback_hint = out->sync;
  vhd_io *io;
  r = io_wrap(file, VHD_IO_RDWR, &output_overrides, out, &io);
  if (r < 0)
    out_close(out, file);
  else
    r = create_on_io(io, p, NULL, dst);   /* closes io on failure */
  if (r < 0)
    io_remove_output(path);   /* the file is ours from the open on */
  return r;
}

/* A differencing output takes its base's format when the caller leaves
 * it open (VHD over a raw base), and its block and sector sizes when the
 * caller leaves them open and the formats agree, as a snapshot does: its
 * blocks then cover the same ranges as the base's. */
static int base_layout(const char *dst_path, struct vhd_create_params *p)
{
  vhd_image *base = NULL;
  struct vhd_info info;
  int r = vhd_open(p->parent, VHD_OPEN_RDONLY, &base);
  if (r == 0)
    r = vhd_get_info(base, &info);
  /* Replacing the base (or its parent) by its own child would destroy
   * what the child is to read through. */
  bool own_layer = r == 0 && vhd_chain_layer_of(base, dst_path) >= 0;
  vhd_close(base);
  if (own_layer)
    return vhd_error(EINVAL, "%s: is the base image or one of its parents; choose another "
                     "destination", dst_path);
  if (r < 0) {
    vhd_error_prefix(dst_path);
    return r;
  }
  if (p->format == VHD_FORMAT_AUTO)
    p->format = info.format == VHD_FORMAT_RAW ? VHD_FORMAT_VHD : info.format;
  if (info.format == p->format) {
    if (!p->block_size)
      p->block_size = info.block_size;
    if (!p->logical_sector_size)
      p->logical_sector_size = info.logical_sector_size;
    if (!p->physical_sector_size)
      p->physical_sector_size = info.physical_sector_size;
  }
  return 0;
}

static int write_difference(void *opaque, uint64_t offset, uint32_t length,
                            const uint8_t *data)
{
  return vhd_pwrite(opaque, data, length, offset);
}

/* The new child reads as its base; the sectors where src reads otherwise
 * are written into it, and nothing else. The child's own file backend
 * flushes at close, so VHD_CONVERT_SYNC is met and VHD_CONVERT_DIRECT not
 * needed (a child holds the differences, not a disk's worth of data). */
static int convert_onto_base(vhd_image *src, const char *dst_path,
                             struct vhd_create_params *p, vhd_progress_fn progress,
                             void *opaque)
{
  p->type = VHD_TYPE_DIFFERENCING;
  int r = base_layout(dst_path, p);
  vhd_image *dst;
  if (r < 0 || (r = vhd_create(dst_path, p, &dst)) < 0)
    return r;
  r = differ_walk(src, dst, src->virtual_size, write_difference, dst, progress, opaque);
  int r2 = vhd_close(dst);
  if (r == 0)
    r = r2;
  if (r < 0)
    io_remove_output(dst_path);   /* ours: vhd_create made it */
  return r;
}

int vhd_convert(vhd_image *src, const char *dst_path,
                const struct vhd_create_params *params, unsigned flags,
                vhd_progress_fn progress, void *opaque)
{
  vhd_error_clear();
  struct vhd_create_params p;
  int r = create_params_take(params, &p);
  if (r < 0)
    return r;
  if (flags & ~CONVERT_FLAGS)
    return vhd_error(EINVAL, "%s: unknown convert flags 0x%x", dst_path, flags & ~CONVERT_FLAGS);
  if (p.type == VHD_TYPE_DIFFERENCING && !p.parent)
    return vhd_error(EINVAL, "%s: a differencing output needs a base (parent)", dst_path);
  if (p.parent && p.type == VHD_TYPE_FIXED)
    return vhd_error(EINVAL, "%s: an output over a base is a differencing image, "
                     "not a fixed one", dst_path);
  if (p.size == 0 && src->virtual_size == 0)
    return vhd_error(EINVAL, "%s: the source is empty (0 bytes) and an image cannot "
                     "have a virtual size of 0; %s was not created", src->path, dst_path);
  if (p.size == 0)
    p.size = src->virtual_size;
  if (p.size < src->virtual_size)
    return vhd_error(EINVAL, "%s: the new size %llu is smaller than the source's %llu",
                     dst_path, (unsigned long long)p.size,
                     (unsigned long long)src->virtual_size);
  /* Writing over any layer of the source would destroy what is read. */
  if (vhd_chain_layer_of(src, dst_path) >= 0)
    return vhd_error(EINVAL, "%s: is the source image or one of its parents; "
                     "choose another destination", dst_path);
  if (p.parent)
    return convert_onto_base(src, dst_path, &p, progress, opaque);
  vhd_image *dst;
  r = create_output(dst_path, &p, flags, &dst);
  if (r < 0)
    return r;
  r = copy_disk(src, dst, src->virtual_size, progress, opaque);
  int r2 = vhd_close(dst);
  if (r == 0)
    r = r2;
  if (r < 0) {
    /* keep the message of the first failure */
    io_remove_output(dst_path);
  }
  return r;
}
