/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_open and vhd_open_with: the host-file front of the image layer.
 * When parents are confined, both the image's path and the allowed
 * directories become real absolute paths first, so that a locator is
 * judged against the directory the child really is in, and a symbolic
 * link on the way cannot make "beside" mean somewhere else. */
#include <limits.h>
#include <stdlib.h>

#include "error.h"
#include "image.h"
#include "sized.h"
#include "util/strfmt.h"

static bool confined(const struct vhd_open_params *p)
{
  return (p->flags & VHD_OPEN_PARENTS_BESIDE) || p->parent_dir;
}

static unsigned io_flags_for(unsigned open_flags)
{
  return ((open_flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : VHD_IO_RDONLY) |
         ((open_flags & VHD_OPEN_FORCE_SHARE) ? VHD_IO_NOLOCK : 0);
}

/* realpath() with the message this library gives for a failed open. */
static int real(const char *path, const char *what, char **out)
{
  *out = realpath(path, NULL);
  if (!*out)
    return vhd_error(errno, "%s%s: %s", what, path, strerror(errno));
  return 0;
}

/* Opens the file at path for the top of a chain opened with p, and the
 * roots its parents must lie in (NULL: anywhere). When confined, the file
 * is opened by its real path, which then names it in messages. */
int open_top_file(const char *path, const struct vhd_open_params *p, unsigned io_flags,
                  vhd_io **io, struct parent_roots **roots)
{
  *io = NULL;
  *roots = NULL;
  if (!confined(p))
    return vhd_io_open_file(path, io_flags, io);

  char *top = NULL, *dir = NULL;
  int r = real(path, "", &top);
  if (r == 0 && p->parent_dir)
    r = real(p->parent_dir, "parent directory ", &dir);
  if (r == 0) {
    struct vhd_open_params q = *p;
    q.parent_dir = dir;
    r = parent_roots_new(&q, top, roots);
  }
  if (r == 0)
    r = vhd_io_open_file(top, io_flags, io);
  if (r < 0) {
    parent_roots_free(*roots);
    *roots = NULL;
  }
  free(top);
  free(dir);
  return r;
}

int vhd_open_with(const char *path, const struct vhd_open_params *in, vhd_image **out)
{
  vhd_error_clear();
  *out = NULL;
  struct vhd_open_params params;
  const struct vhd_open_params *p = &params;
  vhd_io *io;
  struct parent_roots *roots;
  int r = open_params_take(in, &params);
  if (r == 0)
    r = open_top_file(path, p, io_flags_for(p->flags), &io, &roots);
  if (r < 0)
    return r;
  r = image_open_chain(io, p, roots, out);
  parent_roots_free(roots);
  return r;
}

int vhd_open(const char *path, unsigned flags, vhd_image **out)
{
  struct vhd_open_params p;
  vhd_open_params_init(&p);
  p.flags = flags;
  return vhd_open_with(path, &p, out);
}
