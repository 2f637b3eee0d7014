/* SPDX-License-Identifier: BSD-3-Clause */
/* The reserve wrapper (reserve.h): the drivers see a file of the image's
 * logical size L that grows inside the reserve, and every durable state of
 * the file is valid twice over: with the record (the image at L) and
 * without it (the image as the file is, the footer at the end for VHD).
 *
 * - Reads past L are zeros; bytes that become part of the image read as
 *   zeros first (punched, or written as zeros where the host cannot).
 * - L and the trailer copy reach the disk at flush, before the inner
 *   flush: the drivers flush data before they write metadata pointing at
 *   it, so the record covers a block before anything references it. A
 *   crash in between leaves a record that no longer matches (the footer
 *   copy or the VHDX log disagree) and the image opens as the file is.
 * - When the reserve is used up the trailer moves: the footer copy (VHD)
 *   or the record (VHDX) is written first past the old end, so the file is
 *   an ordinary valid image at once, then the record before it; only then
 *   does the write that needed the room go on. */
#include "error.h"
#include "image.h"
#include "reserve.h"
#include "util/strfmt.h"

#define MIB (1u << 20)
#define ZERO_CHUNK (64u * 1024)

struct reserve_io {
  vhd_io *inner;
  struct reserve_record rec;   /* what the file's record says (or will) */
  uint64_t logical;            /* L as the drivers see it now */
  bool active;                 /* false once given back: a plain pass-through */
  bool dirty;                  /* L or the trailer changed since the record */
  vhd_mutex lock;              /* guards logical/rec/dirty */
};

static const struct vhd_io_ops reserve_ops;

static int inner_pread(struct reserve_io *s, void *buf, size_t n, uint64_t off)
{
  return s->inner->ops->pread(s->inner->opaque, buf, n, off);
}

static int inner_pwrite(struct reserve_io *s, const void *buf, size_t n, uint64_t off)
{
  return s->inner->ops->pwrite ? s->inner->ops->pwrite(s->inner->opaque, buf, n, off) : -EROFS;
}

static uint64_t round_mib(uint64_t v) { return (v + MIB - 1) / MIB * MIB; }

/* Writes the record for L in a file of phys bytes and, for VHD, copies
 * the footer at L to the end; the state changes only once both are
 * written, so a failed move (no room on the host) leaves the old trailer
 * in force. */
static int write_trailer(struct reserve_io *s, uint64_t phys)
{
  uint8_t rec[RESERVE_RECORD_SIZE], tail[RESERVE_VHD_TRAILER];
  struct reserve_record r = s->rec;
  r.phys = phys;
  r.logical = s->logical;
  int e = 0;
  if (r.tail && (e = inner_pread(s, tail, r.tail, s->logical - r.tail)) == 0)
    e = inner_pwrite(s, tail, r.tail, r.phys - r.tail);
  reserve_record_encode(rec, &r);
  if (e == 0)
    e = inner_pwrite(s, rec, sizeof rec, reserve_record_offset(&r));
  if (e == 0) {
    s->rec = r;
    s->dirty = false;
  }
  return e;
}

/* Room up to end: when it reaches the record, a new trailer past both the
 * old one and end (whole MiB) - the footer copy or record written first
 * makes the file end valid before the old record stops matching. */
static int make_room(struct reserve_io *s, uint64_t end)
{
  if (end <= reserve_record_offset(&s->rec))
    return 0;
  uint64_t at = round_mib(end > s->rec.phys ? end : s->rec.phys);
  if (at < end || at + RESERVE_RECORD_SIZE + s->rec.tail < at)
    return -EFBIG;
  return write_trailer(s, at + RESERVE_RECORD_SIZE + s->rec.tail);
}

/* [from, to) of the file becomes image: make it read as zeros. */
static int clear_range(struct reserve_io *s, uint64_t from, uint64_t to)
{
  if (from >= to)
    return 0;
  const struct vhd_io_ops *o = s->inner->ops;
  if (o->punch_hole && !s->inner->punch_unsupported) {
    int p = o->punch_hole(s->inner->opaque, from, to - from);
    if (p == 0)
      return 0;
    if (p == -EOPNOTSUPP)
      s->inner->punch_unsupported = true;   /* don't ask the host again */
  }
  uint8_t *zero = vhd_calloc(1, ZERO_CHUNK);
  if (!zero)
    return -ENOMEM;
  int e = 0;
  while (e == 0 && from < to) {
    size_t n = to - from < ZERO_CHUNK ? (size_t)(to - from) : ZERO_CHUNK;
    e = inner_pwrite(s, zero, n, from);
    from += n;
  }
  vhd_free(zero);
  return e;
}

