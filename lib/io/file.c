/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE 1  /* SEEK_DATA, fallocate, sync_file_range */
/* The POSIX file backend. I/O by offset only (pread/pwrite), so a handle
 * can serve parallel requests; every descriptor is O_CLOEXEC.
 *
 * What it opens: regular files and block devices, nothing else. A FIFO,
 * socket or character device would block the open or the first read
 * forever, or read as a stream; the open itself is non-blocking so that
 * even a FIFO nobody writes is refused at once.
 *
 * A block device is the disk itself: its size is the device's
 * (BLKGETSIZE64), it is never truncated or removed, and a "new" image on
 * it is written in place (see struct file's replace). Buffered I/O lets
 * the kernel handle the device's logical sector size for any offset. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/fiemap.h>
#include <linux/fs.h>   /* BLKGETSIZE64, BLKSSZGET, BLKPBSZGET, BLKZEROOUT, FS_IOC_FIEMAP */
#endif

#include "error.h"
#include "io.h"
#include "io/file_lock.h"
#include "util/path.h"
#include "util/strfmt.h"

struct file {
  int fd;
  int direct_fd;   /* the same file opened O_DIRECT: -1 not yet, -2 unavailable */
  bool device;     /* a block device: fixed size, never truncated */
  /* A device opened to receive a new image (VHD_IO_CREATE | VHD_IO_TRUNC):
   * the image layer expects a new file to read as zeros, so the first
   * set_size zeroes the range it asks for, as truncating a file would. */
  bool replace;
  uint64_t device_size;
  uint32_t device_sector;   /* logical sector size: what BLKZEROOUT aligns to */
  char *path;
};

static int file_pread(void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct file *f = opaque;
  uint8_t *p = buf;
  while (count) {
    ssize_t n = pread(f->fd, p, count, (off_t)offset);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (n == 0) {           /* past the end of the file: zeros */
      memset(p, 0, count);
      return 0;
    }
    p += n;
    count -= (size_t)n;
    offset += (uint64_t)n;
  }
  return 0;
}

/* Largest buffered write handed to the kernel at once. Linux sizes a new
 * page-cache folio after the write that creates it, and large folios need
 * large free blocks, which on a VM with free page reporting are the ones
 * the host has taken back: every 4 KiB of them then costs a host fault.
 * Measured on such a VM (bench/README.md): 1 GiB written in 512 KiB or
 * 1 MiB writes took 2.2-4.2 s, in 128 or 256 KiB writes 0.18-0.7 s. On
 * other machines four syscalls per MiB instead of one cost nothing visible. */
#define WRITE_MAX ((size_t)256 << 10)

static int file_pwrite(void *opaque, const void *buf, size_t count, uint64_t offset)
{
  struct file *f = opaque;
  const uint8_t *p = buf;
  while (count) {
    ssize_t n = pwrite(f->fd, p, count < WRITE_MAX ? count : WRITE_MAX, (off_t)offset);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    count -= (size_t)n;
    offset += (uint64_t)n;
  }
  return 0;
}

static int file_flush(void *opaque)
{
  struct file *f = opaque;
  return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int file_get_size(void *opaque, uint64_t *size)
{
  struct file *f = opaque;
  if (f->device) {
    *size = f->device_size;
    return 0;
  }
  struct stat st;
  if (fstat(f->fd, &st) < 0)
    return -errno;
  *size = (uint64_t)st.st_size;
  return 0;
}

/* Zeros over the first length bytes of a device: the kernel's zeroing
 * (write-zeroes, or a discard where it reads back as zeros), which falls
 * back to writing zero pages itself, over whole device sectors; a part
 * sector at the end is written (the page cache merges it). */
static int device_zero(struct file *f, uint64_t length)
{
  uint64_t whole = length / f->device_sector * f->device_sector;
#ifdef BLKZEROOUT
  uint64_t range[2] = { 0, whole };
  if (whole && ioctl(f->fd, BLKZEROOUT, range) < 0)
    return -errno;
#else
  if (whole)
    return -EOPNOTSUPP;
#endif
  static const uint8_t zeros[65536];
  return file_pwrite(f, zeros, (size_t)(length - whole), whole);
}

static int file_set_size(void *opaque, uint64_t size)
{
  struct file *f = opaque;
  if (!f->device)
    return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
  if (size > f->device_size)
    return vhd_error(ENOSPC, "%s: the image needs %llu bytes, but the device holds only %llu",
                     f->path, (unsigned long long)size, (unsigned long long)f->device_size);
  if (!f->replace && size != f->device_size)   /* a cut that would not happen */
    return vhd_error(EINVAL, "%s: is a block device of %llu bytes, whose size does not "
                     "change (to %llu bytes)", f->path, (unsigned long long)f->device_size,
                     (unsigned long long)size);
  if (!f->replace)
    return 0;
  f->replace = false;
  int r = device_zero(f, size);
  if (r < 0)
    return vhd_error(-r, "%s: cannot zero the device's first %llu bytes: %s", f->path,
                     (unsigned long long)size, strerror(-r));
  return 0;
}

static int file_punch_hole(void *opaque, uint64_t offset, uint64_t length)
{
  struct file *f = opaque;
#ifdef FALLOC_FL_PUNCH_HOLE
  if (fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                (off_t)offset, (off_t)length) == 0)
    return 0;
  if (errno == EOPNOTSUPP || errno == ENOSYS)
    return -EOPNOTSUPP;
  return -errno;
#else
  (void)f; (void)offset; (void)length;
  return -EOPNOTSUPP;
#endif
}

