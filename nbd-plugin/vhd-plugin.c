/* SPDX-License-Identifier: BSD-3-Clause */
/* nbdkit-vhd-plugin: serve a VHD, VHDX or raw image over NBD through
 * libvhd. Everything about the formats lives in the library; this file
 * only translates between nbdkit's callbacks and include/vhd.h.
 *
 * One vhd_image serves every connection. That is what makes multi-conn
 * truthful (a flush on any connection flushes the one image everybody
 * writes to) and what keeps block allocation consistent (two private
 * copies of a BAT would hand out the same free block twice).
 *
 * nbdkit only tells a plugin about -r per connection, after the fork, but
 * a corrupt image has to be reported before the fork, where the user sees
 * it. So get_ready opens the image read-only (which never writes the file),
 * and the first writable connection reopens it read-write.
 *
 * Locks (the library's, in qemu's scheme): the read-only image holds a
 * reader's lock, so nobody else writes the file while nbdkit serves it; the
 * read-write one a writer's. They belong to the open file description,
 * which a fork shares: the process nbdkit forks off to run a --run command
 * (or to exit in the background) would keep holding them. So get_ready only
 * validates and closes again, and after_fork opens the image the server
 * keeps. */
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* Bounce buffer for .cache, per worker thread and reused: allocating
 * per request is what makes servers slow on this kind of VM. */
#define CACHE_CHUNK (1024 * 1024)

/* One block-status request asks the library at most this many times:
 * nbdkit allows a reply that stops short of the requested range, and a
 * client asking about a huge fragmented range gets its answer in pieces
 * instead of one enormous list. */
#define MAX_STATUS_CALLS_PER_REQUEST 65536

/* Configuration. */
static char *filename;
static enum vhd_format format = VHD_FORMAT_AUTO;
static bool discard = true;

/* Where parents may come from. Served images are often someone else's
 * upload, whose locators may name any host file: by default only the
 * image's own directory and below, never a raw file. */
enum parents_policy { PARENTS_NONE, PARENTS_BESIDE, PARENTS_ANY };
static enum parents_policy parents = PARENTS_BESIDE;
static bool raw_parent;

/* The shared image and what is known about it. lock guards image,
 * image_rw and connections; data callbacks use the pointer their handle
 * took at open time, which cannot change while any connection exists. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static vhd_image *image;
static bool image_rw;
static unsigned connections;
static struct vhd_info info;

struct handle {
  vhd_image *img;
  bool writable;
};

static pthread_key_t cache_buffer_key;

/* Report the library's last error (it already names the file) and pass
 * its errno to the client. */
static int
library_error (int r)
{
  const char *msg = vhd_last_error ();
  nbdkit_error ("%s", msg && *msg ? msg : strerror (-r));
  nbdkit_set_error (-r);
  return -1;
}

static void
vhd_plugin_load (void)
{
  pthread_key_create (&cache_buffer_key, free);
}

static void
vhd_plugin_unload (void)
{
  free (filename);
}

static int
parse_format (const char *value)
{
  if (strcmp (value, "auto") == 0)
    format = VHD_FORMAT_AUTO;
  else if (strcmp (value, "raw") == 0)
    format = VHD_FORMAT_RAW;
  else if (strcmp (value, "vhd") == 0 || strcmp (value, "vpc") == 0)
    format = VHD_FORMAT_VHD;
  else if (strcmp (value, "vhdx") == 0)
    format = VHD_FORMAT_VHDX;
  else if (strcmp (value, "qcow2") == 0)
    format = VHD_FORMAT_QCOW2;
  else if (strcmp (value, "vmdk") == 0)
    format = VHD_FORMAT_VMDK;
  else if (strcmp (value, "vdi") == 0)
    format = VHD_FORMAT_VDI;
  else {
    nbdkit_error ("format=%s: expected auto, raw, vhd, vhdx, qcow2, vmdk or vdi", value);
    return -1;
  }
  return 0;
}