/* The image grows to end (> L): room, zeros between, then the new L. */
static int grow_locked(struct reserve_io *s, uint64_t end, uint64_t written_from)
{
  int e = make_room(s, end);
  if (e == 0)
    e = clear_range(s, s->logical, written_from < end ? written_from : end);
  return e;
}

/* Where the drivers' file ends: L, or nowhere once given back. */
static uint64_t view_end(struct reserve_io *s)
{
  vhd_mutex_lock(&s->lock);
  uint64_t end = s->active ? s->logical : UINT64_MAX;
  vhd_mutex_unlock(&s->lock);
  return end;
}

static int rs_pread(void *opaque, void *buf, size_t count, uint64_t off)
{
  struct reserve_io *s = opaque;
  uint64_t limit = view_end(s);
  size_t n = off < limit ? (limit - off < count ? (size_t)(limit - off) : count) : 0;
  int e = n ? inner_pread(s, buf, n, off) : 0;
  if (e == 0)
    memset((uint8_t *)buf + n, 0, count - n);
  return e;
}

static int rs_pwrite(void *opaque, const void *buf, size_t count, uint64_t off)
{
  struct reserve_io *s = opaque;
  uint64_t end = off + count;
  vhd_mutex_lock(&s->lock);
  int e = 0;
  if (s->active && end > s->logical)
    e = grow_locked(s, end, off);
  if (e == 0)
    e = inner_pwrite(s, buf, count, off);
  if (e == 0 && s->active) {
    /* A new end, or a write over the footer: the record or the footer
     * copy must follow at flush. */
    if (end > s->logical) {
      s->logical = end;
      s->dirty = true;
    } else if (s->rec.tail && end > s->logical - s->rec.tail) {
      s->dirty = true;
    }
  }
  vhd_mutex_unlock(&s->lock);
  return e;
}

static int rs_set_size(void *opaque, uint64_t size)
{
  struct reserve_io *s = opaque;
  const struct vhd_io_ops *o = s->inner->ops;
  vhd_mutex_lock(&s->lock);
  int e = 0;
  if (!s->active) {
    e = o->set_size ? o->set_size(s->inner->opaque, size) : -EROFS;
  } else if (size < 512) {
    e = -EINVAL;   /* the record needs an image before it */
  } else {
    if (size > s->logical)
      e = grow_locked(s, size, size);
    if (e == 0) {
      s->logical = size;
      s->dirty = true;
    }
  }
  vhd_mutex_unlock(&s->lock);
  return e;
}

static int rs_flush(void *opaque)
{
  struct reserve_io *s = opaque;
  vhd_mutex_lock(&s->lock);
  int e = s->active && s->dirty ? write_trailer(s, s->rec.phys) : 0;
  vhd_mutex_unlock(&s->lock);
  if (e == 0 && s->inner->ops->flush)
    e = s->inner->ops->flush(s->inner->opaque);
  return e;
}

static int rs_get_size(void *opaque, uint64_t *size)
{
  struct reserve_io *s = opaque;
  vhd_mutex_lock(&s->lock);
  bool active = s->active;
  *size = s->logical;
  vhd_mutex_unlock(&s->lock);
  return active ? 0 : s->inner->ops->get_size(s->inner->opaque, size);
}

static int rs_punch_hole(void *opaque, uint64_t off, uint64_t len)
{
  struct reserve_io *s = opaque;
  const struct vhd_io_ops *o = s->inner->ops;
  if (!o->punch_hole)
    return -EOPNOTSUPP;
  uint64_t limit = view_end(s);
  if (off >= limit)
    return 0;   /* past L already reads as zeros */
  if (len > limit - off)
    len = limit - off;
  return o->punch_hole(s->inner->opaque, off, len);
}

static int rs_find_data(void *opaque, uint64_t off, uint64_t *data, uint64_t *hole)
{
  struct reserve_io *s = opaque;
  const struct vhd_io_ops *o = s->inner->ops;
  if (!o->find_data)
    return -ENOTSUP;
  uint64_t limit = view_end(s);
  if (off >= limit) {
    *data = *hole = limit;
    return 0;
  }
  int e = o->find_data(s->inner->opaque, off, data, hole);
  if (e == 0) {
    if (*data > limit)
      *data = limit;
    if (*hole > limit)
      *hole = limit;
  }
  return e;
}

static int rs_allocated_size(void *opaque, uint64_t *bytes)
{
  struct reserve_io *s = opaque;
  const struct vhd_io_ops *o = s->inner->ops;
  return o->allocated_size ? o->allocated_size(s->inner->opaque, bytes) : -ENOTSUP;
}

static int rs_open_related(void *opaque, const char *path, unsigned flags, vhd_io **out)
{
  struct reserve_io *s = opaque;
  return io_open_related(s->inner, path, flags, out);
}

