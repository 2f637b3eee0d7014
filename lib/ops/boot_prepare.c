/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_boot_prepare: make an image's file ready for vhdboot.efi's rw mode
 * on a host file system the firmware cannot write (exFAT, ext4, NTFS).
 *
 * The loader writes through the host disk at the file's extents, so every
 * byte it may write must be a block the host file system already holds as
 * written: a hole has no block, and a block written into an unwritten
 * (preallocated) extent or past NTFS's valid data length stays unread by
 * the host. So the holes and unwritten ranges of the file are written with
 * zeros (what they read as already), and a dynamic or differencing image
 * gets a reserve of zeros for new blocks (lib/reserve.h) - written, never
 * fallocated. */
#include "error.h"
#include "image.h"
#include "sized.h"
#include "reserve.h"
#include "util/zero.h"

#define ZERO_CHUNK ((size_t)4 << 20)   /* large sequential writes */
#define DIRECT_ALIGN 4096u

struct zero_writer {
  vhd_image *img;
  uint8_t *zeros;               /* ZERO_CHUNK, aligned for O_DIRECT */
  bool buffered;                /* O_DIRECT refused once: page cache from then on */
  bool scanning;                /* progress counts bytes read, not written */
  vhd_progress_fn progress;
  void *opaque;
  uint64_t done, total;         /* bytes, for progress */
  uint64_t written;
};

static int write_chunk(struct zero_writer *w, vhd_io *file, size_t n, uint64_t off)
{
  if (!w->buffered && off % DIRECT_ALIGN == 0 && n % DIRECT_ALIGN == 0) {
    int e = io_file_pwrite_direct(file, w->zeros, n, off);
    if (e != -ENOTSUP)
      return e < 0 ? vhd_error(-e, "%s: write of zeros at offset %llu: %s", file->name,
                               (unsigned long long)off, vhd_strerror(-e)) : 0;
    w->buffered = true;
  }
  int e = io_pwrite(file, w->zeros, n, off);
  if (e == 0)
    io_file_start_writeback(file, off, n);   /* keep the disk busy while we go on */
  return e;
}

/* Zeros over [from, to) of the file. */
static int write_zeros(struct zero_writer *w, vhd_io *file, uint64_t from, uint64_t to)
{
  int e = 0;
  while (e == 0 && from < to) {
    /* Chunks end on chunk boundaries, so direct writes stay aligned after
     * an unaligned start. */
    uint64_t next = (from / ZERO_CHUNK + 1) * ZERO_CHUNK;
    size_t n = (size_t)((next < to ? next : to) - from);
    uint64_t head = from % DIRECT_ALIGN ? DIRECT_ALIGN - from % DIRECT_ALIGN : 0;
    if (head && head < n)
      n = (size_t)head;   /* an unaligned start alone, buffered */
    e = write_chunk(w, file, n, from);
    from += n;
    w->written += n;
    if (w->scanning)
      continue;
    w->done += n;
    if (e == 0 && w->progress && w->progress(w->opaque, w->done, w->total))
      e = vhd_error(ECANCELED, "%s: boot-prepare cancelled", w->img->path);
  }
  return e;
}

/* reserve_fill_fn: the reserve's zeros, durable before its record. */
static int fill_durably(void *ctx, vhd_io *file, uint64_t from, uint64_t to)
{
  int e = write_zeros(ctx, file, from, to);
  return e == 0 ? io_flush(file) : e;
}

/* Bytes of [0, end) the host holds no written blocks for; with fill, they
 * are written with zeros as they are found. */
static int unwritten_ranges(struct zero_writer *w, vhd_io *file, uint64_t end, bool fill,
                            uint64_t *bytes)
{
  *bytes = 0;
  uint64_t off = 0, start, stop;
  while (off < end) {
    int e = io_file_next_unwritten(file, off, end, &start, &stop);
    if (e == -ENOTSUP)
      return 0;   /* not a hosted file: nothing the host could lose */
    if (e < 0)
      return e;
    if (start >= end)
      break;
    *bytes += stop - start;
    if (fill && (e = write_zeros(w, file, start, stop)) < 0)
      return e;
    off = stop;
  }
  return fill && *bytes ? io_flush(file) : 0;
}

/* File systems that do not say where their holes are (FUSE ones such as
 * ntfs-3g answer SEEK_HOLE with the file's end and have no FIEMAP) still
 * count their blocks: when fewer are allocated than the file is long,
 * every all-zero page of [0, end) is written with zeros (the whole range
 * read), which allocates the holes among them. */
