/* SPDX-License-Identifier: BSD-3-Clause */
/* The options that say how images and their parents are opened. Every
 * command that opens an existing image takes the same set, parsed here and
 * turned into one struct vhd_open_params, so the policy reads the same
 * everywhere (docs/vhdtool.md, "Untrusted images"). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "vhdtool.h"

static struct vhd_open_params settings;
static bool settings_ready;

/* --parent-uri, in order (parent, grandparent, ...), NULL-terminated. */
#define MAX_PARENT_URIS 32
static const char *parent_uris[MAX_PARENT_URIS + 1];
static unsigned n_parent_uris;

static struct vhd_open_params *current(void)
{
  if (!settings_ready) {
    vhd_open_params_init(&settings);
    settings_ready = true;
  }
  return &settings;
}

/* true when c is one of the options (taken; *status EXIT_OK, or the usage
 * error printed). */
static bool take_open_option(const char *cmd, int c, const char *arg, int *status)
{
  struct vhd_open_params *p = current();
  *status = EXIT_OK;
  switch (c) {
  case OPT_NO_PARENT:
    p->flags |= VHD_OPEN_NO_PARENT;
    return true;
  case OPT_PARENT_DIR:
    if (!arg || !*arg) {
      *status = usage_error(cmd, "--parent-dir needs a directory");
      return true;
    }
    p->parent_dir = arg;
    return true;
  case OPT_RAW_PARENT:
    p->flags |= VHD_OPEN_RAW_PARENT;
    return true;
  case OPT_PARENT_URI:
    if (!arg || !vhd_is_nbd_uri(arg)) {
      *status = usage_error(cmd, "--parent-uri needs an NBD URI (nbd://, nbd+unix://)");
      return true;
    }
    if (n_parent_uris == MAX_PARENT_URIS) {
      *status = usage_error(cmd, "--parent-uri given more than %d times", MAX_PARENT_URIS);
      return true;
    }
    parent_uris[n_parent_uris++] = arg;
    return true;
  case OPT_FORCE_SHARE:
    p->flags |= VHD_OPEN_FORCE_SHARE;
    return true;
  default:
    return false;
  }
}

bool open_option_or_error(const char *cmd, int c, char **argv,
                          const struct option *options, int *status)
{
  if (take_open_option(cmd, c, optarg, status))
    return *status == EXIT_OK;
  *status = option_error(cmd, c, argv, options);
  return false;
}

struct vhd_open_params open_params(unsigned flags)
{
  struct vhd_open_params p = *current();
  p.flags |= flags;
  return p;
}

bool force_share_requested(void)
{
  return (current()->flags & VHD_OPEN_FORCE_SHARE) != 0;
}

int open_nbd_io(const char *uri, unsigned io_flags, vhd_io **io)
{
  return vhd_io_open_nbd(uri, parent_uris, io_flags, io);
}

int open_with_options(const char *path, unsigned flags, vhd_image **img)
{
  struct vhd_open_params p = open_params(flags);
  if (!vhd_is_nbd_uri(path))
    return vhd_open_with(path, &p, img);
  vhd_io *io;
  int r = open_nbd_io(path, (flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : VHD_IO_RDONLY, &io);
  if (r < 0)
    return r;
  /* Directories confine host paths; a remote image's parents are only
   * ever the --parent-uri exports, checked by identity. */
  p.flags &= ~VHD_OPEN_PARENTS_BESIDE;
  p.parent_dir = NULL;
  return vhd_open_io_with(io, &p, img);
}

const char open_options_help[] =
  "\n"
  "Where parents come from (see \"Untrusted images\" in docs/vhdtool.md):\n"
  "      --no-parent       open the image alone, without its parent chain\n"
  "      --parent-dir DIR  take parents only from DIR and below it\n"
  "      --raw-parent      let a raw file be the parent of a VHD whose parent\n"
  "                        id is zero (never done otherwise)\n"
  "      --parent-uri URI  an image given as an NBD URI: its parent's URI\n"
  "                        (repeat for the grandparent, ...)\n"
  "  -U, --force-share     read-only: open an image another process holds\n"
  "                        (what is read may be inconsistent)\n";