static int rs_real_path(vhd_io *io, char **out)
{
  struct reserve_io *s = io->opaque;
  return s->inner->real_path(s->inner, out);
}

static void rs_close(void *opaque)
{
  struct reserve_io *s = opaque;
  vhd_io_close(s->inner);
  vhd_mutex_destroy(&s->lock);
  vhd_free(s);
}

static const struct vhd_io_ops reserve_ops = {
  .pread = rs_pread,
  .pwrite = rs_pwrite,
  .flush = rs_flush,
  .get_size = rs_get_size,
  .set_size = rs_set_size,
  .punch_hole = rs_punch_hole,
  .find_data = rs_find_data,
  .allocated_size = rs_allocated_size,
  .open_related = rs_open_related,
  .close = rs_close,
};

int reserve_io_wrap(vhd_io *inner, const struct reserve_record *rec, vhd_io **out)
{
  *out = NULL;
  struct reserve_io *s = vhd_calloc(1, sizeof *s);
  if (!s)
    return vhd_error(ENOMEM, "%s: out of memory", inner->name);
  s->inner = inner;
  s->rec = *rec;
  s->logical = rec->logical;
  s->active = true;
  vhd_mutex_init(&s->lock);
  int e = vhd_io_new(&reserve_ops, s, inner->name, inner->flags, out);
  if (e < 0) {
    vhd_mutex_destroy(&s->lock);
    vhd_free(s);
    return e;
  }
  if (inner->real_path)
    (*out)->real_path = rs_real_path;
  return 0;
}

vhd_io *reserve_io_unwrap(vhd_io *wrapper)
{
  struct reserve_io *s = wrapper->opaque;
  vhd_io *inner = s->inner;
  vhd_mutex_destroy(&s->lock);
  vhd_free(s);
  vhd_free(wrapper->name);
  vhd_free(wrapper);
  return inner;
}

bool reserve_io_get(vhd_io *io, struct reserve_record *out)
{
  if (!io || io->ops != &reserve_ops)
    return false;
  struct reserve_io *s = io->opaque;
  vhd_mutex_lock(&s->lock);
  bool active = s->active;
  *out = s->rec;
  out->logical = s->logical;
  vhd_mutex_unlock(&s->lock);
  return active;
}

vhd_io *reserve_io_file(vhd_io *io)
{
  return io->ops == &reserve_ops ? ((struct reserve_io *)io->opaque)->inner : io;
}

/* Turns the plain file io into a wrapper around a copy of itself, in
 * place: the drivers hold the pointer, and from now on read through the
 * record the file just got. */
static int wrap_in_place(vhd_io *io, const struct reserve_record *rec)
{
  struct reserve_io *s = vhd_calloc(1, sizeof *s);
  vhd_io *file = vhd_malloc(sizeof *file);
  char *name = vhd_strdup(io->name);
  if (!s || !file || !name) {
    vhd_free(s);
    vhd_free(file);
    vhd_free(name);
    return vhd_error(ENOMEM, "%s: out of memory", io->name);
  }
  *file = *io;
  file->name = name;
  s->inner = file;
  s->rec = *rec;
  s->logical = rec->logical;
  s->active = true;
  vhd_mutex_init(&s->lock);
  io->ops = &reserve_ops;
  io->opaque = s;
  io->real_path = file->real_path ? rs_real_path : NULL;
  return 0;
}

/* The steps of a grow on the file, in the order that keeps it an image:
 * the footer copy at the new end (VHD: the file is an ordinary image of
 * the new length at once, the old record no longer at its end), zeros
 * from the old record (or L) to the new one, durable, then the record. */
static int grow_file(vhd_io *file, uint64_t zero_from, const struct reserve_record *r,
                     reserve_fill_fn fill, void *ctx)
{
  uint8_t rec[RESERVE_RECORD_SIZE], tail[RESERVE_VHD_TRAILER];
  int e = 0;
  if (r->tail && (e = io_pread(file, tail, r->tail, r->logical - r->tail)) == 0)
    e = io_pwrite(file, tail, r->tail, r->phys - r->tail);
  if (e == 0)
    e = fill(ctx, file, zero_from, reserve_record_offset(r));
  reserve_record_encode(rec, r);
  if (e == 0)
    e = io_pwrite(file, rec, sizeof rec, reserve_record_offset(r));
  if (e == 0)
    e = io_flush(file);
  return e;
}

/* What a grow of io to want free bytes would do, under the wrapper's lock
 * when there is one: *plan gets the new record (phys 0: the reserve is
 * big enough), *zero_from where the zeros would start (the old record, or
 * the file's end when it has none: a plain file, or a wrapper whose
 * reserve was given back). */
