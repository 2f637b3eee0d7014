/* SPDX-License-Identifier: BSD-3-Clause */
/* Wrapping backends, and the checked helpers the core calls. */
#include "error.h"
#include "io.h"
#include "sized.h"
#include "util/strfmt.h"

int vhd_io_new_sized(const struct vhd_io_ops *caller_ops, size_t ops_size, void *opaque,
                     const char *name, unsigned flags, vhd_io **out)
{
  *out = NULL;
  struct vhd_io_ops table = { 0 };
  if (!caller_ops)
    return vhd_error(EINVAL, "vhd_io_new: no vhd_io_ops");
  int r = sized_in("vhd_io_ops", &table, sizeof table, IO_OPS_SIZE_1, caller_ops, ops_size);
  if (r < 0)
    return r;
  const struct vhd_io_ops *ops = ops_size == sizeof table ? caller_ops : &table;
  if (!ops->pread || !ops->get_size || !ops->close)
    return vhd_error(EINVAL, "vhd_io_new: pread, get_size and close are required");
  vhd_io *io = vhd_calloc(1, sizeof *io);
  char *copy = vhd_strdup(name ? name : "(unnamed)");
  if (!io || !copy) {
    vhd_free(io);
    vhd_free(copy);
    return vhd_error(ENOMEM, "%s: out of memory", name ? name : "(unnamed)");
  }
  /* The library's own backends compare io->ops with their table, so a
   * table of this library's size is kept as it is. */
  io->own_ops = table;
  io->ops = ops == caller_ops ? caller_ops : &io->own_ops;
  io->opaque = opaque;
  io->name = copy;
  io->flags = flags & VHD_IO_RDWR;
  *out = io;
  return 0;
}

const char *vhd_io_name(const vhd_io *io) { return io ? io->name : NULL; }

void vhd_io_close(vhd_io *io)
{
  if (!io)
    return;
  io->ops->close(io->opaque);
  vhd_free(io->name);
  vhd_free(io);
}

int io_pread(vhd_io *io, void *buf, size_t count, uint64_t offset)
{
  if (count == 0)
    return 0;
  if (offset + count < offset)
    return vhd_error(EINVAL, "%s: read at offset %llu overflows", io->name,
                     (unsigned long long)offset);
  int r = io->ops->pread(io->opaque, buf, count, offset);
  if (r < 0)
    return vhd_error(-r, "%s: read of %zu bytes at offset %llu: %s", io->name,
                     count, (unsigned long long)offset, vhd_strerror(-r));
  return 0;
}

int io_pread_upto(vhd_io *io, void *buf, size_t count, uint64_t offset, uint64_t end)
{
  size_t have = offset >= end ? 0 : end - offset < count ? (size_t)(end - offset) : count;
  memset((uint8_t *)buf + have, 0, count - have);
  return io_pread(io, buf, have, offset);
}

int io_pwrite(vhd_io *io, const void *buf, size_t count, uint64_t offset)
{
  if (count == 0)
    return 0;
  if (!io_writable(io) || !io->ops->pwrite)
    return vhd_error(EROFS, "%s: the file is open read-only%s", io->name,
                     io->ops->pwrite ? "" : " (its backend cannot write)");
  if (offset + count < offset)
    return vhd_error(EINVAL, "%s: write at offset %llu overflows", io->name,
                     (unsigned long long)offset);
  int r = io->ops->pwrite(io->opaque, buf, count, offset);
  if (r < 0)
    return vhd_error(-r, "%s: write of %zu bytes at offset %llu: %s", io->name,
                     count, (unsigned long long)offset, vhd_strerror(-r));
  return 0;
}

int io_flush(vhd_io *io)
{
  if (!io_writable(io) || !io->ops->flush)
    return 0;
  int r = io->ops->flush(io->opaque);
  if (r < 0)
    return vhd_error(-r, "%s: flush: %s", io->name, vhd_strerror(-r));
  return 0;
}

int io_get_size(vhd_io *io, uint64_t *size)
{
  int r = io->ops->get_size(io->opaque, size);
  if (r < 0)
    return vhd_error(-r, "%s: cannot get the file size: %s", io->name, vhd_strerror(-r));
  return 0;
}

int io_set_size(vhd_io *io, uint64_t size)
{
  if (!io_writable(io) || !io->ops->set_size)
    return vhd_error(EROFS, "%s: %s", io->name, io->ops->set_size
                     ? "the file is open read-only" : "its backend cannot change the file's length");
  int r = io->ops->set_size(io->opaque, size);
  if (r < 0 && io->fixed_size)
    return r;   /* a device: the backend said why, with both sizes */
  if (r < 0)
    return vhd_error(-r, "%s: cannot set the file size to %llu: %s", io->name,
                     (unsigned long long)size, vhd_strerror(-r));
  return 0;
}

/* Backends may say "not supported" by either name (equal on Linux, not
 * everywhere); the core says -ENOTSUP. */
static int as_enotsup(int r) { return r == -EOPNOTSUPP ? -ENOTSUP : r; }

int io_punch_hole(vhd_io *io, uint64_t offset, uint64_t length)
{
  if (!io_writable(io))
    return vhd_error(EROFS, "%s: the file is open read-only", io->name);
  if (io->punch_unsupported || !io->ops->punch_hole)
    return -ENOTSUP;
  int r = as_enotsup(io->ops->punch_hole(io->opaque, offset, length));
  if (r == -ENOTSUP) {
    io->punch_unsupported = true;   /* remembered: don't ask the host again */
    return r;
  }
  if (r < 0)
    return vhd_error(-r, "%s: punch hole at offset %llu: %s", io->name,
                     (unsigned long long)offset, vhd_strerror(-r));
  return 0;
}

