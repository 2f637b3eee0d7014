/* SPDX-License-Identifier: BSD-3-Clause */
/* A test backend written independently of lib/io/memory.c: a growable byte
 * array that counts every call, can fail the Nth read or the Nth change
 * (pwrite, flush, set_size) with -EIO, and can log every change so a test
 * can rebuild the file as it stood after any prefix of them (a crash). */
#ifndef TESTS_FAKEIO_H
#define TESTS_FAKEIO_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

/* Every buffer a fake holds is tracked, so that a test's teardown can free
 * what an assertion left behind (fake_free_all), keeping LeakSanitizer's
 * reports for the library. */
#define FAKE_TRACK_MAX 4096
static void *fake_tracked[FAKE_TRACK_MAX];

static inline void fake_track(void *old, void *p)
{
  for (int i = 0; i < FAKE_TRACK_MAX; i++)
    if (fake_tracked[i] == old) {
      fake_tracked[i] = p;
      return;
    }
}

static inline void *fake_realloc(void *old, size_t n)
{
  /* The slot is found by old's value before realloc may free it: the
   * compiler rightly refuses a look at a pointer after that. */
  int slot = -1;
  for (int i = 0; i < FAKE_TRACK_MAX && slot < 0; i++)
    if (fake_tracked[i] == old)
      slot = i;
  void *p = realloc(old, n ? n : 1);
  if (p && slot >= 0)
    fake_tracked[slot] = p;   /* old == NULL took a free slot */
  return p;
}

static inline void fake_free(void *p)
{
  if (p)
    fake_track(p, NULL);
  free(p);
}

static inline void fake_free_all(void)
{
  for (int i = 0; i < FAKE_TRACK_MAX; i++) {
    free(fake_tracked[i]);
    fake_tracked[i] = NULL;
  }
}

enum fake_op { FAKE_WRITE, FAKE_FLUSH, FAKE_SET_SIZE };

struct fake_change {
  enum fake_op op;
  uint64_t offset;        /* WRITE: where; SET_SIZE: the new size */
  size_t len;
  uint8_t *data;          /* WRITE: a copy */
};

struct fake {
  uint8_t *data;
  size_t size;
  unsigned reads, changes;      /* calls so far */
  unsigned fail_read_at;        /* 1-based; 0 = never */
  unsigned fail_change_at;
  unsigned injected;            /* faults returned */
  const char *fault_what;       /* the failed call: "pwrite", "flush", ... */
  uint64_t fault_offset;        /* and its offset (pwrite) or size (set_size) */
  size_t fault_len;
  unsigned *closes;             /* counts close() calls, may be NULL */
  uint64_t max_size;            /* growing past it fails with ENOSPC; 0 = no limit */
  int log;                      /* record changes */
  struct fake_change *changelog;
  size_t nlog, caplog;
};

static inline int fake_resize(struct fake *f, uint64_t size)
{
  if (size > ((uint64_t)1 << 31))
    return -EFBIG;
  if (f->max_size && size > f->max_size && size > f->size)
    return -ENOSPC;
  uint8_t *p = fake_realloc(f->data, (size_t)size);
  if (!p)
    return -ENOMEM;
  if (size > f->size)
    memset(p + f->size, 0, (size_t)size - f->size);
  f->data = p;
  f->size = (size_t)size;
  return 0;
}

static inline void fake_log(struct fake *f, enum fake_op op, uint64_t off, const void *buf, size_t len)
{
  if (!f->log)
    return;
  if (f->nlog == f->caplog) {
    f->caplog = f->caplog ? 2 * f->caplog : 64;
    f->changelog = fake_realloc(f->changelog, f->caplog * sizeof *f->changelog);
  }
  struct fake_change *c = &f->changelog[f->nlog++];
  c->op = op;
  c->offset = off;
  c->len = len;
  c->data = NULL;
  if (buf) {
    c->data = fake_realloc(NULL, len);
    memcpy(c->data, buf, len);
  }
}

/* Counts a change; returns -EIO when this one is to fail. */
static inline int fake_change(struct fake *f, const char *what, uint64_t off, size_t len)
{
  if (++f->changes == f->fail_change_at) {
    f->injected++;
    f->fault_what = what;
    f->fault_offset = off;
    f->fault_len = len;
    return -EIO;
  }
  return 0;
}

