/* SPDX-License-Identifier: BSD-3-Clause */
/* The NBD backend: the container file is an export of an NBD server,
 * reached through libnbd by URI (nbd://host/export, nbd+unix:///?socket=),
 * behind the read cache of io/cache.c since every request is a round trip.
 *
 * An export has a fixed size: writes past its end fail (-ENOSPC), so a
 * dynamic image written over NBD can fill only the room its container
 * already has. A differencing image's parent is no path on this host: it
 * is taken from the parent URIs the caller gives (parent, grandparent, ...)
 * and checked by identity like any parent; without one it is refused. */
#include "error.h"
#include "io.h"
#include "util/arith.h"
#include "util/strfmt.h"

#ifdef VHD_HAVE_LIBNBD
#include <libnbd.h>
#include <stdlib.h>
#include <string.h>

/* NBD servers refuse larger requests (nbdkit's limit is 64 MiB). */
#define NBD_MAX_REQUEST ((size_t)32 << 20)
/* One a layer: no chain is deeper (image.h). */
#define NBD_MAX_PARENT_URIS 32

struct nbd_file {
  struct nbd_handle *h;
  int64_t size;
  bool can_flush, can_zero, can_status;
  bool replace;         /* opened to be written over: the first set_size zeroes */
  char *uri;
  char **parent_uris;   /* NULL-terminated, owned */
};

static int nbd_failure(void)
{
  int e = nbd_get_errno();
  return -(e ? e : EIO);
}

/* Reads or writes [offset, offset+count), in pieces servers take. */
static int transfer(struct nbd_file *f, bool write, void *buf, size_t count, uint64_t offset)
{
  uint8_t *p = buf;
  for (size_t done = 0; done < count; ) {
    size_t n = (size_t)min_u64(count - done, NBD_MAX_REQUEST);
    int r = write ? nbd_pwrite(f->h, p + done, n, offset + done, 0)
                  : nbd_pread(f->h, p + done, n, offset + done, 0);
    if (r < 0)
      return nbd_failure();
    done += n;
  }
  return 0;
}

static int nbdio_pread(void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct nbd_file *f = opaque;
  uint64_t size = (uint64_t)f->size;
  size_t have = offset >= size ? 0 : (size_t)min_u64(count, size - offset);
  memset((uint8_t *)buf + have, 0, count - have);
  return transfer(f, false, buf, have, offset);
}

static int nbdio_pwrite(void *opaque, const void *buf, size_t count, uint64_t offset)
{
  struct nbd_file *f = opaque;
  if (offset > (uint64_t)f->size || count > (uint64_t)f->size - offset)
    return -ENOSPC;   /* an export cannot grow */
  return transfer(f, true, (void *)buf, count, offset);
}

static int nbdio_flush(void *opaque)
{
  struct nbd_file *f = opaque;
  return !f->can_flush || nbd_flush(f->h, 0) == 0 ? 0 : nbd_failure();
}

static int nbdio_get_size(void *opaque, uint64_t *size)
{
  *size = (uint64_t)((struct nbd_file *)opaque)->size;
  return 0;
}

/* An export's size is fixed, like a block device's: an image written
 * over it (replace) may be smaller and has its range zeroed first;
 * otherwise only the length it has. */
static int zero_range(struct nbd_file *f, uint64_t offset, uint64_t length)
{
  for (uint64_t done = 0; done < length; ) {
    uint64_t n = min_u64(length - done, NBD_MAX_REQUEST);
    if (nbd_zero(f->h, n, offset + done, 0) < 0)   /* no NO_HOLE: may trim */
      return nbd_failure();
    done += n;
  }
  return 0;
}

static int nbdio_set_size(void *opaque, uint64_t size)
{
  struct nbd_file *f = opaque;
  uint64_t have = (uint64_t)f->size;
  if (size > have)
    return vhd_error(ENOSPC, "%s: the image needs %llu bytes, but the NBD export holds "
                     "only %llu", f->uri, (unsigned long long)size, (unsigned long long)have);
  if (!f->replace && size != have)
    return vhd_error(EINVAL, "%s: is an NBD export of %llu bytes, whose size does not "
                     "change (to %llu bytes)", f->uri, (unsigned long long)have,
                     (unsigned long long)size);
  if (!f->replace)
    return 0;
  f->replace = false;
  int r = f->can_zero ? zero_range(f, 0, size) : -ENOTSUP;
  if (r < 0)
    return vhd_error(-r, "%s: cannot zero the export's first %llu bytes: %s", f->uri,
                     (unsigned long long)size, strerror(-r));
  return 0;
}

