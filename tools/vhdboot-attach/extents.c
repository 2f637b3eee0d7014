/* SPDX-License-Identifier: BSD-3-Clause */
/* Where a file's bytes lie on its disk: FIEMAP, or FIBMAP block by block
 * where the file system has no FIEMAP (vfat and exfat on Linux 6.1). Used
 * to map a fixed image with device-mapper when no record gave the extents,
 * and to check the record's extents against the file. */
#include "attach.h"

#include <errno.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct extent_list {
  struct file_extent *e;
  uint32_t n, cap;
};

static int add(struct extent_list *l, uint64_t file_off, uint64_t disk_off, uint64_t len)
{
  if (l->n) {
    struct file_extent *last = &l->e[l->n - 1];
    if (last->file_offset + last->length == file_off &&
        last->disk_offset + last->length == disk_off) {
      last->length += len;
      return 0;
    }
  }
  if (l->n == l->cap) {
    uint32_t cap = l->cap ? l->cap * 2 : 64;
    struct file_extent *ne = realloc(l->e, cap * sizeof *ne);
    if (!ne)
      return fail("out of memory for %u extents", cap);
    l->e = ne;
    l->cap = cap;
  }
  l->e[l->n++] = (struct file_extent){ file_off, disk_off, len };
  return 0;
}

/* 1 done, 0 FIEMAP not supported, -1 refused. */
static int by_fiemap(int fd, uint64_t size, uint64_t part_start, struct extent_list *l)
{
  enum { BATCH = 256 };
  struct fiemap *fm = calloc(1, sizeof *fm + BATCH * sizeof(struct fiemap_extent));
  if (!fm)
    return fail("out of memory");
  uint64_t next = 0;
  while (next < size) {
    memset(fm, 0, sizeof *fm);
    fm->fm_start = next;
    fm->fm_length = size - next;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = BATCH;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
      int err = errno;
      free(fm);
      if ((err == EOPNOTSUPP || err == ENOTTY) && next == 0)
        return 0;
      return fail("FIEMAP: %s", strerror(err));
    }
    if (fm->fm_mapped_extents == 0)
      break;
    for (uint32_t i = 0; i < fm->fm_mapped_extents; i++) {
      const struct fiemap_extent *x = &fm->fm_extents[i];
      const uint32_t bad = FIEMAP_EXTENT_UNKNOWN | FIEMAP_EXTENT_DELALLOC |
                           FIEMAP_EXTENT_ENCODED | FIEMAP_EXTENT_DATA_INLINE |
                           FIEMAP_EXTENT_NOT_ALIGNED | FIEMAP_EXTENT_UNWRITTEN;
      if (x->fe_logical != next || (x->fe_flags & bad)) {
        free(fm);
        return fail("the image has a hole or an unwritten, inline or encoded extent at byte "
                    "%llu: a device-mapper table needs every byte written ('vhdtool boot-prepare' "
                    "writes them)", (unsigned long long)next);
      }
      if (add(l, x->fe_logical, part_start + x->fe_physical, x->fe_length) < 0) {
        free(fm);
        return -1;
      }
      next = x->fe_logical + x->fe_length;
      if (x->fe_flags & FIEMAP_EXTENT_LAST)
        next = next > size ? next : size;
    }
  }
  free(fm);
  if (next < size)
    return fail("the image has a hole at byte %llu", (unsigned long long)next);
  return 1;
}

static int by_fibmap(int fd, uint64_t size, uint64_t part_start, struct extent_list *l)
{
  int bsz;
  if (ioctl(fd, FIGETBSZ, &bsz) < 0 || bsz <= 0)
    return fail("FIGETBSZ: %s", strerror(errno));
  uint64_t blocks = (size + (uint64_t)bsz - 1) / (uint64_t)bsz;
  for (uint64_t b = 0; b < blocks; b++) {
    int blk = (int)b;
    if ((uint64_t)blk != b)
      return fail("the image is too large for FIBMAP");
    if (ioctl(fd, FIBMAP, &blk) < 0)
      return fail("FIBMAP: %s", strerror(errno));
    if (blk == 0)
      return fail("the image has a hole at byte %llu", (unsigned long long)(b * (uint64_t)bsz));
    if (add(l, b * (uint64_t)bsz, part_start + (uint64_t)(unsigned)blk * (uint64_t)bsz,
            (uint64_t)bsz) < 0)
      return -1;
  }
  return 0;
}

int file_extents(int fd, uint64_t part_start, struct file_extent **out, uint32_t *count)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return fail("fstat: %s", strerror(errno));
  struct extent_list l = { 0 };
  int rc = by_fiemap(fd, (uint64_t)st.st_size, part_start, &l);
  if (rc == 0)
    rc = by_fibmap(fd, (uint64_t)st.st_size, part_start, &l);
  if (rc < 0) {
    free(l.e);
    return -1;
  }
  *out = l.e;
  *count = l.n;
  return 0;
}

static int same_bytes(int file_fd, int disk_fd, uint64_t file_off, uint64_t disk_off, size_t len)
{
  uint8_t a[4096], b[4096];
  return pread(file_fd, a, len, (off_t)file_off) == (ssize_t)len &&
         pread(disk_fd, b, len, (off_t)disk_off) == (ssize_t)len && memcmp(a, b, len) == 0;
}

/* The first and last 4 KiB of every extent (within the file) read the same
 * from the file and from the disk. Cheap, and independent of how the
 * extents were found. */
int extents_verify(int file_fd, int disk_fd, const struct file_extent *e, uint32_t count,
                   uint64_t file_size, const char *path)
{
  for (uint32_t i = 0; i < count; i++) {
    uint64_t end = e[i].file_offset + e[i].length;
    if (end > file_size)
      end = file_size;
    if (end <= e[i].file_offset || e[i].disk_offset == EXTENT_NOT_ON_DISK)
      continue;   /* nothing of the file there, or nothing on the disk */
    uint64_t len = end - e[i].file_offset;
    size_t head = len < 4096 ? (size_t)len : 4096;
    uint64_t tail_off = end - head;
    if (!same_bytes(file_fd, disk_fd, e[i].file_offset, e[i].disk_offset, head) ||
        !same_bytes(file_fd, disk_fd, tail_off, e[i].disk_offset + (tail_off - e[i].file_offset),
                    head))
      return fail("%s: extent %u (file byte %llu at disk byte %llu) does not hold the file's "
                  "bytes", path, i, (unsigned long long)e[i].file_offset,
                  (unsigned long long)e[i].disk_offset);
  }
  return 0;
}
