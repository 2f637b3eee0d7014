/* SPDX-License-Identifier: BSD-3-Clause */
/* nbdkit-vhd-plugin: serve a VHD, VHDX or raw image over NBD through
 * libvhd. Everything about the formats lives in the library, everything
 * about serving an image in serve.c (shared with nbdkit-vhd-filter); this
 * file only knows that the image is a host file, named by file=.
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
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"
#include "vhd.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static char *filename;

/* A plugin reports an error's errno through nbdkit_set_error. */
static int
result (int r)
{
  if (r >= 0)
    return 0;
  nbdkit_set_error (-r);
  return -1;
}

static int
open_image (unsigned flags, vhd_image **out)
{
  struct vhd_open_params p;
  serve_open_params (flags, &p);
  return vhd_open_with (filename, &p, out);
}

static void
vhd_plugin_load (void)
{
  serve_load ();
}

static void
vhd_plugin_unload (void)
{
  free (filename);
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
  int r = serve_config (key, value);
  if (r != 0)
    return r < 0 ? -1 : 0;
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
  serve_set_source (open_image, filename);
  return 0;
}

#define vhd_plugin_config_help \
  "[file=]<IMAGE>      (required) VHD, VHDX or raw image to serve.\n" \
  SERVE_CONFIG_HELP

static int
vhd_plugin_get_ready (void)
{
  return result (serve_validate ());
}

static int
vhd_plugin_after_fork (void)
{
  return result (serve_start ());
}

static void
vhd_plugin_cleanup (void)
{
  serve_stop ();
}

static void
vhd_plugin_dump_plugin (void)
{
  printf ("vhd_libvhd_version=%s\n", vhd_version ());
  printf ("vhd_formats=raw,vhd,vhdx,qcow2,vmdk,vdi\n");
  printf ("vhd_types=fixed,dynamic,differencing\n");
}

static void *
vhd_plugin_open (int readonly)
{
  return serve_connect (readonly, true);
}

static void
vhd_plugin_close (void *handle)
{
  serve_disconnect (handle);
}

static int64_t
vhd_plugin_get_size (void *handle)
{
  (void) handle;
  return serve_get_size ();
}

static int
vhd_plugin_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                       uint32_t *maximum)
{
  (void) handle;
  serve_block_size (minimum, preferred, maximum);
  return 0;
}

static int
vhd_plugin_can_write (void *handle)
{
  struct serve_handle *h = handle;
  return h->writable;
}

static int
vhd_plugin_can_trim (void *handle)
{
  return serve_can_trim (handle);
}

/* Flush, zero, fast zero, extents, multi-conn: always. */
static int
vhd_plugin_can_always (void *handle)
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
vhd_plugin_can_cache (void *handle)
{
  (void) handle;
  return NBDKIT_CACHE_NATIVE;
}

static int
vhd_plugin_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                  uint32_t flags)
{
  (void) flags;
  return result (serve_pread (handle, buf, count, offset));
}

static int
vhd_plugin_pwrite (void *handle, const void *buf, uint32_t count,
                   uint64_t offset, uint32_t flags)
{
  return result (serve_pwrite (handle, buf, count, offset, flags));
}

static int
vhd_plugin_flush (void *handle, uint32_t flags)
{
  (void) flags;
  return result (serve_flush (handle));
}

static int
vhd_plugin_trim (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  return result (serve_trim (handle, count, offset, flags));
}

static int
vhd_plugin_zero (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  return result (serve_zero (handle, count, offset, flags));
}

static int
vhd_plugin_extents (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags, struct nbdkit_extents *extents)
{
  return result (serve_extents (handle, count, offset, flags, extents));
}

static int
vhd_plugin_cache (void *handle, uint32_t count, uint64_t offset,
                  uint32_t flags)
{
  (void) flags;
  return result (serve_cache (handle, count, offset));
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
  .can_flush         = vhd_plugin_can_always,
  .can_fua           = vhd_plugin_can_fua,
  .can_trim          = vhd_plugin_can_trim,
  .can_zero          = vhd_plugin_can_always,
  .can_fast_zero     = vhd_plugin_can_always,
  .can_extents       = vhd_plugin_can_always,
  .can_multi_conn    = vhd_plugin_can_always,
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
