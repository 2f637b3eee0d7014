/* SPDX-License-Identifier: BSD-3-Clause */
/* nbdkit-vhd-filter: the VHD/VHDX layer over whatever plugin holds the
 * container file (nbdkit file, nbd, curl, S3, ssh):
 *
 *   nbdkit curl https://host/disk.vhdx --filter=vhd
 *
 * Serving is serve.c's, shared with the plugin; this file gives the
 * library a vhd_io whose bytes are the plugin's (next_io below), behind
 * the library's read cache (lib/io/cache.c): remote plugins answer each
 * request after a round trip, and the drivers read metadata a sector at a
 * time.
 *
 * One image serves every connection, as in the plugin, so it cannot live
 * on a connection's next context: after_fork opens a shared context of
 * its own, and connections never open theirs (every callback is answered
 * here). Calls into that context are serialised: the plugin below may
 * allow only one request at a time (curl in nbdkit 1.32), and nbdkit
 * enforces that per connection, not for a context a filter shares.
 *
 * A differencing image's parent is no file here: it comes from parent=
 * (an NBD URI, opened with libnbd), else the image is refused. */
#include <nbdkit-filter.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "serve.h"
#include "vhd.h"

#define EXPORT_NAME "export below nbdkit-vhd-filter"

static nbdkit_next *shared_next;
static pthread_mutex_t next_lock = PTHREAD_MUTEX_INITIALIZER;
static bool next_writable;
static int64_t next_size;

/* parent=, in order: parent, grandparent, ... (NULL-terminated). */
#define MAX_PARENT_URIS 32
static char *parent_uris[MAX_PARENT_URIS + 1];
static unsigned n_parent_uris;

static struct io_cache_params cache_params = {
  IO_CACHE_DEFAULT_CAPACITY, IO_CACHE_DEFAULT_BLOCK
};

/* The backend over next. Requests are split: nbdkit refuses more than
 * 64 MiB in one, and the cache never asks for more than 32 MiB anyway. */
#define NEXT_MAX_REQUEST (32u << 20)

/* Reads or writes [offset, offset+count) below, in pieces nbdkit takes. */
static int
next_transfer (bool write, void *buf, size_t count, uint64_t offset)
{
  uint8_t *p = buf;
  int err = 0;
  pthread_mutex_lock (&next_lock);
  for (size_t done = 0; done < count && err == 0; ) {
    uint32_t n = count - done < NEXT_MAX_REQUEST ? count - done : NEXT_MAX_REQUEST;
    int r = write
      ? shared_next->pwrite (shared_next, p + done, n, offset + done, 0, &err)
      : shared_next->pread (shared_next, p + done, n, offset + done, 0, &err);
    if (r < 0 && !err)
      err = EIO;
    done += n;
  }
  pthread_mutex_unlock (&next_lock);
  return -err;
}

static int
next_pread (void *opaque, void *buf, size_t count, uint64_t offset)
{
  (void) opaque;
  uint64_t size = (uint64_t) next_size;
  size_t have = offset >= size ? 0 : size - offset < count ? size - offset : count;
  memset ((uint8_t *) buf + have, 0, count - have);
  return next_transfer (false, buf, have, offset);
}

static int
next_pwrite (void *opaque, const void *buf, size_t count, uint64_t offset)
{
  (void) opaque;
  if (offset > (uint64_t) next_size || count > (uint64_t) next_size - offset)
    return -ENOSPC;   /* the layer below has a fixed size */
  return next_transfer (true, (void *) buf, count, offset);
}

static int
next_flush (void *opaque)
{
  (void) opaque;
  int err = 0;
  pthread_mutex_lock (&next_lock);
  if (shared_next->can_flush (shared_next) == 1 &&
      shared_next->flush (shared_next, 0, &err) < 0 && !err)
    err = EIO;
  pthread_mutex_unlock (&next_lock);
  return -err;
}

static int
next_get_size (void *opaque, uint64_t *size)
{
  (void) opaque;
  *size = (uint64_t) next_size;
  return 0;
}

/* Only the length it has: what needs more room says so. */
static int
next_set_size (void *opaque, uint64_t size)
{
  (void) opaque;
  uint64_t have = (uint64_t) next_size;
  return size == have ? 0 : size > have ? -ENOSPC : -ENOTSUP;
}

