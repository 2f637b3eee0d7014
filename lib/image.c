/* SPDX-License-Identifier: BSD-3-Clause */
/* The image handle: probing, bounds, alignment, locking, and the public
 * I/O entry points. Drivers see only sector-aligned requests inside the
 * virtual size, under the lock discipline described in driver.h. */
#include "driver.h"
#include "error.h"
#include "foreign.h"
#include "image.h"
#include "reserve.h"
#include "sized.h"
#include "trims.h"
#include "util/strfmt.h"

static const struct vhd_driver *probe_driver(vhd_io *io)
{
  uint64_t size;
  if (io_get_size(io, &size) < 0)
    return NULL;
  const struct vhd_driver *best = NULL;
  int best_score = 0;
  for (size_t i = 0; vhd_drivers[i]; i++) {
    int score = vhd_drivers[i]->probe(io, size);
    if (score < 0)
      return NULL;   /* the file could not be read; the message is set */
    if (score > best_score) {
      best = vhd_drivers[i];
      best_score = score;
    }
  }
  return best;
}

/* vhdboot's reserve (reserve.h): when the file ends in a record that
 * holds, *io becomes a view of the image at the record's logical size.
 * The record is tried first by a strict read-only open at that size, and
 * kept only if the image opens and nothing it references reaches the
 * record; otherwise the file is opened as it is, as if there were none. */
static int reserve_view(vhd_io **io, const struct vhd_driver *drv)
{
  uint64_t size;
  struct reserve_record rec;
  if (!drv->structures_end)
    return 0;
  int r = io_get_size(*io, &size);
  if (r == 0)
    r = reserve_find(*io, size, drv->format, &rec);
  if (r <= 0)
    return r;
  vhd_io *view;
  if ((r = reserve_io_wrap(*io, &rec, &view)) < 0)
    return r;
  struct vhd_image trial;
  memset(&trial, 0, sizeof trial);
  trial.drv = drv;
  trial.io = view;
  trial.path = view->name;
  trial.flags = VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT;
  vhd_rwlock_init(&trial.lock);
  bool holds = drv->open(&trial, NULL) == 0 &&
               drv->structures_end(&trial) <= reserve_record_offset(&rec);
  if (trial.priv)
    drv->close(&trial);
  vhd_rwlock_destroy(&trial.lock);
  vhd_error_clear();
  *io = holds ? view : reserve_io_unwrap(view);
  return 0;
}

int image_open_layer(vhd_io *io, const struct vhd_driver *drv, unsigned flags,
                     struct vhd_diag *d, struct vhd_image **out)
{
  *out = NULL;
  if ((flags & VHD_OPEN_RDWR) && !io_writable(io)) {
    int r = vhd_error(EROFS, "%s: cannot open read-write: the file is read-only", io->name);
    vhd_io_close(io);
    return r;
  }
  if (!drv) {
    drv = probe_driver(io);
    int r = drv == &vhd_driver_raw ? foreign_refuse(io)
          : drv == &vhd_driver_vhd ? foreign_refuse_split(io) : 0;
    if (r < 0) {
      vhd_io_close(io);
      return r;
    }
  }
  if (!drv) {
    int r = vhd_last_errno() ? -vhd_last_errno() : -EIO;
    vhd_io_close(io);
    return r;
  }
  int rv = reserve_view(&io, drv);
  if (rv < 0) {
    vhd_io_close(io);
    return rv;
  }
  struct vhd_image *img = vhd_calloc(1, sizeof *img);
  if (!img) {
    vhd_io_close(io);
    return vhd_error(ENOMEM, "%s: out of memory", io->name);
  }
  img->drv = drv;
  img->io = io;
  img->path = io->name;
  img->flags = flags;
  img->writable = (flags & VHD_OPEN_RDWR) != 0;
  vhd_rwlock_init(&img->lock);
  int r = drv->open(img, d);
  if (r == 0 && (img->sector_size == 0 || img->virtual_size % img->sector_size))
    r = vhd_error(EINVAL, "%s: virtual size %llu is not a multiple of the sector size %u",
                  img->path, (unsigned long long)img->virtual_size, img->sector_size);
  if (r < 0) {
    if (img->priv)
      drv->close(img);
    vhd_rwlock_destroy(&img->lock);
    vhd_free(img);
    vhd_io_close(io);
    return r;
  }
  *out = img;
  return 0;
}

