/* SPDX-License-Identifier: BSD-3-Clause */
/* Which layer of a chain a file holds: one same-file rule for every
 * operation that must not write over what it reads (convert, merge) and
 * for the tools (vhd_chain_layer_of). */
#include <sys/stat.h>

#include "image.h"
#include "util/path.h"

bool path_same_file(const char *a, const char *b)
{
  struct stat sa, sb;
  return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

int vhd_chain_layer_of(vhd_image *img, const char *path)
{
  int depth = 0;
  for (struct vhd_image *l = img; l; l = l->parent, depth++)
    if (path_same_file(l->path, path))
      return depth;
  return -ENOENT;
}
