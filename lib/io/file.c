#define _GNU_SOURCE 1  /* SEEK_DATA, fallocate, sync_file_range */
/* The POSIX file backend. I/O by offset only (pread/pwrite), so a handle
 * can serve parallel requests; every descriptor is O_CLOEXEC. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "io.h"
#include "util/path.h"
#include "util/strfmt.h"

struct file {
  int fd;
  int direct_fd;   /* the same file opened O_DIRECT: -1 not yet, -2 unavailable */
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
  struct stat st;
  if (fstat(f->fd, &st) < 0)
    return -errno;
  *size = (uint64_t)st.st_size;
  return 0;
}

static int file_set_size(void *opaque, uint64_t size)
{
  struct file *f = opaque;
  return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
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

int vhd_io_open_file(const char *path, unsigned flags, vhd_io **out)
{
  *out = NULL;
  int oflags = O_CLOEXEC | ((flags & VHD_IO_RDWR) ? O_RDWR : O_RDONLY);
  if (flags & VHD_IO_CREATE)
    oflags |= O_CREAT | O_RDWR | ((flags & VHD_IO_TRUNC) ? O_TRUNC : O_EXCL);
  int fd = open(path, oflags, 0644);
  if (fd < 0)
    return vhd_error(errno, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    close(fd);
    return vhd_error(EISDIR, "%s: is a directory", path);
  }
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
  unsigned ioflags = (flags & (VHD_IO_RDWR | VHD_IO_CREATE)) ? VHD_IO_RDWR : 0;
  int r = vhd_io_new(&file_ops, f, path, ioflags, out);
  if (r < 0)
    file_close(f);
  else
    (*out)->real_path = file_real_path;
  return r;
}