int io_find_data(vhd_io *io, uint64_t offset, uint64_t *data, uint64_t *hole)
{
  uint64_t size;
  int r;
  if (io->ops->find_data) {
    r = io->ops->find_data(io->opaque, offset, data, hole);
    if (r == 0)
      return 0;
  }
  r = io_get_size(io, &size);
  if (r < 0)
    return r;
  *data = offset < size ? offset : size;
  *hole = size;
  return 0;
}

int io_open_related(vhd_io *io, const char *path, unsigned flags, vhd_io **out)
{
  if (!io->ops->open_related)
    return vhd_error(ENOENT, "%s: cannot open %s: this backend has no other files",
                     io->name, path);
  return io->ops->open_related(io->opaque, path, flags, out);
}

#define ZERO_WRITE_CHUNK (1u << 20)
int io_zero_range(vhd_io *io, uint64_t offset, uint64_t length)
{
  int r = length ? io_punch_hole(io, offset, length) : 0;
  if (r != -ENOTSUP)
    return r;
  size_t chunk = length < ZERO_WRITE_CHUNK ? (size_t)length : ZERO_WRITE_CHUNK;
  uint8_t *zeros = vhd_calloc(1, chunk);
  if (!zeros)
    return vhd_error(ENOMEM, "%s: out of memory writing zeros", io->name);
  r = 0;
  for (uint64_t done = 0; done < length && r == 0; done += chunk)
    r = io_pwrite(io, zeros, length - done < chunk ? (size_t)(length - done) : chunk,
                  offset + done);
  vhd_free(zeros);
  return r;
}

int io_allocated_size(vhd_io *io, uint64_t *bytes)
{
  if (!io->ops->allocated_size)
    return -ENOTSUP;
  int r = as_enotsup(io->ops->allocated_size(io->opaque, bytes));
  if (r < 0 && r != -ENOTSUP)
    return vhd_error(-r, "%s: cannot get the space the file takes: %s", io->name,
                     vhd_strerror(-r));
  return r;
}

/* io_wrap: every call goes through the helpers above, so a member the
 * inner backend leaves out gets the helpers' default and is never called. */
struct io_wrapper {
  vhd_io *inner;
  const struct io_overrides *ov;
  void *ctx;
};

static vhd_io *inner_of(void *o) { return ((struct io_wrapper *)o)->inner; }

static int wrap_pread(void *o, void *buf, size_t count, uint64_t offset)
{
  return io_pread(inner_of(o), buf, count, offset);
}

static int wrap_pwrite(void *o, const void *buf, size_t count, uint64_t offset)
{
  struct io_wrapper *w = o;
  if (w->ov && w->ov->pwrite)
    return w->ov->pwrite(w->ctx, w->inner, buf, count, offset);
  return io_pwrite(w->inner, buf, count, offset);
}

static int wrap_flush(void *o)
{
  struct io_wrapper *w = o;
  if (w->ov && w->ov->flush)
    return w->ov->flush(w->ctx, w->inner);
  return io_flush(w->inner);
}

static int wrap_get_size(void *o, uint64_t *size) { return io_get_size(inner_of(o), size); }
static int wrap_set_size(void *o, uint64_t size) { return io_set_size(inner_of(o), size); }

static int wrap_punch_hole(void *o, uint64_t offset, uint64_t length)
{
  return io_punch_hole(inner_of(o), offset, length);
}

/* Absent where inner's is: callers such as slots.c tell "the backend knows
 * its holes" from "it does not" by whether find_data answers. */
static int wrap_find_data(void *o, uint64_t offset, uint64_t *data, uint64_t *hole)
{
  vhd_io *inner = inner_of(o);
  return inner->ops->find_data ? io_find_data(inner, offset, data, hole) : -ENOTSUP;
}

static int wrap_allocated_size(void *o, uint64_t *bytes)
{
  return io_allocated_size(inner_of(o), bytes);
}

static int wrap_open_related(void *o, const char *path, unsigned flags, vhd_io **out)
{
  return io_open_related(inner_of(o), path, flags, out);
}

static void wrap_close(void *o)
{
  struct io_wrapper *w = o;
  if (w->ov && w->ov->close)
    w->ov->close(w->ctx, w->inner);
  vhd_free(w);
}

static int wrap_real_path(vhd_io *io, char **out)
{
  vhd_io *inner = inner_of(io->opaque);
  return inner->real_path(inner, out);
}

static const struct vhd_io_ops wrap_ops = {
  .pread = wrap_pread,
  .pwrite = wrap_pwrite,
  .flush = wrap_flush,
  .get_size = wrap_get_size,
  .set_size = wrap_set_size,
  .punch_hole = wrap_punch_hole,
  .find_data = wrap_find_data,
  .allocated_size = wrap_allocated_size,
  .open_related = wrap_open_related,
  .close = wrap_close,
};

int io_wrap(vhd_io *inner, unsigned flags, const struct io_overrides *ov, void *ctx,
            vhd_io **out)
{
  struct io_wrapper *w = vhd_calloc(1, sizeof *w);
  if (!w)
    return vhd_error(ENOMEM, "%s: out of memory", inner->name);
  w->inner = inner;
  w->ov = ov;
  w->ctx = ctx;
  int r = vhd_io_new(&wrap_ops, w, inner->name, flags, out);
  if (r < 0) {
    vhd_free(w);
    return r;
  }
  (*out)->real_path = inner->real_path ? wrap_real_path : NULL;
  (*out)->fixed_size = inner->fixed_size;
  (*out)->nbd_export = inner->nbd_export;
  (*out)->logical_sector_size = inner->logical_sector_size;
  (*out)->physical_sector_size = inner->physical_sector_size;
  return 0;
}