static int
vhd_plugin_config (const char *key, const char *value)
{
  if (strcmp (key, "file") == 0) {
    if (filename) {
      nbdkit_error ("file= given more than once");
      return -1;
    }
    /* nbdkit changes directory to / before serving. */
    filename = nbdkit_realpath (value);
    return filename ? 0 : -1;
  }
  if (strcmp (key, "format") == 0)
    return parse_format (value);
  if (strcmp (key, "parents") == 0) {
    if (strcmp (value, "none") == 0)
      parents = PARENTS_NONE;
    else if (strcmp (value, "beside") == 0)
      parents = PARENTS_BESIDE;
    else if (strcmp (value, "any") == 0)
      parents = PARENTS_ANY;
    else {
      nbdkit_error ("parents=%s: expected none, beside or any", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "raw-parent") == 0) {
    int b = nbdkit_parse_bool (value);
    if (b == -1)
      return -1;
    raw_parent = b;
    return 0;
  }
  if (strcmp (key, "discard") == 0) {
    int b = nbdkit_parse_bool (value);
    if (b == -1)
      return -1;
    discard = b;
    return 0;
  }
  nbdkit_error ("unknown parameter '%s' (see nbdkit-vhd-plugin(1))", key);
  return -1;
}

static int
vhd_plugin_config_complete (void)
{
  if (filename == NULL) {
    nbdkit_error ("you must supply the file=<IMAGE> parameter");
    return -1;
  }
  return 0;
}

#define vhd_plugin_config_help \
  "[file=]<IMAGE>      (required) VHD, VHDX or raw image to serve.\n" \
  "format=auto|raw|vhd|vhdx|qcow2|vmdk|vdi  Take the image as this format (default: probe).\n" \
  "discard=true|false  Let trim and zero free blocks (default: true).\n" \
  "parents=none|beside|any  Where parents may be: none, the image's directory\n" \
  "                    and below (default), or wherever the locators say.\n" \
  "raw-parent=true|false  Let a raw file be a parent (default: false)."

/* Open the image with the configured format (AUTO probes the content). */
static int
open_image (unsigned flags, vhd_image **out)
{
  struct vhd_open_params p;
  vhd_open_params_init (&p);
  p.format = format;
  p.flags = flags;
  if (parents == PARENTS_NONE)
    p.flags |= VHD_OPEN_NO_PARENT;
  else if (parents == PARENTS_BESIDE)
    p.flags |= VHD_OPEN_PARENTS_BESIDE;
  if (raw_parent)
    p.flags |= VHD_OPEN_RAW_PARENT;
  return vhd_open_with (filename, &p, out);
}

/* Before the fork: every structure is validated here, so a corrupt image
 * (or one another process writes) stops nbdkit with the library's message
 * instead of failing a client. */
static int
vhd_plugin_get_ready (void)
{
  vhd_image *img;
  int r = open_image (VHD_OPEN_RDONLY, &img);
  if (r < 0)
    return library_error (r);
  r = vhd_get_info (img, &info);
  if (r < 0) {
    library_error (r);
    vhd_close (img);
    return -1;
  }
  /* Without its parents a differencing image has nothing to show for the
   * ranges it does not hold: refuse it now rather than fail reads later. */
  if (parents == PARENTS_NONE && info.type == VHD_TYPE_DIFFERENCING) {
    nbdkit_error ("%s: is a differencing image, and parents=none allows no "
                  "parent", filename);
    vhd_close (img);
    return -1;
  }
  nbdkit_debug ("%s: %s %s, virtual size %llu, block size %u, "
                "logical sector %u, chain depth %u",
                filename, vhd_format_name (info.format),
                info.type == VHD_TYPE_NONE ? "-" : vhd_type_name (info.type),
                (unsigned long long) info.virtual_size, info.block_size,
                info.logical_sector_size, info.chain_depth);
  vhd_close (img);
  return 0;
}

/* Open the image again (flags: read-only or read-write) and make sure it
 * is still the disk get_ready saw: -ESTALE, reported here, when its size
 * changed; other errors are the library's, for the caller to report. */
static int
reopen_image (unsigned flags, vhd_image **out)
{
  int r = open_image (flags, out);
  if (r < 0)
    return r;
  struct vhd_info now;
  r = vhd_get_info (*out, &now);
  if (r == 0 && now.virtual_size != info.virtual_size) {
    nbdkit_error ("%s: virtual size changed from %llu to %llu since nbdkit "
                  "started", filename,
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
static int
vhd_plugin_after_fork (void)
{
  int r = reopen_image (VHD_OPEN_RDONLY, &image);
  if (r < 0)
    return r == -ESTALE ? -1 : library_error (r);
  return 0;
}

static void
vhd_plugin_cleanup (void)
{
  if (image && vhd_close (image) < 0)
    nbdkit_error ("%s", vhd_last_error ());
  image = NULL;
}

static void
vhd_plugin_dump_plugin (void)
{
  printf ("vhd_libvhd_version=%s\n", vhd_version ());
  printf ("vhd_formats=raw,vhd,vhdx,qcow2,vmdk,vdi\n");
  printf ("vhd_types=fixed,dynamic,differencing\n");
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
    library_error (r);
  r = reopen_image (VHD_OPEN_RDONLY, &image);
  if (r < 0) {
    /* image is NULL: every later connection is refused */
    return r == -ESTALE ? -1 : library_error (r);
  }
  return serve_ro ? 0 : -1;
}

static void *
vhd_plugin_open (int readonly)
{
  struct handle *h = malloc (sizeof *h);
  if (h == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  pthread_mutex_lock (&lock);
  if (!readonly && !image_rw) {
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
    nbdkit_error ("%s: not open since a failed reopen (see above)", filename);
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

static void
vhd_plugin_close (void *handle)
{
  struct handle *h = handle;
  pthread_mutex_lock (&lock);
  /* A client that went away without flushing still gets its metadata
   * written; the error can only be logged now. */
  if (--connections == 0 && image_rw && vhd_flush (image) < 0)
    nbdkit_error ("%s", vhd_last_error ());
  pthread_mutex_unlock (&lock);
  free (h);
}

static int64_t
vhd_plugin_get_size (void *handle)
{
  (void) handle;
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
static int
vhd_plugin_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                       uint32_t *maximum)
{
  (void) handle;
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
  return 0;
}

static int
vhd_plugin_can_write (void *handle)
{
  struct handle *h = handle;
  return h->writable;
}

static int
vhd_plugin_can_flush (void *handle)
{
  (void) handle;
  return 1;
}

static int
vhd_plugin_can_fua (void *handle)
{
  (void) handle;
  return NBDKIT_FUA_NATIVE;
}

static int
vhd_plugin_can_trim (void *handle)
{
  struct handle *h = handle;
  return h->writable && discard;
}

static int
vhd_plugin_can_zero (void *handle)
{
  (void) handle;
  return 1;
}

static int
vhd_plugin_can_fast_zero (void *handle)
{
  (void) handle;
  return 1;
}

static int
vhd_plugin_can_extents (void *handle)
{
  (void) handle;
  return 1;
}

static int
vhd_plugin_can_multi_conn (void *handle)
{
  (void) handle;
  return 1;
}

static int
vhd_plugin_can_cache (void *handle)
{
  (void) handle;
  return NBDKIT_CACHE_NATIVE;
}

/* FUA: the request is durable when it returns, which the library gives
 * only through a flush. */
static int
finish_fua (struct handle *h, uint32_t flags)
{
  if (flags & NBDKIT_FLAG_FUA) {
    int r = vhd_flush (h->img);
    if (r < 0)
      return library_error (r);
  }
  return 0;
}

static int
vhd_plugin_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                  uint32_t flags)
{
  struct handle *h = handle;
  (void) flags;
  int r = vhd_pread (h->img, buf, count, offset);
  return r < 0 ? library_error (r) : 0;
}

static int
vhd_plugin_pwrite (void *handle, const void *buf, uint32_t count,
                   uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  int r = vhd_pwrite (h->img, buf, count, offset);
  if (r < 0)
    return library_error (r);
  return finish_fua (h, flags);
}

static int
vhd_plugin_flush (void *handle, uint32_t flags)
{
  struct handle *h = handle;
  (void) flags;
  if (!h->writable && !image_rw)
    return 0;
  int r = vhd_flush (h->img);
  return r < 0 ? library_error (r) : 0;
}

static int
vhd_plugin_trim (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  struct handle *h = handle;
  int r = vhd_discard (h->img, offset, count);
  if (r < 0)
    return library_error (r);
  return finish_fua (h, flags);
}

static int
vhd_plugin_zero (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  struct handle *h = handle;
  unsigned zflags = 0;
  if ((flags & NBDKIT_FLAG_MAY_TRIM) && discard)
    zflags |= VHD_ZERO_MAY_TRIM;
  if (flags & NBDKIT_FLAG_FAST_ZERO)
    zflags |= VHD_ZERO_FAST;
  int r = vhd_zero (h->img, offset, count, zflags);
  if (r == -ENOTSUP) {
    /* Not an error worth a message: with FAST_ZERO the client falls back
     * to writing zeros, without it nbdkit does. */
    nbdkit_debug ("%s", vhd_last_error ());
    nbdkit_set_error (ENOTSUP);
    return -1;
  }
  if (r < 0)
    return library_error (r);
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

static int
vhd_plugin_extents (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  uint64_t end = offset + count;
  uint32_t first_type = UINT32_MAX;

  for (unsigned calls = 0;
       offset < end && calls < MAX_STATUS_CALLS_PER_REQUEST; calls++) {
    unsigned status;
    uint64_t run;
    int r = vhd_block_status (h->img, offset, end - offset, &status, &run,
                              NULL);
    if (r < 0)
      return library_error (r);
    if (run == 0 || run > end - offset) {
      nbdkit_error ("%s: block status returned a run of %llu bytes at %llu",
                    filename, (unsigned long long) run,
                    (unsigned long long) offset);
      nbdkit_set_error (EIO);
      return -1;
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
      return -1;
    offset += run;
  }
  return 0;
}

/* A cache hint reads the allocated parts of the range so that the host
 * has them in memory; holes have nothing to fetch. */
static int
vhd_plugin_cache (void *handle, uint32_t count, uint64_t offset,
                  uint32_t flags)
{
  struct handle *h = handle;
  (void) flags;
  char *buf = pthread_getspecific (cache_buffer_key);
  if (buf == NULL) {
    buf = malloc (CACHE_CHUNK);
    if (buf == NULL) {
      nbdkit_error ("malloc: %m");
      return -1;
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
      return library_error (r);
    if (run == 0 || run > end - offset)
      run = end - offset;
    if (status & VHD_STATUS_DATA) {
      for (uint64_t done = 0; done < run; ) {
        size_t n = run - done < CACHE_CHUNK ? run - done : CACHE_CHUNK;
        r = vhd_pread (h->img, buf, n, offset + done);
        if (r < 0)
          return library_error (r);
        done += n;
      }
    }
    offset += run;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name              = "vhd",
  .longname          = "nbdkit VHD/VHDX plugin (libvhd)",
  .version           = LIBVHD_VERSION_STRING,
  .description       = "Serve VHD, VHDX and raw disk images through libvhd",
  .load              = vhd_plugin_load,
  .unload            = vhd_plugin_unload,
  .config            = vhd_plugin_config,
  .config_complete   = vhd_plugin_config_complete,
  .config_help       = vhd_plugin_config_help,
  .magic_config_key  = "file",
  .get_ready         = vhd_plugin_get_ready,
  .after_fork        = vhd_plugin_after_fork,
  .cleanup           = vhd_plugin_cleanup,
  .dump_plugin       = vhd_plugin_dump_plugin,
  .open              = vhd_plugin_open,
  .close             = vhd_plugin_close,
  .get_size          = vhd_plugin_get_size,
  .block_size        = vhd_plugin_block_size,
  .can_write         = vhd_plugin_can_write,
  .can_flush         = vhd_plugin_can_flush,
  .can_fua           = vhd_plugin_can_fua,
  .can_trim          = vhd_plugin_can_trim,
  .can_zero          = vhd_plugin_can_zero,
  .can_fast_zero     = vhd_plugin_can_fast_zero,
  .can_extents       = vhd_plugin_can_extents,
  .can_multi_conn    = vhd_plugin_can_multi_conn,
  .can_cache         = vhd_plugin_can_cache,
  .pread             = vhd_plugin_pread,
  .pwrite            = vhd_plugin_pwrite,
  .flush             = vhd_plugin_flush,
  .trim              = vhd_plugin_trim,
  .zero              = vhd_plugin_zero,
  .extents           = vhd_plugin_extents,
  .cache             = vhd_plugin_cache,
};

NBDKIT_REGISTER_PLUGIN (plugin)