static int nbdio_punch_hole(void *opaque, uint64_t offset, uint64_t length)
{
  struct nbd_file *f = opaque;
  return f->can_zero ? zero_range(f, offset, length) : -ENOTSUP;
}

/* The export's holes (base:allocation), so that ranges an image stores
 * but the server's file never wrote report as zeros, as they do on a
 * local file (SEEK_DATA). The server may answer for less than asked:
 * then the next request goes on from where it stopped. */
#define STATUS_SPAN ((uint64_t)1 << 30)

struct hole_search {
  uint64_t pos;        /* where the next entry starts */
  bool in_data;
  bool found_hole;
  uint64_t data, hole;
};

static int on_extents(void *user, const char *context, uint64_t offset, uint32_t *entries,
                      size_t n, int *error)
{
  struct hole_search *hs = user;
  (void)error;
  if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  hs->pos = offset;
  for (size_t i = 0; i + 1 < n && !hs->found_hole; i += 2) {
    bool is_hole = (entries[i + 1] & LIBNBD_STATE_HOLE) != 0;
    if (!hs->in_data && !is_hole) {
      hs->data = hs->pos;
      hs->in_data = true;
    } else if (hs->in_data && is_hole) {
      hs->hole = hs->pos;
      hs->found_hole = true;
    }
    hs->pos += entries[i];
  }
  return 0;
}

static int nbdio_find_data(void *opaque, uint64_t offset, uint64_t *data, uint64_t *hole)
{
  struct nbd_file *f = opaque;
  uint64_t size = (uint64_t)f->size;
  if (!f->can_status)
    return -ENOTSUP;
  struct hole_search hs = { .data = size, .hole = size };
  uint64_t at = offset;
  while (at < size && !hs.found_hole) {
    hs.pos = at;
    nbd_extent_callback cb = { .callback = on_extents, .user_data = &hs };
    if (nbd_block_status(f->h, min_u64(size - at, STATUS_SPAN), at, cb, 0) < 0)
      return nbd_failure();
    if (hs.pos <= at)
      return -EIO;   /* no progress: a server that answers nothing */
    at = hs.pos;
  }
  *data = hs.in_data ? max_u64(hs.data, offset) : size;
  *hole = hs.found_hole ? hs.hole : size;
  return 0;
}

static int nbdio_open_related(void *opaque, const char *path, unsigned flags, vhd_io **out)
{
  struct nbd_file *f = opaque;
  (void)flags;
  if (!f->parent_uris || !f->parent_uris[0])
    return io_refuse_remote_parent(path);
  return vhd_io_open_nbd(f->parent_uris[0], (const char *const *)f->parent_uris + 1,
                         VHD_IO_RDONLY, out);
}

static void free_uris(char **uris)
{
  for (size_t i = 0; uris && uris[i]; i++)
    vhd_free(uris[i]);
  vhd_free(uris);
}

static void nbdio_close(void *opaque)
{
  struct nbd_file *f = opaque;
  if (f->h) {
    nbd_shutdown(f->h, 0);
    nbd_close(f->h);
  }
  free_uris(f->parent_uris);
  vhd_free(f->uri);
  vhd_free(f);
}

static const struct vhd_io_ops nbd_ops = {
  .pread = nbdio_pread,
  .pwrite = nbdio_pwrite,
  .flush = nbdio_flush,
  .get_size = nbdio_get_size,
  .set_size = nbdio_set_size,
  .punch_hole = nbdio_punch_hole,
  .find_data = nbdio_find_data,
  .open_related = nbdio_open_related,
  .close = nbdio_close,
};

/* A copy of a NULL-terminated list, or NULL (and no list) on failure. */
static int copy_uris(const char *const *uris, char ***out)
{
  size_t n = 0;
  while (uris && uris[n])
    n++;
  *out = NULL;
  if (n > NBD_MAX_PARENT_URIS)
    return -E2BIG;
  char **copy = vhd_calloc(n + 1, sizeof *copy);
  if (!copy)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    if (!(copy[i] = vhd_strdup(uris[i]))) {
      free_uris(copy);
      return -ENOMEM;
    }
  *out = copy;
  return 0;
}