void image_free(struct vhd_image *img)
{
  while (img) {
    struct vhd_image *parent = img->parent;
    img->drv->close(img);
    trims_destroy(img->trims);
    vhd_rwlock_destroy(&img->lock);
    vhd_io_close(img->io);
    parent_roots_free(img->roots);
    vhd_free(img->parent_path);
    vhd_free(img);
    img = parent;
  }
}

/* Flags a caller may pass (include/vhd.h). */
#define OPEN_PUBLIC_FLAGS (VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT | VHD_OPEN_RAW | \
                           VHD_OPEN_RAW_PARENT | VHD_OPEN_FORCE_SHARE | \
                           VHD_OPEN_PARENTS_BESIDE | VHD_OPEN_KEEP_LINK_ID | \
                           VHD_OPEN_RENEW_LINK_ID)

int image_open_chain(vhd_io *io, const struct vhd_open_params *p,
                     const struct parent_roots *roots, vhd_image **out)
{
  *out = NULL;
  unsigned flags = p->flags;
  enum vhd_format format = (flags & VHD_OPEN_RAW) ? VHD_FORMAT_RAW : p->format;
  int r = 0;
  if (flags & ~OPEN_PUBLIC_FLAGS)
    r = vhd_error(EINVAL, "%s: unknown open flags 0x%x", io->name, flags & ~OPEN_PUBLIC_FLAGS);
  else if ((flags & VHD_OPEN_FORCE_SHARE) && (flags & VHD_OPEN_RDWR))
    r = vhd_error(EINVAL, "%s: force-share is for read-only opens: a writer must hold "
                  "the image alone", io->name);
  const struct vhd_driver *drv = NULL;
  if (r == 0 && format != VHD_FORMAT_AUTO) {
    drv = driver_for_format(format);
    if (!drv)
      r = vhd_error(ENOTSUP, "%s: format %d is not supported", io->name, (int)format);
  }
  if (r < 0) {
    vhd_io_close(io);
    return r;
  }
  struct vhd_image *img;
  r = image_open_layer(io, drv, flags, NULL, &img);
  if (r < 0)
    return r;
  if (roots) {
    r = parent_roots_copy(roots, &img->roots);
    if (r < 0) {
      r = vhd_error(ENOMEM, "%s: out of memory", img->path);
      image_free(img);
      return r;
    }
  }
  r = chain_open_parents(img, NULL, 0);
  if (r < 0) {
    image_free(img);
    return r;
  }
  *out = img;
  return 0;
}

int vhd_open_io_with(vhd_io *io, const struct vhd_open_params *in, vhd_image **out)
{
  vhd_error_clear();
  *out = NULL;
  struct vhd_open_params params;
  const struct vhd_open_params *p = &params;
  struct parent_roots *roots = NULL;
  int r = open_params_take(in, &params);
  if (r == 0)
    r = parent_roots_new(p, io->name, &roots);
  if (r < 0) {
    vhd_io_close(io);
    return r;
  }
  r = image_open_chain(io, p, roots, out);
  parent_roots_free(roots);
  return r;
}

int vhd_open_io(vhd_io *io, enum vhd_format format, unsigned flags, vhd_image **out)
{
  struct vhd_open_params p;
  vhd_open_params_init(&p);
  p.flags = flags;
  p.format = format;
  return vhd_open_io_with(io, &p, out);
}

int image_lock(struct vhd_image *img, bool exclusive)
{
  struct vhd_error_slot *t = vhd_error_slot();
  for (unsigned i = 0; i < t->held_count; i++)
    if (t->held[i] == img)
      return vhd_error(EDEADLK, "%s: called back into the image from one of its own "
                       "callbacks (a progress, report or extent callback must not use "
                       "the image it is called for)", img->path);
  int r = exclusive ? vhd_rwlock_wrlock(&img->lock) : vhd_rwlock_rdlock(&img->lock);
  if (r < 0)
    return vhd_error(-r, "%s: cannot take the image's lock: %s", img->path, vhd_strerror(-r));
  /* Deeper than any chain (VHD_MAX_CHAIN_DEPTH): past it, re-entry goes unseen. */
  if (t->held_count < VHD_HELD_LOCKS_MAX)
    t->held[t->held_count++] = img;
  return 0;
}

int image_unlock(struct vhd_image *img, int r)
{
  struct vhd_error_slot *t = vhd_error_slot();
  for (unsigned i = t->held_count; i-- > 0;)
    if (t->held[i] == img) {
      t->held[i] = t->held[--t->held_count];
      break;
    }
  int u = vhd_rwlock_unlock(&img->lock);
  if (u < 0 && r >= 0)
    return vhd_error(-u, "%s: cannot release the image's lock: %s", img->path, vhd_strerror(-u));
  return r;
}

