/* SPDX-License-Identifier: BSD-3-Clause */
/* The part of nbdkit-vhd-plugin and nbdkit-vhd-filter that serves a
 * vhd_image over NBD (serve.h says what is shared and why).
 *
 * One vhd_image serves every connection. That is what makes multi-conn
 * truthful (a flush on any connection flushes the one image everybody
 * writes to) and what keeps block allocation consistent (two private
 * copies of a BAT would hand out the same free block twice).
 *
 * nbdkit only tells a plugin about -r per connection, after the fork, but
 * a corrupt image has to be reported before the fork, where the user sees
 * it. So the image is opened read-only first (which never writes the
 * file), and the first writable connection reopens it read-write. */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

/* Bounce buffer for .cache, per worker thread and reused: allocating
 * per request is what makes servers slow on this kind of VM. */
#define CACHE_CHUNK (1024 * 1024)

/* One block-status request asks the library at most this many times:
 * nbdkit allows a reply that stops short of the requested range, and a
 * client asking about a huge fragmented range gets its answer in pieces
 * instead of one enormous list. */
#define MAX_STATUS_CALLS_PER_REQUEST 65536

struct serve_policy serve_policy = {
  .format = VHD_FORMAT_AUTO,
  .discard = true,
  .parents = SERVE_PARENTS_BESIDE,
  .raw_parent = false,
};

static serve_open_fn *source_open;
static const char *source_name = "(no image)";

/* The shared image and what is known about it. lock guards image,
 * image_rw and connections; data callbacks use the pointer their handle
 * took at open time, which cannot change while any connection exists. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static vhd_image *image;
static bool image_rw;
static unsigned connections;
static struct vhd_info info;

static pthread_key_t cache_buffer_key;

void
serve_load (void)
{
  pthread_key_create (&cache_buffer_key, free);
}

void
serve_set_source (serve_open_fn *open, const char *name)
{
  source_open = open;
  source_name = name;
}

/* Report the library's last error (it already names the file). */
int
serve_library_error (int r)
{
  const char *msg = vhd_last_error ();
  nbdkit_error ("%s", msg && *msg ? msg : strerror (-r));
  return r;
}

static int
parse_format (const char *value)
{
  static const struct { const char *name; enum vhd_format format; } names[] = {
    { "auto", VHD_FORMAT_AUTO }, { "raw", VHD_FORMAT_RAW },
    { "vhd", VHD_FORMAT_VHD }, { "vpc", VHD_FORMAT_VHD },
    { "vhdx", VHD_FORMAT_VHDX }, { "qcow2", VHD_FORMAT_QCOW2 },
    { "vmdk", VHD_FORMAT_VMDK }, { "vdi", VHD_FORMAT_VDI },
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp (value, names[i].name) == 0) {
      serve_policy.format = names[i].format;
      return 1;
    }
  nbdkit_error ("format=%s: expected auto, raw, vhd, vhdx, qcow2, vmdk or vdi", value);
  return -1;
}

static int
parse_bool (const char *value, bool *out)
{
  int b = nbdkit_parse_bool (value);
  if (b == -1)
    return -1;
  *out = b;
  return 1;
}

int
serve_config (const char *key, const char *value)
{
  if (strcmp (key, "format") == 0)
    return parse_format (value);
  if (strcmp (key, "parents") == 0) {
    if (strcmp (value, "none") == 0)
      serve_policy.parents = SERVE_PARENTS_NONE;
    else if (strcmp (value, "beside") == 0)
      serve_policy.parents = SERVE_PARENTS_BESIDE;
    else if (strcmp (value, "any") == 0)
      serve_policy.parents = SERVE_PARENTS_ANY;
    else {
      nbdkit_error ("parents=%s: expected none, beside or any", value);
      return -1;
    }
    return 1;
  }
  if (strcmp (key, "raw-parent") == 0)
    return parse_bool (value, &serve_policy.raw_parent);
  if (strcmp (key, "discard") == 0)
    return parse_bool (value, &serve_policy.discard);
  return 0;
}