static int
next_punch_hole (void *opaque, uint64_t offset, uint64_t length)
{
  (void) opaque;
  int err = 0;
  pthread_mutex_lock (&next_lock);
  if (shared_next->can_zero (shared_next) <= 0)
    err = ENOTSUP;
  for (uint64_t done = 0; done < length && err == 0; ) {
    uint32_t n = length - done < NEXT_MAX_REQUEST ? length - done : NEXT_MAX_REQUEST;
    if (shared_next->zero (shared_next, n, offset + done, NBDKIT_FLAG_MAY_TRIM, &err) < 0
        && !err)
      err = EIO;
    done += n;
  }
  pthread_mutex_unlock (&next_lock);
  return -err;
}

/* The holes of the layer below (a sparse file under nbdkit file), so
 * that ranges a dynamic image stores but the host never wrote report as
 * zeros, as the plugin reports them from SEEK_DATA. One extents request
 * covers at most EXTENTS_SPAN bytes; a plugin without extents has no
 * holes to tell (-ENOTSUP: all data). */
#define EXTENTS_SPAN (1u << 30)

static int
next_find_data (void *opaque, uint64_t offset, uint64_t *data, uint64_t *hole)
{
  (void) opaque;
  uint64_t size = (uint64_t) next_size;
  int err = 0;
  bool in_data = false;
  *data = *hole = size;
  pthread_mutex_lock (&next_lock);
  if (shared_next->can_extents (shared_next) <= 0)
    err = ENOTSUP;
  while (err == 0 && offset < size) {
    uint32_t count = size - offset < EXTENTS_SPAN ? size - offset : EXTENTS_SPAN;
    struct nbdkit_extents *list = nbdkit_extents_new (offset, offset + count);
    if (list == NULL) {
      err = ENOMEM;
      break;
    }
    if (shared_next->extents (shared_next, count, offset, 0, list, &err) < 0) {
      nbdkit_extents_free (list);
      err = err ? err : EIO;
      break;
    }
    uint64_t reached = offset;
    for (size_t i = 0; i < nbdkit_extents_count (list); i++) {
      struct nbdkit_extent e = nbdkit_get_extent (list, i);
      bool is_hole = (e.type & NBDKIT_EXTENT_HOLE) != 0;
      if (!in_data && !is_hole) {
        *data = e.offset > offset ? e.offset : offset;
        in_data = true;
      }
      else if (in_data && is_hole) {
        *hole = e.offset;
        nbdkit_extents_free (list);
        goto done;
      }
      reached = e.offset + e.length;
    }
    nbdkit_extents_free (list);
    if (reached <= offset)
      err = EIO;   /* a plugin that answers nothing would loop forever */
    offset = reached;
  }
done:
  pthread_mutex_unlock (&next_lock);
  return -err;
}

static int
next_open_related (void *opaque, const char *path, unsigned flags, vhd_io **out)
{
  (void) opaque;
  (void) flags;
  if (n_parent_uris == 0)
    return io_refuse_remote_parent (path);
  return vhd_io_open_nbd (parent_uris[0], (const char *const *) parent_uris + 1,
                          VHD_IO_RDONLY, out);
}

/* The context stays open for the next image; cleanup closes it. */
static void
next_close (void *opaque)
{
  (void) opaque;
}

static const struct vhd_io_ops next_ops = {
  .pread = next_pread,
  .pwrite = next_pwrite,
  .flush = next_flush,
  .get_size = next_get_size,
  .set_size = next_set_size,
  .punch_hole = next_punch_hole,
  .find_data = next_find_data,
  .open_related = next_open_related,
  .close = next_close,
};

