/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_set_parent: the host-file front of the drivers' set_parent. Opens
 * the child read-write without its (lost) parent, the new parent with its
 * whole chain, refuses a parent of another identity (unless told) or one
 * that would make the chain loop, resolves the paths the locators store,
 * and finally proves the result by opening the child's chain again. */
#include <stdlib.h>

#include "driver.h"
#include "error.h"
#include "image.h"
#include "util/path.h"

static int check_new_parent(struct vhd_image *child, struct vhd_image *parent,
                            unsigned flags)
{
  for (struct vhd_image *p = parent; p; p = p->parent)
    if (image_same_layer(p, child))
      return vhd_error(ELOOP, "%s: %s is this image or has it in its chain; the chain "
                       "would loop", child->path, parent->path);
  if (flags & VHD_SET_PARENT_IGNORE_ID)
    return 0;
  return child->drv->parent_matches(child, parent);
}

int vhd_set_parent(const char *child_path, const char *parent_path, unsigned flags)
{
  vhd_error_clear();
  if (flags & ~VHD_SET_PARENT_IGNORE_ID)
    return vhd_error(EINVAL, "%s: unknown set-parent flags 0x%x", child_path, flags);
  struct vhd_image *child = NULL, *parent = NULL;
  char *abs_child = NULL, *abs_parent = NULL, *child_dir = NULL, *rel = NULL;
  /* The child is read-only while the new parent's chain is opened: a chain
   * that holds the child itself (a loop) would meet the lock of a
   * read-write handle as another user's, and say so instead of "loop". */
  int r = vhd_open(child_path, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, &child);
  if (r < 0)
    return r;
  if (child->type != VHD_TYPE_DIFFERENCING) {
    r = vhd_error(EINVAL, "%s: not a differencing image, it has no parent to change",
                  child->path);
    goto out;
  }
  if (!child->drv->set_parent) {
    r = vhd_error(ENOTSUP, "%s: the %s driver cannot change a parent", child->path,
                  child->drv->name);
    goto out;
  }
  r = vhd_open(parent_path, VHD_OPEN_RDONLY, &parent);
  if (r < 0) {
    vhd_error_prefix(child_path);
    goto out;
  }
  if ((r = check_new_parent(child, parent, flags)) < 0)
    goto out;
  /* Now for writing, checked again: the file may have changed between. */
  vhd_close(child);
  r = vhd_open(child_path, VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT, &child);
  if (r < 0)
    goto out;
  if ((r = check_new_parent(child, parent, flags)) < 0)
    goto out;

  abs_parent = realpath(parent_path, NULL);
  abs_child = realpath(child_path, NULL);
  child_dir = abs_child ? path_dirname(abs_child) : NULL;
  rel = child_dir && abs_parent ? path_relative(child_dir, abs_parent) : NULL;
  if (!rel) {
    r = vhd_error(ENOMEM, "%s: cannot resolve the parent path %s", child_path, parent_path);
    goto out;
  }
  struct parent_link link = { parent, rel, abs_parent };
  r = image_lock(child, true);
  if (r == 0)
    r = image_unlock(child, child->drv->set_parent(child, &link));
  int rc = vhd_close(child);
  child = NULL;
  if (r == 0)
    r = rc;
  if (r == 0) {
    /* The proof: the child finds and accepts its parent by itself now. */
    struct vhd_image *again;
    r = vhd_open(child_path, VHD_OPEN_RDONLY, &again);
    if (r == 0)
      vhd_close(again);
  }
out:
  vhd_close(child);
  vhd_close(parent);
  free(abs_child);
  free(abs_parent);
  free(child_dir);
  free(rel);
  return r;
}
