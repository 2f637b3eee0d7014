/* SPDX-License-Identifier: BSD-3-Clause */
/* The metadata region: a 64 KiB table of items, the five system items
 * every VHDX has (block size and flags, virtual size, disk id, sector
 * sizes) and, for differencing images, the parent locator. */
#include "vhdx.h"
#include "error.h"
#include "util/endian.h"
#include "util/guid.h"
#include "util/strfmt.h"
#include "util/utf16.h"

#define META_IS_USER 0x1u
#define META_IS_VIRTUAL_DISK 0x2u
#define META_IS_REQUIRED 0x4u

enum { ITEM_FILE_PARAMS, ITEM_DISK_SIZE, ITEM_DISK_ID, ITEM_LSS, ITEM_PSS, ITEM_LOCATOR,
       ITEM_COUNT };

static const struct {
  const uint8_t *guid;
  const char *name;
  uint32_t min_length;
} known_items[ITEM_COUNT] = {
  [ITEM_FILE_PARAMS] = { vhdx_guid_file_parameters, "File Parameters", 8 },
  [ITEM_DISK_SIZE] = { vhdx_guid_virtual_disk_size, "Virtual Disk Size", 8 },
  [ITEM_DISK_ID] = { vhdx_guid_virtual_disk_id, "Virtual Disk ID", 16 },
  [ITEM_LSS] = { vhdx_guid_logical_sector_size, "Logical Sector Size", 4 },
  [ITEM_PSS] = { vhdx_guid_physical_sector_size, "Physical Sector Size", 4 },
  [ITEM_LOCATOR] = { vhdx_guid_parent_locator, "Parent Locator", 20 },
};

struct item_ref {
  bool present;
  uint32_t offset;
  uint32_t length;
};

void vhdx_locator_free(struct vhdx_locator *loc)
{
  vhd_free(loc->parent_linkage);
  vhd_free(loc->parent_linkage2);
  vhd_free(loc->relative_path);
  vhd_free(loc->volume_path);
  vhd_free(loc->absolute_win32_path);
  memset(loc, 0, sizeof *loc);
}

/* Read one item (length <= 1 MiB, checked) into a new buffer. */
static int read_item(struct vhdx *s, const struct item_ref *it, uint8_t **out)
{
  *out = vhd_malloc(it->length ? it->length : 1);
  if (!*out)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  int r = vhdx_meta_read(s, *out, it->length, s->reg.meta_offset + it->offset);
  if (r < 0) {
    vhd_free(*out);
    *out = NULL;
  }
  return r;
}

int vhdx_parse_locator(struct vhdx *s, const uint8_t *item, uint32_t len, struct vhd_diag *d)
{
  struct vhdx_locator *loc = &s->loc;
  if (len < 20)
    return vhdx_fatal(d, "%s: parent locator of %u bytes is shorter than its header",
                      s->path, len);
  if (memcmp(item, vhdx_guid_locator_type_vhdx, 16) != 0) {
    char g[37];
    guid_format_ms(item, g);
    if (d)
      diag_corrupt(d, "%s: parent locator type {%s} is not the VHDX locator type", s->path, g);
    return vhd_error(ENOTSUP, "%s: parent locator type {%s} is not the VHDX locator type",
                     s->path, g);
  }
  uint16_t count = get_le16(item + 18);
  if (20 + 12 * (uint32_t)count > len)
    return vhdx_fatal(d, "%s: parent locator key_value_count %u does not fit in its %u "
                      "bytes", s->path, count, len);
  loc->present = true;
  for (uint16_t i = 0; i < count; i++) {
    const uint8_t *e = item + 20 + 12 * (size_t)i;
    uint32_t koff = get_le32(e), voff = get_le32(e + 4);
    uint16_t klen = get_le16(e + 8), vlen = get_le16(e + 10);
    if (koff == 0 || voff == 0 || klen == 0 || vlen == 0 || klen % 2 || vlen % 2 ||
        koff > len || klen > len - koff || voff > len || vlen > len - voff) {
      int r = diag_corrupt(d, "%s: parent locator entry %u (key at %u, %u bytes; value at "
                           "%u, %u bytes) is not inside the %u-byte item", s->path, i, koff,
                           klen, voff, vlen, len);
      if (r < 0)
        return r;
      continue;
    }
    char *key = utf16_to_utf8(item + koff, klen, false);
    char *value = utf16_to_utf8(item + voff, vlen, false);
    if (!key || !value) {
      vhd_free(key);
      vhd_free(value);
      return vhd_error(ENOMEM, "%s: out of memory", s->path);
    }
    char **slot = NULL;
    if (strcmp(key, "parent_linkage") == 0)
      slot = &loc->parent_linkage;
    else if (strcmp(key, "parent_linkage2") == 0)
      slot = &loc->parent_linkage2;
    else if (strcmp(key, "relative_path") == 0)
      slot = &loc->relative_path;
    else if (strcmp(key, "volume_path") == 0)
      slot = &loc->volume_path;
    else if (strcmp(key, "absolute_win32_path") == 0)
      slot = &loc->absolute_win32_path;
    if (slot && *slot) {
      int r = diag_corrupt(d, "%s: parent locator key \"%s\" appears twice", s->path, key);
      vhd_free(key);
      vhd_free(value);
      if (r < 0)
        return r;
      continue;
    }
    vhd_free(key);
    if (slot)
      *slot = value;
    else
      vhd_free(value);   /* keys we do not know are not needed to find the parent */
  }
  if (!loc->parent_linkage)
    return vhdx_fatal(d, "%s: parent locator has no parent_linkage", s->path);
  if (!guid_parse_ms(loc->parent_linkage, s->linkage))
    return vhdx_fatal(d, "%s: parent locator parent_linkage \"%s\" is not a GUID", s->path,
                      loc->parent_linkage);
  if (loc->parent_linkage2) {
    s->has_linkage2 = guid_parse_ms(loc->parent_linkage2, s->linkage2);
    if (!s->has_linkage2)
      vhdx_warn(s, d, "%s: parent locator parent_linkage2 \"%s\" is not a GUID", s->path,
                loc->parent_linkage2);
  }
  if (!loc->relative_path && !loc->volume_path && !loc->absolute_win32_path)
    vhdx_warn(s, d, "%s: parent locator has no relative_path, volume_path or "
              "absolute_win32_path", s->path);
  return 0;
}