static int file_find_data(void *opaque, uint64_t offset, uint64_t *data, uint64_t *hole)
{
  struct file *f = opaque;
  off_t d = lseek(f->fd, (off_t)offset, SEEK_DATA);
  if (d < 0) {
    if (errno != ENXIO)
      return -errno;
    uint64_t size;
    int r = file_get_size(f, &size);
    if (r < 0)
      return r;
    *data = *hole = size > offset ? size : offset;
    return 0;
  }
  off_t h = lseek(f->fd, d, SEEK_HOLE);
  if (h < 0)
    return -errno;
  *data = (uint64_t)d;
  *hole = (uint64_t)h;
  return 0;
}

static int file_allocated_size(void *opaque, uint64_t *bytes)
{
  struct file *f = opaque;
  if (f->device)
    return file_get_size(f, bytes);   /* all of it belongs to the disk */
  struct stat st;
  if (fstat(f->fd, &st) < 0)
    return -errno;
  *bytes = (uint64_t)st.st_blocks * 512;
  return 0;
}

static int file_open_related(void *opaque, const char *path, unsigned flags, vhd_io **out)
{
  struct file *f = opaque;
  char *dir = path_dirname(f->path);
  char *full = dir ? path_join(dir, path) : NULL;
  vhd_free(dir);
  if (!full)
    return vhd_error(ENOMEM, "%s: out of memory", f->path);
  int r = vhd_io_open_file(full, flags, out);
  vhd_free(full);
  return r;
}

static void file_close(void *opaque)
{
  struct file *f = opaque;
  if (f->direct_fd >= 0)
    close(f->direct_fd);
  close(f->fd);
  free(f->path);
  free(f);
}

static const struct vhd_io_ops file_ops = {
  .pread = file_pread,
  .pwrite = file_pwrite,
  .flush = file_flush,
  .get_size = file_get_size,
  .set_size = file_set_size,
  .punch_hole = file_punch_hole,
  .find_data = file_find_data,
  .allocated_size = file_allocated_size,
  .open_related = file_open_related,
  .close = file_close,
};

void io_file_start_writeback(vhd_io *io, uint64_t offset, uint64_t length)
{
  if (io->ops != &file_ops)
    return;
#ifdef SYNC_FILE_RANGE_WRITE
  struct file *f = io->opaque;
  /* Only a hint: a failure leaves the work to the next flush. */
  (void)sync_file_range(f->fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
#else
  (void)offset;
  (void)length;
#endif
}

int io_file_pwrite_direct(vhd_io *io, const void *buf, size_t count, uint64_t offset)
{
#ifdef O_DIRECT
  if (io->ops != &file_ops || !io_writable(io))
    return -EOPNOTSUPP;
  struct file *f = io->opaque;
  if (f->direct_fd == -1) {
    /* A second open file description of the same inode (not a dup, which
     * would share the O_DIRECT flag with the buffered one). */
    char proc[64];
    vhd_snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
    int fd = open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC);
    f->direct_fd = fd >= 0 ? fd : -2;
  }
  if (f->direct_fd < 0)
    return -EOPNOTSUPP;
  const uint8_t *p = buf;
  while (count) {
    ssize_t n = pwrite(f->direct_fd, p, count, (off_t)offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EINVAL)
      return -EOPNOTSUPP;   /* alignment the file system refuses */
    if (n < 0)
      return -errno;
    if (n == 0 || (size_t)n % 4096)
      return -EOPNOTSUPP;   /* the rest would be unaligned: the caller writes it all */
    p += n;
    count -= (size_t)n;
    offset += (uint64_t)n;
  }
  return 0;
#else
  (void)io; (void)buf; (void)count; (void)offset;
  return -EOPNOTSUPP;
#endif
}

/* Where the open file really is: the kernel's name for the descriptor,
 * which no rename or symbolic link between the open and this call can
 * change. */
