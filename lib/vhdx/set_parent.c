/* SPDX-License-Identifier: BSD-3-Clause */
/* Pointing a differencing VHDX at a new parent file: the parent locator
 * item is rewritten (parent_linkage from the new parent's data_write_guid,
 * relative_path, absolute_win32_path) through the log, so a crash leaves
 * the old locator or the new one, never a mix. Keys that named the old
 * place (volume_path, parent_linkage2) are dropped. The child's data does
 * not change, so its own data_write_guid - which children of this image
 * link to - stays; only file_write_guid is renewed. */
#include "vhdx.h"
#include "error.h"
#include "util/endian.h"

/* Big enough for two paths of 32767 UTF-16 units plus the keys. */
#define ITEM_CAP (160u * VHDX_KIB)

/* Where the new item of len bytes goes: in place when it fits before the
 * next item, else after the last item. *entry gets the table entry's
 * offset inside the table. */
static int place_item(struct vhdx *s, const uint8_t *table, uint32_t len, size_t *entry,
                      uint32_t *old_off, uint32_t *old_len, uint32_t *new_off)
{
  uint16_t count = get_le16(table + 10);
  if (count > VHDX_META_MAX_ENTRIES)
    count = VHDX_META_MAX_ENTRIES;
  bool found = false;
  for (uint16_t i = 0; i < count && !found; i++) {
    const uint8_t *e = table + 32 + 32 * (size_t)i;
    if (memcmp(e, vhdx_guid_parent_locator, 16) == 0 && !(get_le32(e + 24) & 1)) {
      *entry = 32 + 32 * (size_t)i;
      *old_off = get_le32(e + 16);
      *old_len = get_le32(e + 20);
      found = true;
    }
  }
  if (!found)
    return vhd_error(EINVAL, "%s: the metadata table has no parent locator item", s->path);
  uint64_t next = s->reg.meta_length, last = VHDX_META_TABLE_SIZE;
  for (uint16_t i = 0; i < count; i++) {
    const uint8_t *e = table + 32 + 32 * (size_t)i;
    uint32_t off = get_le32(e + 16), l = get_le32(e + 20);
    if (32 + 32 * (size_t)i == *entry || l == 0)
      continue;
    if (off > *old_off && off < next)
      next = off;
    if ((uint64_t)off + l > last)
      last = (uint64_t)off + l;
  }
  if (*old_off >= VHDX_META_TABLE_SIZE && (uint64_t)*old_off + len <= next) {
    *new_off = *old_off;
    return 0;
  }
  if (last + len > s->reg.meta_length)
    return vhd_error(ENOSPC, "%s: the metadata region has no room for a parent locator of "
                     "%u bytes", s->path, len);
  *new_off = (uint32_t)last;
  return 0;
}

static int rewrite_locator(struct vhdx *s, const uint8_t *item, uint32_t len)
{
  uint8_t *table = vhd_malloc(VHDX_META_TABLE_SIZE);
  if (!table)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  size_t entry = 0;
  uint32_t old_off = 0, old_len = 0, new_off = 0;
  int r = vhdx_meta_read(s, table, VHDX_META_TABLE_SIZE, s->reg.meta_offset);
  if (r == 0)
    r = place_item(s, table, len, &entry, &old_off, &old_len, &new_off);
  if (r == 0) {
    /* In place, a shorter item leaves no stale bytes of the old one. */
    uint32_t span = new_off == old_off && old_len > len ? old_len : len;
    uint8_t *buf = vhd_calloc(1, span);
    if (!buf) {
      r = vhd_error(ENOMEM, "%s: out of memory", s->path);
    } else {
      memcpy(buf, item, len);
      r = vhdx_meta_write(s, s->reg.meta_offset + new_off, buf, span);
      vhd_free(buf);
    }
  }
  if (r == 0) {
    uint8_t e[8];
    put_le32(e, new_off);
    put_le32(e + 4, len);
    r = vhdx_meta_write(s, s->reg.meta_offset + entry + 16, e, sizeof e);
  }
  vhd_free(table);
  return r;
}

int vhdx_set_parent(struct vhd_image *img, const struct parent_link *parent)
{
  struct vhdx *s = vhdx_of(img);
  if (!s->has_parent)
    return vhd_error(EINVAL, "%s: not a differencing image, it has no parent to change",
                     s->path);
  struct vhd_image *pi = parent->image;
  if (pi->drv != &vhd_driver_vhdx)
    return vhd_error(EINVAL, "%s: a VHDX differencing image needs a VHDX parent, and %s is "
                     "%s", s->path, pi->path, pi->drv->name);
  if (vhdx_of(pi)->lss != s->lss)
    return vhd_error(EINVAL, "%s: parent %s has logical sector size %u, this image %u",
                     s->path, pi->path, vhdx_of(pi)->lss, s->lss);

  uint8_t *item = vhd_calloc(1, ITEM_CAP);
  if (!item)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  uint32_t len = 0;
  int r = vhdx_encode_parent_locator(s->path, parent, item, ITEM_CAP, &len);
  if (r == 0) {
    r = rewrite_locator(s, item, len);
    /* Half-laid changes must never reach the file with a later flush. */
    if (r < 0)
      s->broken = true;
  }
  /* The file changes: a new file_write_guid before the first write. */
  if (r == 0 && !s->guids_updated)
    r = vhdx_header_update(s, VHDX_NEW_FILE_GUID, NULL);
  if (r == 0)
    r = vhdx_log_commit(s);
  if (r == 0) {
    vhdx_locator_free(&s->loc);
    s->has_linkage2 = false;
    r = vhdx_parse_locator(s, item, len, NULL);
    s->parent_hint = s->loc.relative_path ? s->loc.relative_path : s->loc.absolute_win32_path;
  }
  vhd_free(item);
  return r;
}