static int plan_grow(vhd_io *io, enum vhd_format format, uint64_t want, uint64_t *zero_from,
                     struct reserve_record *plan)
{
  memset(plan, 0, sizeof *plan);
  uint64_t logical, old_at;
  uint32_t tail = format == VHD_FORMAT_VHD ? RESERVE_VHD_TRAILER : 0;
  struct reserve_io *s = io->ops == &reserve_ops ? io->opaque : NULL;
  if (s && s->active) {
    logical = s->logical;
    old_at = reserve_record_offset(&s->rec);
    tail = s->rec.tail;
  } else {
    int e = io_get_size(s ? s->inner : io, &logical);
    if (e < 0)
      return e;
    if (logical < 512)
      return vhd_error(EINVAL, "%s: too short for a reserve (%llu bytes)", io->name,
                       (unsigned long long)logical);
    old_at = logical;
  }
  *zero_from = old_at;
  if (old_at - logical >= want)
    return 0;
  uint64_t at = logical + want;
  if (at < logical || at > UINT64_MAX - MIB - RESERVE_RECORD_SIZE - tail)
    return vhd_error(EFBIG, "%s: a reserve of %llu bytes does not fit in a file", io->name,
                     (unsigned long long)want);
  at = round_mib(at);   /* on a MiB boundary, as make_room puts it */
  *plan = (struct reserve_record){ .phys = at + RESERVE_RECORD_SIZE + tail,
                                   .logical = logical, .tail = tail };
  return 0;
}

int reserve_io_plan(vhd_io *io, enum vhd_format format, uint64_t want, uint64_t *from,
                    uint64_t *to)
{
  struct reserve_record r;
  vhd_mutex *lock = io->ops == &reserve_ops ? &((struct reserve_io *)io->opaque)->lock : NULL;
  if (lock)
    vhd_mutex_lock(lock);
  int e = plan_grow(io, format, want, from, &r);
  if (lock)
    vhd_mutex_unlock(lock);
  *to = e == 0 && r.phys ? reserve_record_offset(&r) : *from;
  return e;
}

int reserve_io_grow(vhd_io *io, enum vhd_format format, uint64_t want,
                    reserve_fill_fn fill, void *ctx, uint64_t *added)
{
  *added = 0;
  struct reserve_record r;
  uint64_t from;
  if (io->ops != &reserve_ops) {
    int e = plan_grow(io, format, want, &from, &r);
    if (e == 0 && r.phys && (e = grow_file(io, from, &r, fill, ctx)) == 0 &&
        (e = wrap_in_place(io, &r)) == 0)
      *added = reserve_record_offset(&r) - from;
    return e;
  }
  struct reserve_io *s = io->opaque;
  vhd_mutex_lock(&s->lock);
  int e = s->active && s->dirty ? write_trailer(s, s->rec.phys) : 0;
  if (e == 0)
    e = plan_grow(io, format, want, &from, &r);
  if (e == 0 && r.phys && (e = grow_file(s->inner, from, &r, fill, ctx)) == 0) {
    *added = reserve_record_offset(&r) - from;
    s->rec = r;
    s->logical = r.logical;
    s->active = true;   /* a reserve given back is in force again */
  }
  vhd_mutex_unlock(&s->lock);
  return e;
}

int reserve_io_release(vhd_io *io, uint64_t *freed)
{
  *freed = 0;
  struct reserve_record r;
  if (!reserve_io_get(io, &r))
    return 0;
  struct reserve_io *s = io->opaque;
  int e = io_flush(io);   /* the image at L is complete and durable first */
  if (e < 0)
    return e;
  vhd_mutex_lock(&s->lock);
  const struct vhd_io_ops *o = s->inner->ops;
  e = o->set_size ? o->set_size(s->inner->opaque, s->logical) : -EROFS;
  if (e == 0) {
    *freed = s->rec.phys - s->logical;
    s->active = false;
  }
  vhd_mutex_unlock(&s->lock);
  if (e == 0 && o->flush)
    e = o->flush(s->inner->opaque);
  if (e < 0)
    return vhd_error(-e, "%s: cannot cut the file at the end of the image (%llu bytes): %s",
                     io->name, (unsigned long long)r.logical, vhd_strerror(-e));
  return 0;
}

int image_get_reserve(vhd_image *img, struct vhd_reserve *out)
{
  struct reserve_record r;
  memset(out, 0, sizeof *out);
  if (!img || !reserve_io_get(img->io, &r))
    return -ENOENT;
  out->logical_size = r.logical;
  out->physical_size = r.phys;
  out->free_bytes = reserve_record_offset(&r) - r.logical;
  out->trailer_bytes = r.tail;
  return 0;
}