static int file_real_path(vhd_io *io, char **out)
{
  struct file *f = io->opaque;
  char proc[64];
  vhd_snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
  char *real = realpath(proc, NULL);
  if (!real)
    real = realpath(f->path, NULL);   /* no /proc: the name as it is now */
  if (!real)
    return vhd_error(errno, "%s: cannot resolve its real path: %s", f->path, strerror(errno));
  *out = real;
  return 0;
}

/* What a non-image file is, for the line that refuses it (NULL: usable). */
static const char *unusable_kind(mode_t mode)
{
  if (S_ISREG(mode) || S_ISBLK(mode))
    return NULL;
  if (S_ISFIFO(mode))
    return "is a FIFO (named pipe), not a disk image file; images are read at offsets, "
           "so save the stream to a file first";
  if (S_ISCHR(mode))
    return "is a character device, not a disk image file";
  if (S_ISSOCK(mode))
    return "is a socket, not a disk image file";
  return "is not a regular file or block device";
}

/* Open without blocking (a FIFO would wait for a writer), without
 * truncating (only a regular file may be emptied, and only once it is
 * locked), creating the file only when asked to and when it is absent. */
static int open_plain(const char *path, unsigned flags, bool *created)
{
  int oflags = O_CLOEXEC | O_NONBLOCK |
               ((flags & (VHD_IO_RDWR | VHD_IO_CREATE)) ? O_RDWR : O_RDONLY);
  *created = false;
  if ((flags & VHD_IO_CREATE) && !(flags & VHD_IO_TRUNC)) {
    *created = true;
    return open(path, oflags | O_CREAT | O_EXCL, 0644);
  }
  int fd = open(path, oflags);
  if (fd < 0 && errno == ENOENT && (flags & VHD_IO_CREATE)) {
    *created = true;
    fd = open(path, oflags | O_CREAT | O_EXCL, 0644);
  }
  return fd;
}

/* The device's size and sector sizes into f and the io. */
static int device_geometry(struct file *f, uint32_t *logical, uint32_t *physical)
{
  *logical = *physical = 0;
#if defined(BLKGETSIZE64) && defined(BLKSSZGET)
  uint64_t size;
  int lss = 0;
  unsigned int pss = 0;
  if (ioctl(f->fd, BLKGETSIZE64, &size) < 0 || ioctl(f->fd, BLKSSZGET, &lss) < 0)
    return vhd_error(errno, "%s: cannot get the block device's size: %s", f->path,
                     strerror(errno));
  f->device_size = size;
  *logical = lss > 0 ? (uint32_t)lss : 0;
  if (lss >= 512 && lss <= 65536 && (lss & (lss - 1)) == 0)
    f->device_sector = (uint32_t)lss;
#ifdef BLKPBSZGET
  if (ioctl(f->fd, BLKPBSZGET, &pss) == 0)
    *physical = pss;
#endif
  return 0;
#else
  off_t end = lseek(f->fd, 0, SEEK_END);
  if (end < 0)
    return vhd_error(errno, "%s: cannot get the block device's size: %s", f->path,
                     strerror(errno));
  f->device_size = (uint64_t)end;
  return 0;
#endif
}

/* Checks and prepares an open descriptor: its kind, blocking mode, lock,
 * truncation and device geometry. */