int vhd_close(vhd_image *img)
{
  if (!img)
    return 0;
  int r = 0;
  if (img->writable) {
    /* From one of img's own callbacks: the image stays open. */
    if ((r = image_lock(img, true)) < 0)
      return r;
    r = image_unlock(img, img->drv->flush(img));
  }
  image_free(img);
  return r;
}

static int check_range(vhd_image *img, uint64_t offset, uint64_t count, const char *what)
{
  if (offset > img->virtual_size || count > img->virtual_size - offset)
    return vhd_error(EINVAL, "%s: %s of %llu bytes at offset %llu is past the end of the "
                     "disk (%llu bytes)", img->path, what, (unsigned long long)count,
                     (unsigned long long)offset, (unsigned long long)img->virtual_size);
  return 0;
}

static int check_writable(vhd_image *img)
{
  if (!img->writable)
    return vhd_error(EROFS, "%s: the image is open read-only", img->path);
  return 0;
}

/* Reads [off, off+len) that lie inside one sector into buf, or a whole
 * aligned run, with the lock already held. */
static int read_locked(vhd_image *img, void *buf, size_t count, uint64_t offset)
{
  uint32_t ss = img->sector_size;
  uint8_t *out = buf;
  if (offset % ss == 0 && count % ss == 0)
    return img->drv->read(img, buf, count, offset);

  uint8_t sector[SECTOR_SIZE_4K];   /* the largest sector */
  uint64_t head = offset % ss;
  int r;
  if (head) {
    uint64_t start = offset - head;
    size_t n = count < ss - head ? count : (size_t)(ss - head);
    r = img->drv->read(img, sector, ss, start);
    if (r < 0)
      return r;
    memcpy(out, sector + head, n);
    out += n;
    offset += n;
    count -= n;
  }
  size_t middle = count - count % ss;
  if (middle) {
    r = img->drv->read(img, out, middle, offset);
    if (r < 0)
      return r;
    out += middle;
    offset += middle;
    count -= middle;
  }
  if (count) {
    r = img->drv->read(img, sector, ss, offset);
    if (r < 0)
      return r;
    memcpy(out, sector, count);
  }
  return 0;
}

int vhd_pread(vhd_image *img, void *buf, size_t count, uint64_t offset)
{
  int r = check_range(img, offset, count, "read");
  if (r < 0 || count == 0)
    return r;
  if ((r = image_lock(img, false)) < 0)
    return r;
  return image_unlock(img, read_locked(img, buf, count, offset));
}

int image_read_parent(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
  struct vhd_image *parent = img->parent;
  if (!parent) {
    if (img->type == VHD_TYPE_DIFFERENCING)
      return vhd_error(ENXIO, "%s: the parent image is not open", img->path);
    memset(buf, 0, len);
    return 0;
  }
  size_t inside = 0;
  if (off < parent->virtual_size)
    inside = parent->virtual_size - off < len ? (size_t)(parent->virtual_size - off) : len;
  /* A parent smaller than its child reads as zeros past its end. */
  memset((uint8_t *)buf + inside, 0, len - inside);
  if (!inside)
    return 0;
  int r = image_lock(parent, false);
  return r < 0 ? r : image_unlock(parent, read_locked(parent, buf, inside, off));
}

/* Every write reaches the driver here, so that the parts it overwrites
 * stop counting as trimmed (trims.h). */
static int driver_write(vhd_image *img, const void *buf, size_t count, uint64_t offset,
                        bool exclusive)
{
  int r = img->drv->write(img, buf, count, offset, exclusive);
  if (r == 0 && img->trims)
    trims_written(img->trims, offset, count);
  return r;
}

/* Sub-sector edges are read-modify-written under the exclusive lock so two
 * writers of neighbouring bytes in one sector cannot lose each other's. */
