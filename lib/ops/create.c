/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_create: the host-file front of image creation. Resolves the parent's
 * absolute and relative paths for the locators, and removes a half-made
 * file on failure. */
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "driver.h"
#include "error.h"
#include "image.h"
#include "sized.h"
#include "io.h"
#include "util/path.h"
#include "util/strfmt.h"

/* Absolute, normalised path of a file that may not exist yet: its
 * directory must. */
static char *absolute_path(const char *path)
{
  char *dir = path_dirname(path);
  char *real_dir = dir ? realpath(dir, NULL) : NULL;
  char *r = real_dir ? path_join(real_dir, path_basename(path)) : NULL;
  free(dir);
  free(real_dir);
  return r;
}

int vhd_create(const char *path, const struct vhd_create_params *in, vhd_image **out)
{
  vhd_error_clear();
  if (out)
    *out = NULL;
  struct vhd_create_params params;
  const struct vhd_create_params *p = &params;
  struct parent_link link = { NULL, NULL, NULL };
  char *abs_parent = NULL, *abs_child = NULL, *child_dir = NULL, *rel = NULL;
  int r = create_params_take(in, &params);
  if (r < 0)
    return r;
  if (p->parent) {
    r = vhd_open(p->parent, VHD_OPEN_RDONLY, &link.image);
    if (r < 0) {
      vhd_error_prefix(path);
      return r;
    }
    abs_parent = realpath(p->parent, NULL);
    abs_child = absolute_path(path);
    child_dir = abs_child ? path_dirname(abs_child) : NULL;
    rel = child_dir && abs_parent ? path_relative(child_dir, abs_parent) : NULL;
    if (!rel) {
      r = vhd_error(ENOMEM, "%s: cannot resolve the parent path %s", path, p->parent);
      goto out;
    }
    link.absolute = abs_parent;
    link.relative = rel;
  }
  vhd_io *io;
  unsigned ioflags = VHD_IO_RDWR | VHD_IO_CREATE |
                     ((p->flags & VHD_CREATE_OVERWRITE) ? VHD_IO_TRUNC : 0);
  r = vhd_io_open_file(path, ioflags, &io);
  if (r < 0)
    goto out;
  r = create_on_io(io, p, p->parent ? &link : NULL, out);
  if (r < 0)
    io_remove_output(path);
out:
  vhd_close(link.image);
  free(abs_parent);
  free(abs_child);
  free(child_dir);
  free(rel);
  return r;
}
