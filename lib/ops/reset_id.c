/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_reset_id: a new unique id for an image, in place. The format's part
 * (which fields, in which crash-safe order) is the driver's reset_id; here
 * the guard: differencing images beside this one whose parent link names
 * its id would lose their parent, so they are looked for first. Children
 * elsewhere cannot be found; the documentation says so. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "driver.h"
#include "error.h"
#include "image.h"
#include "util/path.h"

#define NAMES_SHOWN 5

/* Whether the file at path is a differencing image whose parent link
 * names img. Nothing it meets is an error: most files are not images. */
static bool is_child_of(struct vhd_image *img, const char *path)
{
  struct vhd_image *c = NULL;
  bool child = false;
  if (!path_same_file(path, img->path) &&
      vhd_open(path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT | VHD_OPEN_FORCE_SHARE, &c) == 0)
    child = c->type == VHD_TYPE_DIFFERENCING && c->drv == img->drv &&
            c->drv->parent_matches(c, img) == 0;
  vhd_close(c);
  vhd_error_clear();
  return child;
}

/* -EBUSY naming the children found in img's directory, 0 when none. */
static int refuse_if_children(struct vhd_image *img)
{
  char *dir = path_dirname(img->path);
  DIR *d = dir ? opendir(dir) : NULL;
  if (!d) {
    free(dir);
    return 0;  /* nothing to look through: no child can be named */
  }
  char names[NAMES_SHOWN * 80] = "";
  size_t used = 0;
  unsigned found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN && e->d_type != DT_LNK)
      continue;
    char *p = path_join(dir, e->d_name);
    if (p && is_child_of(img, p)) {
      if (found < NAMES_SHOWN && used < sizeof names) {
        int n = snprintf(names + used, sizeof names - used, "%s%s", found ? ", " : "", p);
        used += n > 0 ? (size_t)n : 0;
      }
      found++;
    }
    free(p);
  }
  closedir(d);
  free(dir);
  if (found == 0)
    return 0;
  char more[48] = "";
  if (found > NAMES_SHOWN)
    snprintf(more, sizeof more, " and %u more", found - NAMES_SHOWN);
  return vhd_error(EBUSY, "%s: differencing images link to its id and would lose their "
                   "parent: %s%s", img->path, names, more);
}

int vhd_reset_id(const char *path, unsigned flags)
{
  vhd_error_clear();
  if (flags & ~VHD_RESET_ID_FORCE)
    return vhd_error(EINVAL, "%s: unknown reset-id flags 0x%x", path, flags);
  struct vhd_image *img = NULL;
  int r = vhd_open(path, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT, &img);
  if (r < 0)
    return r;
  if (!img->drv->reset_id)
    r = vhd_error(ENOTSUP, "%s: a %s image has no unique id", img->path, img->drv->name);
  if (r == 0 && !(flags & VHD_RESET_ID_FORCE))
    r = refuse_if_children(img);
  if (r == 0) {
    r = image_lock(img, true);
    if (r == 0)
      r = image_unlock(img, img->drv->reset_id(img));
  }
  int rc = vhd_close(img);
  return r < 0 ? r : rc;
}