void
serve_open_params (unsigned flags, struct vhd_open_params *p)
{
  vhd_open_params_init (p);
  p->format = serve_policy.format;
  p->flags = flags;
  if (serve_policy.parents == SERVE_PARENTS_NONE)
    p->flags |= VHD_OPEN_NO_PARENT;
  else if (serve_policy.parents == SERVE_PARENTS_BESIDE)
    p->flags |= VHD_OPEN_PARENTS_BESIDE;
  if (serve_policy.raw_parent)
    p->flags |= VHD_OPEN_RAW_PARENT;
}

/* Before the fork: every structure is validated here, so a corrupt image
 * (or one another process writes) stops nbdkit with the library's message
 * instead of failing a client. */
int
serve_validate (void)
{
  vhd_image *img;
  int r = source_open (VHD_OPEN_RDONLY, &img);
  if (r < 0)
    return serve_library_error (r);
  r = vhd_get_info (img, &info);
  if (r < 0) {
    serve_library_error (r);
    vhd_close (img);
    return r;
  }
  /* Without its parents a differencing image has nothing to show for the
   * ranges it does not hold: refuse it now rather than fail reads later. */
  if (serve_policy.parents == SERVE_PARENTS_NONE && info.type == VHD_TYPE_DIFFERENCING) {
    nbdkit_error ("%s: is a differencing image, and parents=none allows no "
                  "parent", source_name);
    vhd_close (img);
    return -EINVAL;
  }
  nbdkit_debug ("%s: %s %s, virtual size %llu, block size %u, "
                "logical sector %u, chain depth %u",
                source_name, vhd_format_name (info.format),
                info.type == VHD_TYPE_NONE ? "-" : vhd_type_name (info.type),
                (unsigned long long) info.virtual_size, info.block_size,
                info.logical_sector_size, info.chain_depth);
  vhd_close (img);
  return 0;
}

/* Open the image again (flags: read-only or read-write) and make sure it
 * is still the disk serve_validate saw: -ESTALE, reported here, when its
 * size changed; other errors are the library's, for the caller to report. */
static int
reopen_image (unsigned flags, vhd_image **out)
{
  int r = source_open (flags, out);
  if (r < 0)
    return r;
  struct vhd_info now;
  r = vhd_get_info (*out, &now);
  if (r == 0 && now.virtual_size != info.virtual_size) {
    nbdkit_error ("%s: virtual size changed from %llu to %llu since nbdkit "
                  "started", source_name,
                  (unsigned long long) info.virtual_size,
                  (unsigned long long) now.virtual_size);
    r = -ESTALE;
  }
  if (r < 0) {
    vhd_close (*out);
    *out = NULL;
    return r;
  }
  info = now;
  return 0;
}

/* After the fork: the image this server process serves. */
int
serve_start (void)
{
  int r = reopen_image (VHD_OPEN_RDONLY, &image);
  if (r < 0)
    return r == -ESTALE ? r : serve_library_error (r);
  return 0;
}

void
serve_stop (void)
{
  if (image && vhd_close (image) < 0)
    nbdkit_error ("%s", vhd_last_error ());
  image = NULL;
}

/* Reopen read-write for the first writable connection. Only done while
 * no connection holds the read-only image, so nobody uses it any more.
 * The read-only image is closed first: its reader's lock on the file would
 * meet the writer's lock of a second handle in this process as another
 * user's. On failure the image is opened read-only again. */
static int
upgrade_to_rw (void)
{
  vhd_close (image);
  image = NULL;
  int r = reopen_image (VHD_OPEN_RDWR, &image);
  if (r == 0) {
    image_rw = true;
    return 0;
  }
  /* Like nbdkit-file-plugin: an image we may not write is served
   * read-only rather than refused. */
  bool serve_ro = r == -EACCES || r == -EPERM || r == -EROFS;
  if (serve_ro)
    nbdkit_debug ("%s; serving read-only", vhd_last_error ());
  else if (r != -ESTALE)
    serve_library_error (r);
  r = reopen_image (VHD_OPEN_RDONLY, &image);
  if (r < 0) {
    /* image is NULL: every later connection is refused */
    return r == -ESTALE ? -1 : serve_library_error (r);
  }
  return serve_ro ? 0 : -1;
}

