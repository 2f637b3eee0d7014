/* SPDX-License-Identifier: BSD-3-Clause */
/* Where a differencing VHD's parent is, and whether a file is it. */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "util/guid.h"
#include "util/path.h"
#include "util/strfmt.h"
#include "util/utf16.h"

/* Locators in the order to try: the relative path survives moving a
 * directory of images, the absolute one survives moving the child alone;
 * the ANSI forms are deprecated but still found in old files. */
static const uint32_t try_order[] = {
  VHD_LOC_W2RU, VHD_LOC_W2KU, VHD_LOC_MACX, VHD_LOC_WI2R, VHD_LOC_WI2K,
};

/* Take ownership of path and add it unless empty or already listed. */
static void add_candidate(struct parent_candidates *c, char *path, const char *kind)
{
  if (!path[0] || c->count == PARENT_MAX_CANDIDATES) {
    vhd_free(path);
    return;
  }
  for (unsigned i = 0; i < c->count; i++)
    if (strcmp(c->path[i], path) == 0) {
      vhd_free(path);
      return;
    }
  c->path[c->count] = path;
  c->kind[c->count] = kind;
  c->count++;
}

int vhd_fmt_parent_candidates(struct vhd_image *img, struct parent_candidates *c)
{
  struct vhd_state *s = vhd_state(img);

  memset(c, 0, sizeof *c);
  if (s->footer.disk_type != VHD_TYPE_DIFFERENCING)
    return 0;
  for (size_t t = 0; t < sizeof try_order / sizeof *try_order; t++)
    for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++) {
      if (s->header.loc[i].code != try_order[t] || !s->loc_path[i])
        continue;
      char *p = path_from_stored(s->loc_path[i], try_order[t] == VHD_LOC_MACX);
      if (!p)
        goto nomem;
      add_candidate(c, p, vhd_locator_code_name(try_order[t]));
    }

  /* Last resort: the parent's file name next to the child. Hyper-V
   * snapshots store a whole path here, so keep only its last part. */
  char *name = utf16_to_utf8(s->header.parent_unicode_name, VHD_PARENT_NAME_BYTES, true);
  if (!name)
    goto nomem;
  char *norm = path_from_stored(name, false);
  vhd_free(name);
  if (!norm)
    goto nomem;
  char *base = vhd_strdup(path_basename(norm));
  vhd_free(norm);
  if (!base)
    goto nomem;
  add_candidate(c, base, "parent_unicode_name");
  return 0;

nomem:
  parent_candidates_free(c);
  return vhd_error(ENOMEM, "%s: out of memory listing parent locations", img->path);
}

void vhd_parent_identity(struct vhd_image *parent, uint8_t id[16], uint32_t *timestamp)
{
  if (parent->drv == &vhd_driver_vhd) {
    const struct vhd_state *ps = vhd_state(parent);
    memcpy(id, ps->footer.unique_id, 16);
    *timestamp = ps->footer.timestamp;
    return;
  }
  /* Another format: the identity its driver reports (a raw file has none,
   * which blktap also records as all zeros). */
  struct vhd_info info;
  memset(&info, 0, sizeof info);
  if (parent->drv->info)
    parent->drv->info(parent, &info);
  memcpy(id, info.id, 16);
  *timestamp = 0;
}

int vhd_fmt_parent_matches(struct vhd_image *img, struct vhd_image *candidate)
{
  struct vhd_state *s = vhd_state(img);
  uint8_t id[16];
  uint32_t ts;
  char want[37], have[37];

  static const uint8_t zero_id[16];
  bool link_is_zero = memcmp(s->header.parent_unique_id, zero_id, 16) == 0;
  /* An id of zeros names no image: it links only to a raw parent, which
   * has no id and which the chain layer takes only when raw parents are
   * allowed. A VHD whose own id is zero is no match for it. */
  if (link_is_zero)
    return candidate->drv == &vhd_driver_raw ? 0 :
      vhd_error(EINVAL, "%s: parent_unique_id is all zeros, which names no image (only a "
                "raw parent may be linked so), so %s is not its parent", img->path,
                candidate->path);
  vhd_parent_identity(candidate, id, &ts);
  /* The timestamp is not compared: producers disagree on what it means
   * and copying a file changes it. The unique id is the link. */
  if (memcmp(id, s->header.parent_unique_id, 16) == 0)
    return 0;
  uuid_format(s->header.parent_unique_id, want);
  uuid_format(id, have);
  return vhd_error(EINVAL, "%s: parent_unique_id %s does not match %s, whose unique_id is %s",
                   img->path, want, candidate->path, have);
}