static inline int fake_pread(void *o, void *buf, size_t count, uint64_t offset)
{
  struct fake *f = o;
  if (++f->reads == f->fail_read_at) {
    f->injected++;
    f->fault_what = "pread";
    f->fault_offset = offset;
    f->fault_len = count;
    return -EIO;
  }
  size_t avail = offset < f->size ? f->size - (size_t)offset : 0;
  size_t n = count < avail ? count : avail;
  if (n)
    memcpy(buf, f->data + offset, n);
  memset((uint8_t *)buf + n, 0, count - n);
  return 0;
}

static inline int fake_pwrite(void *o, const void *buf, size_t count, uint64_t offset)
{
  struct fake *f = o;
  int r = fake_change(f, "pwrite", offset, count);
  if (r < 0)
    return r;
  if (offset + count < offset)
    return -EINVAL;
  if (offset + count > f->size && (r = fake_resize(f, offset + count)) < 0)
    return r;
  memcpy(f->data + offset, buf, count);
  fake_log(f, FAKE_WRITE, offset, buf, count);
  return 0;
}

static inline int fake_flush(void *o)
{
  struct fake *f = o;
  int r = fake_change(f, "flush", 0, 0);
  if (r == 0)
    fake_log(f, FAKE_FLUSH, 0, NULL, 0);
  return r;
}

static inline int fake_get_size(void *o, uint64_t *size)
{
  *size = ((struct fake *)o)->size;
  return 0;
}

static inline int fake_set_size(void *o, uint64_t size)
{
  struct fake *f = o;
  int r = fake_change(f, "set_size", size, 0);
  if (r < 0)
    return r;
  r = fake_resize(f, size);
  if (r == 0)
    fake_log(f, FAKE_SET_SIZE, size, NULL, 0);
  return r;
}

static inline void fake_free_log(struct fake *f)
{
  for (size_t i = 0; i < f->nlog; i++)
    fake_free(f->changelog[i].data);
  fake_free(f->changelog);
  f->changelog = NULL;
  f->nlog = f->caplog = 0;
}

/* Rebuild in dst the file `start` as it stood after the first k changes
 * of logf's log (a crash there). 0 or -errno. */
static inline int fake_replay(struct fake *dst, const struct fake *start,
                              const struct fake *logf, size_t k)
{
  *dst = (struct fake){ 0 };
  int r = fake_resize(dst, start->size);
  if (r < 0)
    return r;
  memcpy(dst->data, start->data, start->size);
  for (size_t i = 0; r == 0 && i < k; i++) {
    const struct fake_change *c = &logf->changelog[i];
    if (c->op == FAKE_WRITE) {
      if (c->offset + c->len > dst->size)
        r = fake_resize(dst, c->offset + c->len);
      if (r == 0)
        memcpy(dst->data + c->offset, c->data, c->len);
    } else if (c->op == FAKE_SET_SIZE) {
      r = fake_resize(dst, c->offset);
    }
  }
  return r;
}

/* close() does not free the struct: the test reads it afterwards and
 * releases it with fake_destroy. */
static inline void fake_close(void *o)
{
  struct fake *f = o;
  if (f->closes)
    (*f->closes)++;
}

static inline void fake_destroy(struct fake *f)
{
  fake_free_log(f);
  fake_free(f->data);
  memset(f, 0, sizeof *f);
}

/* Related files (parents) are host files; tests give absolute paths. */
static inline int fake_open_related(void *o, const char *path, unsigned flags, vhd_io **out)
{
  (void)o;
  return vhd_io_open_file(path, flags & VHD_IO_RDWR, out);
}

static const struct vhd_io_ops fake_ops = {
  .pread = fake_pread,
  .pwrite = fake_pwrite,
  .flush = fake_flush,
  .get_size = fake_get_size,
  .set_size = fake_set_size,
  .open_related = fake_open_related,
  .close = fake_close,
};

/* Wrap f (which the test keeps owning) as a vhd_io named `name`. */
static inline vhd_io *fake_io(struct fake *f, const char *name, unsigned flags)
{
  vhd_io *io = NULL;
  if (vhd_io_new(&fake_ops, f, name, flags, &io) < 0)
    return NULL;
  return io;
}

#endif