static int hidden_holes(struct zero_writer *w, vhd_io *file, uint64_t end, uint64_t *bytes)
{
  uint64_t size, allocated;
  *bytes = 0;
  if (io_allocated_size(file, &allocated) < 0 ||
      io_get_size(file, &size) < 0 || allocated >= size)
    return 0;
  uint8_t *buf = vhd_aligned_alloc(DIRECT_ALIGN, ZERO_CHUNK);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory", w->img->path);
  uint64_t base = w->done;
  w->total += end;
  w->scanning = true;
  int e = 0;
  for (uint64_t off = 0; e == 0 && off < end; off += ZERO_CHUNK) {
    size_t n = end - off < ZERO_CHUNK ? (size_t)(end - off) : ZERO_CHUNK;
    e = io_pread(file, buf, n, off);
    uint64_t run = UINT64_MAX;   /* where the current run of zero pages began */
    for (size_t p = 0; e == 0; p += DIRECT_ALIGN) {
      bool past = p >= n;   /* one step past the chunk ends the last run */
      bool zero = !past && buffer_is_zero(buf + p, n - p < DIRECT_ALIGN ? n - p : DIRECT_ALIGN);
      if (zero && run == UINT64_MAX) {
        run = off + p;
      } else if (!zero && run != UINT64_MAX) {
        uint64_t stop = off + (past ? n : p);
        e = write_zeros(w, file, run, stop);
        *bytes += stop - run;
        run = UINT64_MAX;
      }
      if (past)
        break;
    }
    w->done = base + off + n;
    if (e == 0 && w->progress && w->progress(w->opaque, w->done, w->total))
      e = vhd_error(ECANCELED, "%s: boot-prepare cancelled", w->img->path);
  }
  w->scanning = false;
  vhd_aligned_free(buf);
  return e == 0 && *bytes ? io_flush(file) : e;
}

static bool grows_blocks(const struct vhd_info *info)
{
  return (info->format == VHD_FORMAT_VHD || info->format == VHD_FORMAT_VHDX) &&
         (info->type == VHD_TYPE_DYNAMIC || info->type == VHD_TYPE_DIFFERENCING);
}

static uint64_t reserve_free(vhd_image *img)
{
  struct vhd_reserve rs;
  return vhd_get_reserve(img, &rs) == 0 ? rs.free_bytes : 0;
}

/* The work, under the image's exclusive lock. */
static int prepare(struct zero_writer *w, const struct vhd_info *info, uint64_t want,
                   struct vhd_boot_prepare_result *res)
{
  vhd_image *img = w->img;
  vhd_io *file = reserve_io_file(img->io);
  uint64_t file_end, fill_from, fill_to;
  int e = io_get_size(file, &file_end);
  fill_from = fill_to = file_end;
  if (e == 0 && res->uses_reserve)
    e = reserve_io_plan(img->io, info->format, want, &fill_from, &fill_to);
  /* What the reserve's zeros will cover needs no search for holes. */
  uint64_t scan_end = fill_to > fill_from ? fill_from : file_end;
  if (e == 0)
    e = unwritten_ranges(w, file, scan_end, false, &res->holes_filled);
  w->total = res->holes_filled + (fill_to - fill_from);
  if (e == 0)
    e = unwritten_ranges(w, file, scan_end, true, &res->holes_filled);
  uint64_t hidden = 0, added;
  if (e == 0)
    e = hidden_holes(w, file, scan_end, &hidden);
  res->holes_filled += hidden;
  if (e == 0 && res->uses_reserve)
    e = reserve_io_grow(img->io, info->format, want, fill_durably, w, &added);
  return e;
}

int boot_prepare_image(vhd_image *img, uint64_t reserve_bytes, vhd_progress_fn progress,
                       void *opaque, struct vhd_boot_prepare_result *result)
{
  struct vhd_boot_prepare_result res;
  struct vhd_info info;
  memset(&res, 0, sizeof res);
  if (result)
    *result = res;
  vhd_error_clear();
  if (!img)
    return vhd_error(EINVAL, "vhd_boot_prepare: no image");
  if (!img->writable)
    return vhd_error(EROFS, "%s: the image is open read-only; boot-prepare needs it "
                     "read-write", img->path);
  if (reserve_io_file(img->io)->fixed_size)
    return 0;   /* a block device: no file system between it and the loader */
  int e = vhd_get_info(img, &info);
  if (e < 0)
    return e;
  /* Metadata and the record current on the disk before the file changes. */
  if ((e = vhd_flush(img)) < 0)
    return e;
  res.uses_reserve = grows_blocks(&info);
  uint64_t want = !res.uses_reserve ? 0 : reserve_bytes ? reserve_bytes
                                              : reserve_default_bytes(&info);

  struct zero_writer w = { .img = img, .progress = progress, .opaque = opaque };
  w.zeros = vhd_aligned_alloc(DIRECT_ALIGN, ZERO_CHUNK);
  if (!w.zeros)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  memset(w.zeros, 0, ZERO_CHUNK);
  vhd_rwlock_wrlock(&img->lock);
  res.reserve_free_before = reserve_free(img);
  e = prepare(&w, &info, want, &res);
  res.reserve_free_after = reserve_free(img);
  vhd_rwlock_unlock(&img->lock);
  vhd_aligned_free(w.zeros);
  res.bytes_written = w.written;
  if (result)
    *result = res;
  return e;
}