static int write_unaligned_locked(vhd_image *img, const uint8_t *buf, size_t count,
                                  uint64_t offset)
{
  uint32_t ss = img->sector_size;
  uint8_t sector[SECTOR_SIZE_4K];   /* the largest sector */
  int r;
  uint64_t head = offset % ss;
  if (head) {
    uint64_t start = offset - head;
    size_t n = count < ss - head ? count : (size_t)(ss - head);
    r = img->drv->read(img, sector, ss, start);
    if (r == 0) {
      memcpy(sector + head, buf, n);
      r = driver_write(img, sector, ss, start, true);
    }
    if (r < 0)
      return r;
    buf += n;
    offset += n;
    count -= n;
  }
  size_t middle = count - count % ss;
  if (middle) {
    r = driver_write(img, buf, middle, offset, true);
    if (r < 0)
      return r;
    buf += middle;
    offset += middle;
    count -= middle;
  }
  if (count) {
    r = img->drv->read(img, sector, ss, offset);
    if (r == 0) {
      memcpy(sector, buf, count);
      r = driver_write(img, sector, ss, offset, true);
    }
    if (r < 0)
      return r;
  }
  return 0;
}

int vhd_pwrite(vhd_image *img, const void *buf, size_t count, uint64_t offset)
{
  int r = check_writable(img);
  if (r == 0)
    r = check_range(img, offset, count, "write");
  if (r < 0 || count == 0)
    return r;
  uint32_t ss = img->sector_size;
  if (offset % ss == 0 && count % ss == 0) {
    if ((r = image_lock(img, false)) < 0)
      return r;
    r = image_unlock(img, driver_write(img, buf, count, offset, false));
    if (r != WRITE_NEEDS_EXCLUSIVE)
      return r;
    if ((r = image_lock(img, true)) < 0)
      return r;
    return image_unlock(img, driver_write(img, buf, count, offset, true));
  }
  if ((r = image_lock(img, true)) < 0)
    return r;
  return image_unlock(img, write_unaligned_locked(img, buf, count, offset));
}

int vhd_flush(vhd_image *img)
{
  if (!img->writable)
    return 0;
  int r = image_lock(img, true);
  return r < 0 ? r : image_unlock(img, img->drv->flush(img));
}

/* Zeros the driver cannot make cheaply are written through its write,
 * from one buffer shared by the whole request (of `request` bytes): up to
 * ZERO_WRITE_MAX bytes, so that a run of a block or more reaches the
 * driver whole (a differencing VHD then allocates the block without
 * writing its data, as any zero write into a hole does). Exclusive lock
 * held. */
#define ZERO_WRITE_MAX (8u << 20)
static int write_zeros(vhd_image *img, uint64_t off, uint64_t len, uint64_t request,
                       uint8_t **zeros, size_t *size)
{
  if (!*zeros) {
    *size = (size_t)(request < ZERO_WRITE_MAX ? request : ZERO_WRITE_MAX);
    *zeros = vhd_calloc(1, *size);
    if (!*zeros)
      return vhd_error(ENOMEM, "%s: out of memory writing zeros", img->path);
  }
  while (len) {
    size_t n = (size_t)(len < *size ? len : *size);
    int r = driver_write(img, *zeros, n, off, true);
    if (r < 0)
      return r;
    off += n;
    len -= n;
  }
  return 0;
}

/* Sector-aligned [off, off+len): what the driver can do cheaply it does,
 * the rest is written. dry (VHD_ZERO_FAST's first pass): nothing changes,
 * -ENOTSUP when any part would need writes. Exclusive lock held. */
static int zero_aligned(vhd_image *img, uint64_t off, uint64_t len, unsigned flags, bool dry)
{
  uint8_t *zeros = NULL;
  size_t size = 0;
  int r = 0;
  while (r == 0 && len) {
    uint64_t run = 0;
    r = img->drv->zero(img, off, len, flags, dry, &run);
    if (r < 0)
      break;
    if (run == 0 || run > len) {
      r = vhd_error(EIO, "%s: driver zeroed an impossible run", img->path);
      break;
    }
    if (r == 0 && (flags & VHD_ZERO_FAST))
      r = vhd_error(ENOTSUP, "%s: zeroing %llu bytes at offset %llu needs data writes",
                    img->path, (unsigned long long)run, (unsigned long long)off);
    else if (r == 0)
      r = write_zeros(img, off, run, len, &zeros, &size);
    else
      r = 0;
    off += run;
    len -= run;
  }
  vhd_free(zeros);
  return r;
}

int image_zero_locked(vhd_image *img, uint64_t off, uint64_t len, unsigned flags)
{
  int r = 0;
  if (flags & VHD_ZERO_FAST)
    r = zero_aligned(img, off, len, flags, true);
  return r < 0 ? r : zero_aligned(img, off, len, flags, false);
}

/* The one zeroing policy for every format: a fast zero is refused before
 * anything changes unless every part of the range can be made to read as
 * zeros without writing data (a dry pass first); otherwise the driver does
 * the cheap parts and the rest is written from one zero buffer. */