static int prepare(struct file *f, unsigned flags, bool created,
                   uint32_t *logical, uint32_t *physical)
{
  struct stat st;
  if (fstat(f->fd, &st) < 0)
    return vhd_error(errno, "%s: %s", f->path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    return vhd_error(EISDIR, "%s: is a directory", f->path);
  const char *kind = unusable_kind(st.st_mode);
  if (kind)
    return vhd_error(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ? ESPIPE : ENODEV,
                     "%s: %s", f->path, kind);
  int fl = fcntl(f->fd, F_GETFL);
  if (fl < 0 || fcntl(f->fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
    return vhd_error(errno, "%s: %s", f->path, strerror(errno));
  bool writing = (flags & (VHD_IO_RDWR | VHD_IO_CREATE)) != 0;
  if (!(flags & VHD_IO_NOLOCK)) {
    int r = file_lock_take(f->fd, f->path, writing);
    if (r < 0)
      return r;
  }
  f->device = S_ISBLK(st.st_mode);
  bool replacing = (flags & VHD_IO_CREATE) && (flags & VHD_IO_TRUNC) && !created;
  if (f->device) {
    f->replace = replacing;
    f->device_sector = 512;
    return device_geometry(f, logical, physical);
  }
  if (replacing && st.st_size != 0 && ftruncate(f->fd, 0) < 0)
    return vhd_error(errno, "%s: cannot empty it: %s", f->path, strerror(errno));
  return 0;
}

int vhd_io_open_file(const char *path, unsigned flags, vhd_io **out)
{
  *out = NULL;
  bool created;
  int fd = open_plain(path, flags, &created);
  if (fd < 0)
    return vhd_error(errno, "%s: %s", path, strerror(errno));
  struct file *f = calloc(1, sizeof *f);
  char *copy = strdup(path);
  if (!f || !copy) {
    close(fd);
    free(f);
    free(copy);
    return vhd_error(ENOMEM, "%s: out of memory", path);
  }
  f->fd = fd;
  f->direct_fd = -1;
  f->path = copy;
  uint32_t logical = 0, physical = 0;
  int r = prepare(f, flags, created, &logical, &physical);
  unsigned ioflags = (flags & (VHD_IO_RDWR | VHD_IO_CREATE)) ? VHD_IO_RDWR : 0;
  if (r == 0)
    r = vhd_io_new(&file_ops, f, path, ioflags, out);
  if (r < 0) {
    if (created)
      unlink(path);   /* made by this open, and nothing else has it yet */
    file_close(f);
    return r;
  }
  (*out)->real_path = file_real_path;
  (*out)->fixed_size = f->device;
  (*out)->logical_sector_size = logical;
  (*out)->physical_sector_size = physical;
  return 0;
}

/* The first hole of [from, to): SEEK_HOLE, then SEEK_DATA for its end. */
static int next_hole(struct file *f, uint64_t from, uint64_t to, uint64_t *start,
                     uint64_t *end)
{
  *start = *end = to;
  off_t h = lseek(f->fd, (off_t)from, SEEK_HOLE);
  if (h < 0)
    return errno == ENXIO ? 0 : -errno;   /* ENXIO: from is at or past the end */
  if ((uint64_t)h >= to)
    return 0;
  off_t d = lseek(f->fd, h, SEEK_DATA);
  if (d < 0 && errno != ENXIO)
    return -errno;
  *start = (uint64_t)h;
  *end = d < 0 || (uint64_t)d > to ? to : (uint64_t)d;
  return 0;
}

#ifdef FS_IOC_FIEMAP
#define FIEMAP_BATCH 64

/* The first unwritten extent of [from, to) per FIEMAP (synced first, so
 * that blocks written just before are seen converted); *start = *end = to
 * when there is none or the file system has no FIEMAP. */
static int next_unwritten_extent(struct file *f, uint64_t from, uint64_t to,
                                 uint64_t *start, uint64_t *end)
{
  *start = *end = to;
  size_t size = sizeof(struct fiemap) + FIEMAP_BATCH * sizeof(struct fiemap_extent);
  struct fiemap *fm = calloc(1, size);
  if (!fm)
    return -ENOMEM;
  int r = 0;
  while (from < to) {
    memset(fm, 0, size);
    fm->fm_start = from;
    fm->fm_length = to - from;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = FIEMAP_BATCH;
    if (ioctl(f->fd, FS_IOC_FIEMAP, fm) < 0) {
      r = errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL ? 0 : -errno;
      break;
    }
    if (fm->fm_mapped_extents == 0)
      break;
    const struct fiemap_extent *last = &fm->fm_extents[fm->fm_mapped_extents - 1];
    for (uint32_t i = 0; i < fm->fm_mapped_extents; i++) {
      const struct fiemap_extent *e = &fm->fm_extents[i];
      uint64_t e_end = e->fe_logical + e->fe_length;
      if (!(e->fe_flags & FIEMAP_EXTENT_UNWRITTEN) || e_end <= from)
        continue;
      *start = e->fe_logical > from ? e->fe_logical : from;
      *end = e_end < to ? e_end : to;
      if (*start >= to)
        *start = *end = to;
      free(fm);
      return 0;
    }
    uint64_t next = last->fe_logical + last->fe_length;
    if ((last->fe_flags & FIEMAP_EXTENT_LAST) || next <= from)
      break;
    from = next;
  }
  free(fm);
  return r;
}
#endif

int io_file_next_unwritten(vhd_io *io, uint64_t from, uint64_t to, uint64_t *start,
                           uint64_t *end)
{
  *start = *end = to;
  if (io->ops != &file_ops || ((struct file *)io->opaque)->device)
    return -EOPNOTSUPP;
  struct file *f = io->opaque;
  if (from >= to)
    return 0;
  int r = next_hole(f, from, to, start, end);
#ifdef FS_IOC_FIEMAP
  uint64_t u, ue;
  if (r == 0 && (r = next_unwritten_extent(f, from, *start, &u, &ue)) == 0 && u < *start) {
    *start = u;
    *end = ue;
  }
#endif
  if (r < 0)
    return vhd_error(-r, "%s: cannot find its unwritten ranges: %s", f->path, strerror(-r));
  return 0;
}

void io_file_release_lock(vhd_io *io)
{
  if (io->ops == &file_ops)
    file_lock_release(((struct file *)io->opaque)->fd);
}

int io_remove_output(const char *path)
{
  struct stat st;
  /* Only a regular file is ours to remove: a device node (or a link to
   * one) was written in place and stays. */
  if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return 0;
  return unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
}