static int
open_image (unsigned flags, vhd_image **out)
{
  *out = NULL;
  unsigned ioflags = (flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : VHD_IO_RDONLY;
  if ((flags & VHD_OPEN_RDWR) && !next_writable)
    return -EROFS;   /* served read-only (serve.c), no message needed */
  vhd_io *raw, *cached;
  int r = vhd_io_new (&next_ops, NULL, EXPORT_NAME, ioflags, &raw);
  if (r < 0)
    return r;
  r = io_cache_wrap (raw, &cache_params, &cached);
  if (r < 0) {
    vhd_io_close (raw);
    return r;
  }
  struct vhd_open_params p;
  serve_open_params (flags, &p);
  /* Confinement is about host paths; here a parent is only ever what
   * parent= names, checked by identity. */
  p.flags &= ~VHD_OPEN_PARENTS_BESIDE;
  return vhd_open_io_with (cached, &p, out);
}

static void
vhd_filter_load (void)
{
  serve_load ();
}

static void
vhd_filter_unload (void)
{
  for (unsigned i = 0; i < n_parent_uris; i++)
    free (parent_uris[i]);
}

static int
parse_cache_size (const char *key, const char *value, uint64_t *out)
{
  int64_t v = nbdkit_parse_size (value);
  if (v < 0)
    return -1;
  if (v == 0) {
    nbdkit_error ("%s=%s: must be more than 0", key, value);
    return -1;
  }
  *out = (uint64_t) v;
  return 0;
}

static int
vhd_filter_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                   const char *key, const char *value)
{
  if (strcmp (key, "parent") == 0) {
    if (n_parent_uris == MAX_PARENT_URIS) {
      nbdkit_error ("parent= given more than %d times", MAX_PARENT_URIS);
      return -1;
    }
    parent_uris[n_parent_uris] = strdup (value);
    if (!parent_uris[n_parent_uris]) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    n_parent_uris++;
    return 0;
  }
  if (strcmp (key, "cache-size") == 0)
    return parse_cache_size (key, value, &cache_params.capacity);
  if (strcmp (key, "cache-block") == 0) {
    uint64_t block;
    if (parse_cache_size (key, value, &block) < 0)
      return -1;
    cache_params.block = block > UINT32_MAX ? UINT32_MAX : (uint32_t) block;
    return 0;
  }
  int r = serve_config (key, value);
  if (r != 0)
    return r < 0 ? -1 : 0;
  return next (nxdata, key, value);
}

static int
vhd_filter_config_complete (nbdkit_next_config_complete *next, nbdkit_backend *nxdata)
{
  /* The cache's own limits, checked now rather than at the first open. */
  uint64_t slots = cache_params.capacity / cache_params.block;
  uint32_t b = cache_params.block;
  if (b < 4096 || b > IO_CACHE_MAX_BLOCK || (b & (b - 1)) || slots < 2 ||
      slots > IO_CACHE_MAX_SLOTS) {
    nbdkit_error ("cache-block=%u, cache-size=%llu: the block must be a power of two "
                  "from 4096 to %u and the cache hold from 2 to %u blocks", b,
                  (unsigned long long) cache_params.capacity, IO_CACHE_MAX_BLOCK,
                  IO_CACHE_MAX_SLOTS);
    return -1;
  }
  serve_set_source (open_image, EXPORT_NAME);
  return next (nxdata);
}

#define vhd_filter_config_help \
  "parent=<URI>        NBD URI of a differencing image's parent (repeat for\n" \
  "                    the grandparent, ...).\n" \
  "cache-size=<SIZE>   Bytes of the container kept in memory (default 64M).\n" \
  "cache-block=<SIZE>  Unit of the cache and of reads below (default 1M).\n" \
  SERVE_CONFIG_HELP

/* The plugin below is only reachable after the fork: the image is
 * validated and opened here. A failure is reported (one line naming the
 * field) but does not stop nbdkit: with --run, the command nbdkit started
 * holds the listening socket, and its client would wait forever on a
 * server that is gone. Every connection is refused instead, as the plugin
 * does after a failed reopen. */
static int
open_below (nbdkit_backend *backend)
{
  shared_next = nbdkit_next_context_open (backend, 0, "", 1);
  if (shared_next == NULL)
    return -1;
  if (shared_next->prepare (shared_next) < 0)
    return -1;
  next_size = shared_next->get_size (shared_next);
  if (next_size < 0)
    return -1;
  next_writable = shared_next->can_write (shared_next) == 1;
  if (serve_validate () < 0 || serve_start () < 0)
    return -1;
  return 0;
}

static int
vhd_filter_after_fork (nbdkit_backend *backend)
{
  if (open_below (backend) < 0)
    nbdkit_error ("%s: not served: every connection is refused", EXPORT_NAME);
  return 0;
}

static void
vhd_filter_cleanup (nbdkit_backend *backend)
{
  (void) backend;
  serve_stop ();
  if (shared_next) {
    shared_next->finalize (shared_next);
    nbdkit_next_context_close (shared_next);
    shared_next = NULL;
  }
}

static void *
vhd_filter_open (nbdkit_next_open *next, nbdkit_context *context, int readonly,
                 const char *exportname, int is_tls)
{
  (void) next;
  (void) context;
  (void) exportname;
  (void) is_tls;
  return serve_connect (readonly, next_writable);
}

static void
vhd_filter_close (void *handle)
{
  serve_disconnect (handle);
}

/* A filter reports an error's errno through *err. */
static int
result (int r, int *err)
{
  if (r >= 0)
    return 0;
  *err = -r;
  return -1;
}