int vhd_zero(vhd_image *img, uint64_t offset, uint64_t length, unsigned flags)
{
  int r = check_writable(img);
  if (r == 0)
    r = check_range(img, offset, length, "zero");
  if (r < 0 || length == 0)
    return r;
  uint32_t ss = img->sector_size;
  uint64_t start = (offset + ss - 1) / ss * ss;
  uint64_t end = (offset + length) / ss * ss;
  /* Two partial sectors of up to SECTOR_SIZE_4K each can lie inside one
   * request without a whole sector between them. */
  static const uint8_t zeros[2 * SECTOR_SIZE_4K];
  /* Sub-sector edges can only be zeroed by read-modify-write. */
  if ((flags & VHD_ZERO_FAST) && (start >= end || offset < start || end < offset + length))
    return vhd_error(ENOTSUP, "%s: no fast way to zero a partial sector", img->path);
  if ((r = image_lock(img, true)) < 0)
    return r;
  if (start >= end) {
    /* Inside one sector (or two partial ones): plain zero writes. */
    r = write_unaligned_locked(img, zeros, (size_t)length, offset);
  } else {
    if (offset < start)
      r = write_unaligned_locked(img, zeros, (size_t)(start - offset), offset);
    if (r == 0)
      r = image_zero_locked(img, start, end - start, flags);
    if (r == 0 && end < offset + length)
      r = write_unaligned_locked(img, zeros, (size_t)(offset + length - end), end);
  }
  return image_unlock(img, r);
}

/* Zeroing by punching the file over the range, for layers whose disk is
 * their file (raw, fixed VHD): the driver's zero callback. */
int image_zero_by_punch(vhd_image *img, uint64_t off, uint64_t len, unsigned flags, bool dry,
                        uint64_t *run)
{
  *run = len;
  if (!(flags & VHD_ZERO_MAY_TRIM) || !io_may_punch(img->io))
    return 0;
  if (dry)
    return 1;
  int r = io_punch_hole(img->io, off, len);
  return r == -ENOTSUP ? 0 : r < 0 ? r : 1;
}

int vhd_discard(vhd_image *img, uint64_t offset, uint64_t length)
{
  int r = check_writable(img);
  if (r == 0)
    r = check_range(img, offset, length, "discard");
  if (r < 0 || length == 0)
    return r;
  /* A trim promises nothing about what the range reads afterwards, so the
   * partial sectors at its edges are left alone rather than rewritten. */
  uint32_t ss = img->sector_size;
  uint64_t start = (offset + ss - 1) / ss * ss;
  uint64_t end = (offset + length) / ss * ss;
  if (start >= end || !img->drv->discard)
    return 0;
  if ((r = image_lock(img, true)) < 0)
    return r;
  return image_unlock(img, img->drv->discard(img, start, end - start));
}

/* Narrow a range cur holds (state DATA, or ZERO in map mode) to one
 * place in its file, and look for a host hole there: bytes a hole backs
 * read as zeros. One lseek per range; a driver without host offsets, or a
 * range with none, is left as it was. Shared lock on cur held. */
static int probe_host(struct vhd_image *cur, uint64_t off, uint64_t *len,
                      struct image_status *st)
{
  uint64_t host, n = *len;
  int r = cur->drv->host_extent ? cur->drv->host_extent(cur, off, n, &host, &n) : -ENOTSUP;
  if (r == -ENOTSUP)
    return 0;
  if (r < 0)
    return r;
  if (n == 0 || n > *len)
    n = *len;
  uint64_t data, hole;
  if (io_find_data(cur->io, host, &data, &hole) == 0) {
    if (data > host || hole <= host) {
      /* A hole, or past the end of the file: both read as zeros. */
      st->status |= VHD_STATUS_ZERO;
      if (data > host && data - host < n)
        n = data - host;
    } else if (hole - host < n) {
      n = hole - host;
    }
  } else {
    vhd_error_clear();   /* only a hint was lost */
  }
  st->status |= VHD_STATUS_DATA;
  st->host = host;
  *len = n;
  return 0;
}