/* Walk the table: bounds, duplicates, overlaps, required items. */
static int parse_table(struct vhdx *s, const uint8_t *t, struct item_ref items[ITEM_COUNT],
                       struct vhd_diag *d)
{
  if (memcmp(t, "metadata", 8) != 0)
    return vhdx_fatal(d, "%s: metadata table signature is not \"metadata\"", s->path);
  uint16_t count = get_le16(t + 10);
  if (count > VHDX_META_MAX_ENTRIES)
    return vhdx_fatal(d, "%s: metadata table entry_count %u is more than %u", s->path, count,
                      VHDX_META_MAX_ENTRIES);
  unsigned user = 0;
  for (uint16_t i = 0; i < count; i++) {
    const uint8_t *e = t + 32 + 32 * (size_t)i;
    uint32_t off = get_le32(e + 16), len = get_le32(e + 20), flags = get_le32(e + 24);
    char g[37];
    guid_format_ms(e, g);
    if (len > VHDX_META_MAX_ITEM)
      return vhdx_fatal(d, "%s: metadata item {%s} length %u is more than 1 MiB", s->path,
                        g, len);
    if (len == 0 && off != 0)
      vhdx_warn(s, d, "%s: empty metadata item {%s} has offset %u (should be 0)", s->path,
                g, off);
    if (len && (off < VHDX_META_TABLE_SIZE || off > s->reg.meta_length ||
                len > s->reg.meta_length - off))
      return vhdx_fatal(d, "%s: metadata item {%s} (offset %u, length %u) is outside the "
                        "metadata region (%u bytes after its 64 KiB table)", s->path, g, off,
                        len, s->reg.meta_length - VHDX_META_TABLE_SIZE);
    for (uint16_t j = 0; j < i; j++) {
      const uint8_t *o = t + 32 + 32 * (size_t)j;
      uint32_t ooff = get_le32(o + 16), olen = get_le32(o + 20);
      if (memcmp(o, e, 16) == 0 &&
          ((get_le32(o + 24) ^ flags) & META_IS_USER) == 0)
        return vhdx_fatal(d, "%s: metadata item {%s} is listed twice", s->path, g);
      if (len && olen && off < ooff + olen && ooff < off + len) {
        int r = diag_corrupt(d, "%s: metadata item {%s} (offset %u, length %u) overlaps "
                             "another item (offset %u, length %u)", s->path, g, off, len,
                             ooff, olen);
        if (r < 0)
          return r;
      }
    }
    if (flags & META_IS_USER) {
      if (++user > 1024)
        return vhdx_fatal(d, "%s: metadata table has more than 1024 user items", s->path);
    }
    int known = -1;
    if (!(flags & META_IS_USER))
      for (int k = 0; k < ITEM_COUNT; k++)
        if (memcmp(e, known_items[k].guid, 16) == 0)
          known = k;
    if (known < 0) {
      if (flags & META_IS_REQUIRED) {
        if (d)
          diag_corrupt(d, "%s: unknown %s metadata item {%s} is marked required", s->path,
                       flags & META_IS_USER ? "user" : "system", g);
        return vhd_error(ENOTSUP, "%s: unknown %s metadata item {%s} is marked required",
                         s->path, flags & META_IS_USER ? "user" : "system", g);
      }
      continue;
    }
    if (len < known_items[known].min_length)
      return vhdx_fatal(d, "%s: metadata item %s is %u bytes, needs %u", s->path,
                        known_items[known].name, len, known_items[known].min_length);
    items[known].present = true;
    items[known].offset = off;
    items[known].length = len;
  }
  return 0;
}