struct serve_handle *
serve_connect (bool readonly, bool writable_below)
{
  struct serve_handle *h = malloc (sizeof *h);
  if (h == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  pthread_mutex_lock (&lock);
  if (!readonly && writable_below && !image_rw) {
    if (connections == 0) {
      if (upgrade_to_rw () < 0) {
        pthread_mutex_unlock (&lock);
        free (h);
        return NULL;
      }
    }
    else
      nbdkit_debug ("read-only connections are open: "
                    "this connection is read-only too");
  }
  if (image == NULL) {
    nbdkit_error ("%s: not open since a failed open (see above)", source_name);
    pthread_mutex_unlock (&lock);
    free (h);
    return NULL;
  }
  h->img = image;
  h->writable = !readonly && image_rw;
  connections++;
  pthread_mutex_unlock (&lock);
  return h;
}

void
serve_disconnect (struct serve_handle *h)
{
  pthread_mutex_lock (&lock);
  /* A client that went away without flushing still gets its metadata
   * written; the error can only be logged now. */
  if (--connections == 0 && image_rw && vhd_flush (image) < 0)
    nbdkit_error ("%s", vhd_last_error ());
  pthread_mutex_unlock (&lock);
  free (h);
}

int64_t
serve_get_size (void)
{
  return (int64_t) info.virtual_size;
}

static int
is_power_of_2 (uint64_t v)
{
  return v && (v & (v - 1)) == 0;
}

/* Preferred is the physical sector (at least a page), not the image's
 * block: the library has no read-modify-write penalty above a sector,
 * and clients size their requests by it. nbdcopy asked for 32 MiB at a
 * time when a VHDX's block was advertised and became 6-9 times slower
 * (every request a fresh 32 MiB buffer on both sides). */
void
serve_block_size (uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
  uint32_t sector = info.logical_sector_size;
  if (!is_power_of_2 (sector) || sector > 65536)
    sector = 512;
  uint32_t pref = info.physical_sector_size;
  if (!is_power_of_2 (pref) || pref > 2 * 1024 * 1024)
    pref = 4096;
  if (pref < 4096)
    pref = 4096;
  if (pref < sector)
    pref = sector;
  *minimum = sector;
  *preferred = pref;
  *maximum = 0xffffffff;
}

bool
serve_can_trim (const struct serve_handle *h)
{
  return h->writable && serve_policy.discard;
}

/* FUA: the request is durable when it returns, which the library gives
 * only through a flush. */
static int
finish_fua (struct serve_handle *h, uint32_t flags)
{
  if (flags & NBDKIT_FLAG_FUA) {
    int r = vhd_flush (h->img);
    if (r < 0)
      return serve_library_error (r);
  }
  return 0;
}

int
serve_pread (struct serve_handle *h, void *buf, uint32_t count, uint64_t offset)
{
  int r = vhd_pread (h->img, buf, count, offset);
  return r < 0 ? serve_library_error (r) : 0;
}

int
serve_pwrite (struct serve_handle *h, const void *buf, uint32_t count,
              uint64_t offset, uint32_t flags)
{
  int r = vhd_pwrite (h->img, buf, count, offset);
  if (r < 0)
    return serve_library_error (r);
  return finish_fua (h, flags);
}

int
serve_flush (struct serve_handle *h)
{
  if (!h->writable && !image_rw)
    return 0;
  int r = vhd_flush (h->img);
  return r < 0 ? serve_library_error (r) : 0;
}

int
serve_trim (struct serve_handle *h, uint32_t count, uint64_t offset, uint32_t flags)
{
  int r = vhd_discard (h->img, offset, count);
  if (r < 0)
    return serve_library_error (r);
  return finish_fua (h, flags);
}

int
serve_zero (struct serve_handle *h, uint32_t count, uint64_t offset, uint32_t flags)
{
  unsigned zflags = 0;
  if ((flags & NBDKIT_FLAG_MAY_TRIM) && serve_policy.discard)
    zflags |= VHD_ZERO_MAY_TRIM;
  if (flags & NBDKIT_FLAG_FAST_ZERO)
    zflags |= VHD_ZERO_FAST;
  int r = vhd_zero (h->img, offset, count, zflags);
  if (r == -ENOTSUP) {
    /* Not an error worth a message: with FAST_ZERO the client falls back
     * to writing zeros, without it nbdkit does. */
    nbdkit_debug ("%s", vhd_last_error ());
    return r;
  }
  if (r < 0)
    return serve_library_error (r);
  return finish_fua (h, flags);
}

static uint32_t
extent_type (unsigned status)
{
  if (status & VHD_STATUS_ZERO)
    return (status & VHD_STATUS_DATA) ? NBDKIT_EXTENT_ZERO
                                      : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
  /* Data, or a state the library cannot vouch for: reading it is always
   * right, skipping it would not be. */
  return 0;
}

int
serve_extents (struct serve_handle *h, uint32_t count, uint64_t offset,
               uint32_t flags, struct nbdkit_extents *extents)
{
  uint64_t end = offset + count;
  uint32_t first_type = UINT32_MAX;

  for (unsigned calls = 0;
       offset < end && calls < MAX_STATUS_CALLS_PER_REQUEST; calls++) {
    unsigned status;
    uint64_t run;
    int r = vhd_block_status (h->img, offset, end - offset, &status, &run,
                              NULL);
    if (r < 0)
      return serve_library_error (r);
    if (run == 0 || run > end - offset) {
      nbdkit_error ("%s: block status returned a run of %llu bytes at %llu",
                    source_name, (unsigned long long) run,
                    (unsigned long long) offset);
      return -EIO;
    }
    uint32_t type = extent_type (status);
    /* REQ_ONE wants one extent, but as long as possible: the library
     * answers block by block, the client (qemu) would ask again for each
     * block of one long run. */
    if (first_type == UINT32_MAX)
      first_type = type;
    else if ((flags & NBDKIT_FLAG_REQ_ONE) && type != first_type)
      break;
    /* nbdkit merges neighbours of the same type. */
    if (nbdkit_add_extent (extents, offset, run, type) < 0)
      return errno ? -errno : -EIO;
    offset += run;
  }
  return 0;
}

/* A cache hint reads the allocated parts of the range so that the host
 * has them in memory; holes have nothing to fetch. */
int
serve_cache (struct serve_handle *h, uint32_t count, uint64_t offset)
{
  char *buf = pthread_getspecific (cache_buffer_key);
  if (buf == NULL) {
    buf = malloc (CACHE_CHUNK);
    if (buf == NULL) {
      nbdkit_error ("malloc: %m");
      return -ENOMEM;
    }
    pthread_setspecific (cache_buffer_key, buf);
  }

  uint64_t end = offset + count;
  while (offset < end) {
    unsigned status;
    uint64_t run;
    int r = vhd_block_status (h->img, offset, end - offset, &status, &run,
                              NULL);
    if (r < 0)
      return serve_library_error (r);
    if (run == 0 || run > end - offset)
      run = end - offset;
    if (status & VHD_STATUS_DATA) {
      for (uint64_t done = 0; done < run; ) {
        size_t n = run - done < CACHE_CHUNK ? run - done : CACHE_CHUNK;
        r = vhd_pread (h->img, buf, n, offset + done);
        if (r < 0)
          return serve_library_error (r);
        done += n;
      }
    }
    offset += run;
  }
  return 0;
}
