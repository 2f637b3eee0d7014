/* SPDX-License-Identifier: BSD-3-Clause */
/* Internal view of an I/O backend (the public side is in vhd.h).
 * Each helper sets the error message (naming the file) on failure. */
#ifndef LIBVHD_IO_H
#define LIBVHD_IO_H

#include "vhd.h"
#include "platform.h"

struct vhd_io {
  const struct vhd_io_ops *ops;   /* the backend's table, or own_ops */
  /* A caller's table of another size than this library's, completed with
   * NULLs (vhd_io_new_sized); ops then points here. The reserve wrapper's
   * copy of a vhd_io points here too, and lives no longer than this one. */
  struct vhd_io_ops own_ops;
  void *opaque;
  char *name;
  unsigned flags;           /* VHD_IO_RDWR if writable */
  bool punch_unsupported;   /* remembered after the first -ENOTSUP */
  /* Hosted files only (NULL elsewhere): the real path of the open file,
   * symbolic links resolved, allocated. Lets the chain layer see where a
   * parent really is (a link in an allowed directory may point out). */
  int (*real_path)(vhd_io *io, char **out);
  /* A block device (file backend): its size is fixed, so set_size fails
   * with -ENOSPC for more and -EINVAL for less (but for the image a create
   * writes onto it), with the backend's own message, and only raw images
   * can be made on it. */
  bool fixed_size;
  /* With fixed_size: an NBD export (io/nbd.c), not a device (messages). */
  bool nbd_export;
  /* The device's sector sizes; 0 when unknown or not a device. */
  uint32_t logical_sector_size, physical_sector_size;
};

int io_pread(vhd_io *io, void *buf, size_t count, uint64_t offset);
/* io_pread where the bytes at or past end read as zeros: formats whose
 * last cluster need not be written out in full (qcow2, VMDK). */
int io_pread_upto(vhd_io *io, void *buf, size_t count, uint64_t offset, uint64_t end);
int io_pwrite(vhd_io *io, const void *buf, size_t count, uint64_t offset);
int io_flush(vhd_io *io);
int io_get_size(vhd_io *io, uint64_t *size);
int io_set_size(vhd_io *io, uint64_t size);
/* -ENOTSUP (without an error message) when the host cannot punch. */
int io_punch_hole(vhd_io *io, uint64_t offset, uint64_t length);
/* Whether a punch may work: false once the host said it cannot. */
static inline bool io_may_punch(const vhd_io *io)
{
  return io->ops->punch_hole && !io->punch_unsupported;
}
/* Without find_data support: the whole rest of the file is data. */
int io_find_data(vhd_io *io, uint64_t offset, uint64_t *data, uint64_t *hole);
int io_open_related(vhd_io *io, const char *path, unsigned flags, vhd_io **out);
/* Make [offset, offset+length) of the file read as zeros: punched where
 * the host can, else written (in pieces of at most 1 MiB). */
int io_zero_range(vhd_io *io, uint64_t offset, uint64_t length);
/* Host bytes the file takes; -ENOTSUP (no message) when the backend
 * cannot tell. */
int io_allocated_size(vhd_io *io, uint64_t *bytes);
/* A backend that shows inner (its name, size, file) with the calls below
 * replaced where ov (may be NULL) sets them; every other call goes through
 * the io_* helpers, so optional members inner leaves NULL are never
 * called. close (NULL: inner is borrowed and stays open) releases ctx and
 * inner when the wrapper is closed. On failure nothing is released. */
struct io_overrides {
  int (*pwrite)(void *ctx, vhd_io *inner, const void *buf, size_t count, uint64_t offset);
  int (*flush)(void *ctx, vhd_io *inner);
  void (*close)(void *ctx, vhd_io *inner);
};
int io_wrap(vhd_io *inner, unsigned flags, const struct io_overrides *ov, void *ctx,
            vhd_io **out);
/* Hosted file backend only (a no-op for others): start writing the range
 * back to the disk without waiting, so that a later flush waits less. */
void io_file_start_writeback(vhd_io *io, uint64_t offset, uint64_t length);
/* Hosted file backend only: write around the host's page cache (O_DIRECT),
 * through a second descriptor of the same file. offset and count must be
 * multiples of 4096, buf as aligned as the device wants. 0 or -errno, no
 * message (it is called from backend operations); -ENOTSUP when the
 * backend or the file system cannot, and the caller then writes normally. */
int io_file_pwrite_direct(vhd_io *io, const void *buf, size_t count, uint64_t offset);
/* Hosted file backend only: the first range of [from, to) that the host
 * file system holds no written blocks for, a hole or an unwritten
 * (preallocated) extent, as [*start, *end); *start = *end = to when there
 * is none. Both read as zeros, but a block written around the file system
 * (vhdboot.efi through the host disk) into one would stay unread. 0 or
 * -errno with the message set; -EOPNOTSUPP (no message) for other
 * backends and block devices. */
int io_file_next_unwritten(vhd_io *io, uint64_t from, uint64_t to, uint64_t *start,
                           uint64_t *end);
/* Hosted file backend only (a no-op for others): drop this descriptor's
 * lock on the file, so that the same process can open it again with a lock
 * that conflicts (merge reopens an ancestor its child's chain reads). */
void io_file_release_lock(vhd_io *io);
/* Remove a failed output at path, when it is a regular file: a block
 * device (or a link to one) written in place is never removed. */
int io_remove_output(const char *path);
/* io/cache.c: a read cache over inner (which the wrapper then owns), for
 * backends where each request is a round trip. Memory: capacity bytes of
 * blocks plus one fetch (at most IO_CACHE_MAX_FETCH) per reading thread. */
#define IO_CACHE_MAX_BLOCK (16u << 20)
#define IO_CACHE_MAX_SLOTS 8192u
#define IO_CACHE_MAX_FETCH ((size_t)8 << 20)
struct io_cache_params {
  uint64_t capacity;   /* bytes kept */
  uint32_t block;      /* bytes per cached block, a power of two */
};
struct io_cache_stats {
  uint64_t hits, misses, fetches, fetched_bytes;
};
#define IO_CACHE_DEFAULT_CAPACITY ((uint64_t)64 << 20)
#define IO_CACHE_DEFAULT_BLOCK (1u << 20)
int io_cache_wrap(vhd_io *inner, const struct io_cache_params *p, vhd_io **out);
/* Zeros for a backend that is not a cache. */
void io_cache_get_stats(vhd_io *io, struct io_cache_stats *stats);
/* io/nbd.c: -EREMOTE with the message for a differencing image whose
 * parent, named by locator, would have to be a file beside a remote one. */
int io_refuse_remote_parent(const char *locator);
static inline bool io_writable(const vhd_io *io) { return (io->flags & VHD_IO_RDWR) != 0; }

#endif