int vhdx_load_metadata(struct vhdx *s, struct vhd_diag *d)
{
  struct item_ref items[ITEM_COUNT];
  memset(items, 0, sizeof items);
  uint8_t *table = vhd_malloc(VHDX_META_TABLE_SIZE);
  if (!table)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  int r = vhdx_meta_read(s, table, VHDX_META_TABLE_SIZE, s->reg.meta_offset);
  if (r == 0)
    r = parse_table(s, table, items, d);
  vhd_free(table);
  if (r < 0)
    return r;

  for (int k = 0; k < ITEM_LOCATOR; k++)
    if (!items[k].present)
      return vhdx_fatal(d, "%s: metadata has no %s item", s->path, known_items[k].name);

  /* The small system items. */
  uint8_t v[16];
  r = vhdx_meta_read(s, v, 8, s->reg.meta_offset + items[ITEM_FILE_PARAMS].offset);
  if (r < 0)
    return r;
  s->block_size = get_le32(v);
  uint32_t fp_flags = get_le32(v + 4);
  s->leave_allocated = fp_flags & 1;
  s->has_parent = (fp_flags >> 1) & 1;
  if (fp_flags & ~3u)
    vhdx_warn(s, d, "%s: File Parameters has reserved flag bits set (0x%x)", s->path,
              fp_flags);
  r = vhdx_meta_read(s, v, 8, s->reg.meta_offset + items[ITEM_DISK_SIZE].offset);
  if (r < 0)
    return r;
  s->virtual_size = get_le64(v);
  s->disk_id_offset = s->reg.meta_offset + items[ITEM_DISK_ID].offset;
  r = vhdx_meta_read(s, s->disk_id, 16, s->disk_id_offset);
  if (r == 0)
    r = vhdx_meta_read(s, v, 4, s->reg.meta_offset + items[ITEM_LSS].offset);
  if (r < 0)
    return r;
  s->lss = get_le32(v);
  r = vhdx_meta_read(s, v, 4, s->reg.meta_offset + items[ITEM_PSS].offset);
  if (r < 0)
    return r;
  s->pss = get_le32(v);

  if (s->block_size < VHDX_MIN_BLOCK || s->block_size > VHDX_MAX_BLOCK ||
      (s->block_size & (s->block_size - 1)))
    return vhdx_fatal(d, "%s: File Parameters block_size %u is not a power of two from "
                      "1 MiB to 256 MiB", s->path, s->block_size);
  if (!sector_size_valid(s->lss))
    return vhdx_fatal(d, "%s: Logical Sector Size %u is not 512 or 4096", s->path, s->lss);
  if (!sector_size_valid(s->pss)) {
    r = diag_corrupt(d, "%s: Physical Sector Size %u is not 512 or 4096", s->path, s->pss);
    if (r < 0)
      return r;
    s->pss = 4096;
  }
  if (s->virtual_size == 0 || s->virtual_size > VHDX_MAX_VIRTUAL_SIZE ||
      s->virtual_size % s->lss)
    return vhdx_fatal(d, "%s: Virtual Disk Size %llu is not a non-zero multiple of the "
                      "logical sector size %u up to 64 TiB", s->path,
                      (unsigned long long)s->virtual_size, s->lss);

  if (s->has_parent) {
    if (!items[ITEM_LOCATOR].present)
      return vhdx_fatal(d, "%s: File Parameters has_parent is set but there is no parent "
                        "locator", s->path);
    uint8_t *item;
    r = read_item(s, &items[ITEM_LOCATOR], &item);
    if (r < 0)
      return r;
    r = vhdx_parse_locator(s, item, items[ITEM_LOCATOR].length, d);
    vhd_free(item);
    if (r < 0)
      return r;
  } else if (items[ITEM_LOCATOR].present) {
    diag_info(d, "%s: a parent locator is present but has_parent is not set; ignored",
              s->path);
  }
  return 0;
}