int image_block_status(struct vhd_image *img, uint64_t offset, uint64_t length,
                       unsigned flags, struct image_status *st)
{
  int r = check_range(img, offset, length, "block status");
  if (r < 0)
    return r;
  if (length == 0)
    return vhd_error(EINVAL, "%s: block status of an empty range", img->path);
  bool map = (flags & IMAGE_STATUS_MAP) != 0;
  struct vhd_image *cur = img;
  unsigned depth = 0;
  st->host = UINT64_MAX;
  for (;;) {
    enum layer_state state;
    uint64_t n = length;
    if ((r = image_lock(cur, false)) < 0)
      return r;
    r = cur->drv->block_status(cur, offset, length, &state, &n);
    if (r == 0 && n > 0 && n <= length)
      length = n;
    if (r == 0 && (state == LAYER_DATA || state == LAYER_ZERO)) {
      st->status = state == LAYER_DATA ? VHD_STATUS_DATA : VHD_STATUS_ZERO;
      if (state == LAYER_DATA || map)
        r = probe_host(cur, offset, &length, st);
    }
    if ((r = image_unlock(cur, r)) < 0)
      return r;
    st->run = length;
    st->depth = depth;
    if (state == LAYER_DATA || state == LAYER_ZERO) {
      st->layer = (int)depth;
      return 0;
    }
    if (!cur->parent || offset >= cur->parent->virtual_size) {
      /* Nothing below: zeros, unless the parent exists but is not open.
       * The map counts a base image's unallocated ranges as its own (it
       * defines them as zeros), as qemu-img map does for VHD. */
      bool diff = cur->type == VHD_TYPE_DIFFERENCING;
      bool unknown = diff && !cur->parent;
      st->status = unknown ? 0 : VHD_STATUS_ZERO;
      st->layer = map && !diff ? (int)depth : -1;
      return 0;
    }
    cur = cur->parent;
    depth++;
    if (length > cur->virtual_size - offset)
      length = cur->virtual_size - offset;
  }
}

/* Runs that end inside a logical sector (a parent whose size is not a
 * multiple of it: zeros past its end) would make clients such as nbdcopy
 * send unaligned requests. A run that is not data ends at the last
 * boundary it reaches; a sector that is partly data is data (with ZERO
 * only if every part reads as zeros), so a run ending inside one is
 * extended over it. Every run then ends on a boundary or at the end of
 * the range asked for. */
static int align_run(struct vhd_image *img, uint64_t offset, uint64_t length,
                     struct image_status *st)
{
  uint64_t ss = img->sector_size, end = offset + st->run, limit = offset + length;
  if (ss <= 1 || end % ss == 0 || end >= limit)
    return 0;
  uint64_t down = end - end % ss;
  if (down > offset && !(st->status & VHD_STATUS_DATA)) {
    st->run = down - offset;
    return 0;
  }
  uint64_t up = down + ss < limit ? down + ss : limit;
  while (end < up) {
    struct image_status next;
    int r = image_block_status(img, end, up - end, 0, &next);
    if (r < 0)
      return r;
    if ((next.status & VHD_STATUS_DATA) && !(st->status & VHD_STATUS_DATA))
      st->layer = next.layer;
    unsigned zero = st->status & next.status & VHD_STATUS_ZERO;
    st->status = ((st->status | next.status) & ~VHD_STATUS_ZERO) | zero;
    end += next.run ? next.run : up - end;
  }
  st->run = up - offset;
  return 0;
}

int vhd_block_status(vhd_image *img, uint64_t offset, uint64_t length,
                     unsigned *status, uint64_t *run, int *layer)
{
  struct image_status st;
  int r = image_block_status(img, offset, length, 0, &st);
  if (r == 0)
    r = align_run(img, offset, length, &st);
  if (r < 0)
    return r;
  *status = st.status;
  *run = st.run;
  if (layer)
    *layer = st.layer;
  return 0;
}

int image_get_info(vhd_image *img, struct vhd_info *info)
{
  memset(info, 0, sizeof *info);
  info->format = img->drv->format;
  info->type = img->type;
  info->virtual_size = img->virtual_size;
  info->logical_sector_size = img->sector_size;
  info->path = img->path;
  info->parent_path = img->parent_path;
  info->chain_depth = img->depth;
  info->warnings = img->warnings;
  int r = io_get_size(img->io, &info->file_size);
  if (r < 0)
    return r;
  struct reserve_record rec;
  if (reserve_io_get(img->io, &rec))
    info->file_size = rec.phys;   /* the file's length, reserve included */
  if ((r = image_lock(img, false)) < 0)
    return r;
  img->drv->info(img, info);
  return image_unlock(img, 0);
}

vhd_image *vhd_get_parent(vhd_image *img) { return img ? img->parent : NULL; }
