/* SPDX-License-Identifier: BSD-3-Clause */
/* Finding and recognising the parent of a differencing VHDX: the locator's
 * paths in the spec's order, and identity by the parent's data_write_guid,
 * which changes whenever the parent is written. */
#include "vhdx.h"
#include "error.h"
#include "util/guid.h"
#include "util/path.h"
#include "util/strfmt.h"

static int add(struct parent_candidates *c, const char *stored, const char *kind,
               const char *name)
{
  if (!stored || !*stored || c->count >= PARENT_MAX_CANDIDATES)
    return 0;
  char *path = path_from_stored(stored, false);
  if (!path)
    return vhd_error(ENOMEM, "%s: out of memory", name);
  if (!*path) {
    vhd_free(path);
    return 0;
  }
  for (unsigned i = 0; i < c->count; i++)
    if (strcmp(c->path[i], path) == 0) {
      vhd_free(path);
      return 0;
    }
  c->path[c->count] = path;
  c->kind[c->count] = kind;
  c->count++;
  return 0;
}

int vhdx_parent_candidates(struct vhd_image *img, struct parent_candidates *c)
{
  struct vhdx *s = vhdx_of(img);
  const struct vhdx_locator *loc = &s->loc;
  c->count = 0;
  /* relative_path, then absolute_win32_path ("\\?\" and a drive letter
   * dropped); volume_path ("\\?\Volume{GUID}\...") means nothing here. */
  int r = add(c, loc->relative_path, "relative_path", s->path);
  if (r == 0)
    r = add(c, loc->absolute_win32_path, "absolute_win32_path", s->path);
  /* Last resort: the parent's file name next to the child. */
  for (int i = 0; r == 0 && i < 2; i++) {
    const char *stored = i == 0 ? loc->relative_path : loc->absolute_win32_path;
    if (!stored)
      continue;
    char *path = path_from_stored(stored, false);
    if (!path) {
      r = vhd_error(ENOMEM, "%s: out of memory", s->path);
      break;
    }
    r = add(c, path_basename(path), "file name next to the child", s->path);
    vhd_free(path);
  }
  if (r < 0)
    parent_candidates_free(c);
  return r;
}

int vhdx_parent_matches(struct vhd_image *img, struct vhd_image *candidate)
{
  struct vhdx *s = vhdx_of(img);
  if (candidate->drv != &vhd_driver_vhdx)
    return vhd_error(EINVAL, "%s: parent candidate %s is a %s image, not VHDX", s->path,
                     candidate->path, candidate->drv->name);
  struct vhdx *p = vhdx_of(candidate);
  const uint8_t *have = p->hdr.data_write_guid;
  static const uint8_t zero_guid[16];
  /* A zero GUID names no image: a parent whose data_write_guid is zero
   * matches no child, whatever the child's linkage says. */
  if (memcmp(have, zero_guid, 16) == 0)
    return vhd_error(EINVAL, "%s: parent candidate %s has a zero data_write_guid, which "
                     "names no image", s->path, candidate->path);
  if (memcmp(have, s->linkage, 16) != 0 &&
      !(s->has_linkage2 && memcmp(have, s->linkage2, 16) == 0)) {
    char g[37];
    guid_format_ms(have, g);
    return vhd_error(EINVAL, "%s: parent candidate %s has data_write_guid {%s}, but "
                     "parent_linkage is %s%s%s (the parent was changed after this child "
                     "was made, or it is another file)", s->path, candidate->path, g,
                     s->loc.parent_linkage, s->has_linkage2 ? " and parent_linkage2 is " : "",
                     s->has_linkage2 ? s->loc.parent_linkage2 : "");
  }
  if (p->lss != s->lss)
    return vhd_error(EINVAL, "%s: parent %s has logical sector size %u, this image %u",
                     s->path, candidate->path, p->lss, s->lss);
  return 0;
}