static int64_t
vhd_filter_get_size (nbdkit_next *next, void *handle)
{
  (void) next;
  (void) handle;
  return serve_get_size ();
}

static const char *
vhd_filter_export_description (nbdkit_next *next, void *handle)
{
  (void) next;
  (void) handle;
  return NULL;
}

static int
vhd_filter_block_size (nbdkit_next *next, void *handle, uint32_t *minimum,
                       uint32_t *preferred, uint32_t *maximum)
{
  (void) next;
  (void) handle;
  serve_block_size (minimum, preferred, maximum);
  return 0;
}

static int
vhd_filter_can_write (nbdkit_next *next, void *handle)
{
  (void) next;
  return ((struct serve_handle *) handle)->writable;
}

static int
vhd_filter_can_trim (nbdkit_next *next, void *handle)
{
  (void) next;
  return serve_can_trim (handle);
}

/* Flush, zero, fast zero, extents, multi-conn: always. */
static int
vhd_filter_can_always (nbdkit_next *next, void *handle)
{
  (void) next;
  (void) handle;
  return 1;
}

static int
vhd_filter_is_rotational (nbdkit_next *next, void *handle)
{
  (void) next;
  (void) handle;
  return 0;
}

static int
vhd_filter_can_fua (nbdkit_next *next, void *handle)
{
  (void) next;
  (void) handle;
  return NBDKIT_FUA_NATIVE;
}

static int
vhd_filter_can_cache (nbdkit_next *next, void *handle)
{
  (void) next;
  (void) handle;
  return NBDKIT_CACHE_NATIVE;
}

static int
vhd_filter_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
                  uint64_t offset, uint32_t flags, int *err)
{
  (void) next;
  (void) flags;
  return result (serve_pread (handle, buf, count, offset), err);
}

static int
vhd_filter_pwrite (nbdkit_next *next, void *handle, const void *buf,
                   uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  (void) next;
  return result (serve_pwrite (handle, buf, count, offset, flags), err);
}

static int
vhd_filter_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  (void) next;
  (void) flags;
  return result (serve_flush (handle), err);
}

static int
vhd_filter_trim (nbdkit_next *next, void *handle, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  (void) next;
  return result (serve_trim (handle, count, offset, flags), err);
}

static int
vhd_filter_zero (nbdkit_next *next, void *handle, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  (void) next;
  return result (serve_zero (handle, count, offset, flags), err);
}

static int
vhd_filter_extents (nbdkit_next *next, void *handle, uint32_t count,
                    uint64_t offset, uint32_t flags,
                    struct nbdkit_extents *extents, int *err)
{
  (void) next;
  return result (serve_extents (handle, count, offset, flags, extents), err);
}

static int
vhd_filter_cache (nbdkit_next *next, void *handle, uint32_t count,
                  uint64_t offset, uint32_t flags, int *err)
{
  (void) next;
  (void) flags;
  return result (serve_cache (handle, count, offset), err);
}

static struct nbdkit_filter filter = {
  .name               = "vhd",
  .longname           = "nbdkit VHD/VHDX filter (libvhd)",
  .load               = vhd_filter_load,
  .unload             = vhd_filter_unload,
  .config             = vhd_filter_config,
  .config_complete    = vhd_filter_config_complete,
  .config_help        = vhd_filter_config_help,
  .after_fork         = vhd_filter_after_fork,
  .cleanup            = vhd_filter_cleanup,
  .open               = vhd_filter_open,
  .close              = vhd_filter_close,
  .get_size           = vhd_filter_get_size,
  .export_description = vhd_filter_export_description,
  .block_size         = vhd_filter_block_size,
  .can_write          = vhd_filter_can_write,
  .can_flush          = vhd_filter_can_always,
  .is_rotational      = vhd_filter_is_rotational,
  .can_trim           = vhd_filter_can_trim,
  .can_zero           = vhd_filter_can_always,
  .can_fast_zero      = vhd_filter_can_always,
  .can_extents        = vhd_filter_can_always,
  .can_fua            = vhd_filter_can_fua,
  .can_multi_conn     = vhd_filter_can_always,
  .can_cache          = vhd_filter_can_cache,
  .pread              = vhd_filter_pread,
  .pwrite             = vhd_filter_pwrite,
  .flush              = vhd_filter_flush,
  .trim               = vhd_filter_trim,
  .zero               = vhd_filter_zero,
  .extents            = vhd_filter_extents,
  .cache              = vhd_filter_cache,
};

NBDKIT_REGISTER_FILTER (filter)