static int connect_export(struct nbd_file *f, const char *uri, unsigned flags)
{
  f->h = nbd_create();
  if (!f->h)
    return vhd_error(ENOMEM, "%s: %s", uri, nbd_get_error());
  /* A URI may come from whoever uploaded an image's description: it must
   * not make libnbd read a local file (?tls-psk-file=/etc/...). */
  nbd_set_uri_allow_local_file(f->h, false);
  nbd_add_meta_context(f->h, LIBNBD_CONTEXT_BASE_ALLOCATION);
  if (nbd_connect_uri(f->h, uri) < 0)
    return vhd_error(-nbd_failure(), "%s: cannot connect: %s", uri, nbd_get_error());
  f->size = nbd_get_size(f->h);
  if (f->size < 0)
    return vhd_error(-nbd_failure(), "%s: cannot get the export size: %s", uri,
                     nbd_get_error());
  if ((flags & VHD_IO_RDWR) && nbd_is_read_only(f->h) == 1)
    return vhd_error(EROFS, "%s: the NBD server serves this export read-only", uri);
  f->can_flush = nbd_can_flush(f->h) == 1;
  f->can_zero = nbd_can_zero(f->h) == 1;
  f->can_status = nbd_can_meta_context(f->h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  return 0;
}

int vhd_io_open_nbd(const char *uri, const char *const *parent_uris, unsigned flags,
                    vhd_io **out)
{
  *out = NULL;
  if (!uri)
    return vhd_error(EINVAL, "vhd_io_open_nbd: no URI");
  if ((flags & VHD_IO_CREATE) && !(flags & VHD_IO_TRUNC))
    return vhd_error(EEXIST, "%s: an NBD export always exists: it is written over only "
                     "when replacing is asked for (vhdtool convert --force)", uri);
  struct nbd_file *f = vhd_calloc(1, sizeof *f);
  if (!f || !(f->uri = vhd_strdup(uri))) {
    vhd_free(f);
    return vhd_error(ENOMEM, "%s: out of memory", uri);
  }
  f->replace = (flags & VHD_IO_CREATE) != 0;
  if (f->replace)
    flags = VHD_IO_RDWR;
  int r = copy_uris(parent_uris, &f->parent_uris);
  if (r < 0) {
    nbdio_close(f);
    return vhd_error(-r, "%s: %s", uri, r == -E2BIG ? "more parent URIs than a chain may "
                     "be deep" : "out of memory");
  }
  r = connect_export(f, uri, flags);
  vhd_io *raw = NULL;
  if (r == 0)
    r = vhd_io_new(&nbd_ops, f, uri, flags, &raw);
  if (r < 0) {
    nbdio_close(f);
    return r;
  }
  raw->fixed_size = true;
  raw->nbd_export = true;
  struct io_cache_params cp = { IO_CACHE_DEFAULT_CAPACITY, IO_CACHE_DEFAULT_BLOCK };
  r = io_cache_wrap(raw, &cp, out);
  if (r < 0)
    vhd_io_close(raw);
  return r;
}

#else

int vhd_io_open_nbd(const char *uri, const char *const *parent_uris, unsigned flags,
                    vhd_io **out)
{
  (void)parent_uris;
  (void)flags;
  *out = NULL;
  return vhd_error(ENOTSUP, "%s: NBD URIs are not supported: this libvhd was built "
                   "without libnbd (install libnbd-dev and rebuild)", uri ? uri : "(null)");
}

#endif

int vhd_is_nbd_uri(const char *s)
{
  static const char *const schemes[] = {
    "nbd://", "nbds://", "nbd+unix://", "nbds+unix://", "nbd+vsock://", "nbds+vsock://",
  };
  for (size_t i = 0; s && i < sizeof schemes / sizeof schemes[0]; i++)
    if (strncmp(s, schemes[i], strlen(schemes[i])) == 0)
      return 1;
  return 0;
}

int io_refuse_remote_parent(const char *locator)
{
  return vhd_error(EREMOTE, "parent locator %s names no file on this host: give the "
                   "parent's NBD URI (vhdtool --parent-uri URI, nbdkit-vhd-filter parent=URI)",
                   locator);
}
