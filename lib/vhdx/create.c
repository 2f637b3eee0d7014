/* SPDX-License-Identifier: BSD-3-Clause */
/* Creating a VHDX file. Layout, every part 1 MiB aligned:
 *   0        file identifier, two headers, two region tables
 *   1 MiB    log (1 MiB)
 *   2 MiB    metadata region (1 MiB)
 *   3 MiB    BAT region
 *   then     payload blocks (a fixed file has them all, contiguous and
 *            sparse on the host; the others grow at the end)
 */
#include "vhdx.h"
#include "error.h"
#include "util/endian.h"
#include "util/guid.h"
#include "util/utf16.h"

#define CREATOR "libvhd " LIBVHD_VERSION_STRING
#define LOG_OFFSET VHDX_MIB
#define LOG_LENGTH VHDX_MIB
#define META_OFFSET (2u * VHDX_MIB)
#define META_LENGTH VHDX_MIB
#define BAT_OFFSET (3u * VHDX_MIB)

/* A key/value pair of the parent locator, encoded. */
struct kv {
  const char *key;
  char *value;
};

/* '/' separators become '\', as the locator stores Windows paths. */
static char *to_backslashes(const char *path)
{
  size_t n = strlen(path);
  char *r = vhd_malloc(n + 1);
  if (!r)
    return NULL;
  for (size_t i = 0; i <= n; i++)
    r[i] = path[i] == '/' ? '\\' : path[i];
  return r;
}

/* Encode the VHDX parent locator into item (at most cap bytes). */
static int build_locator(const char *name, const struct kv *kv, unsigned n, uint8_t *item,
                         size_t cap, uint32_t *len)
{
  memcpy(item, vhdx_guid_locator_type_vhdx, 16);
  put_le16(item + 16, 0);
  put_le16(item + 18, (uint16_t)n);
  size_t pos = 20 + 12 * (size_t)n;
  for (unsigned i = 0; i < n; i++) {
    uint8_t *e = item + 20 + 12 * (size_t)i;
    int klen = utf8_to_utf16(kv[i].key, item + pos, cap - pos, false);
    if (klen <= 0)
      return vhd_error(EINVAL, "%s: cannot store parent locator key %s", name, kv[i].key);
    put_le32(e, (uint32_t)pos);
    put_le16(e + 8, (uint16_t)klen);
    pos += (size_t)klen;
    int vlen = utf8_to_utf16(kv[i].value, item + pos, cap - pos, false);
    if (vlen <= 0 || vlen > 0xFFFF)
      return vhd_error(vlen == -EINVAL ? EINVAL : ERANGE,
                       "%s: parent locator %s \"%s\" is %s", name, kv[i].key, kv[i].value,
                       vlen == -EINVAL ? "not valid UTF-8" : vlen == 0 ? "empty" : "too long");
    put_le32(e + 4, (uint32_t)pos);
    put_le16(e + 10, (uint16_t)vlen);
    pos += (size_t)vlen;
  }
  *len = (uint32_t)pos;
  return 0;
}

int vhdx_encode_parent_locator(const char *name, const struct parent_link *parent,
                               uint8_t *item, size_t cap, uint32_t *len)
{
  struct vhdx *ps = vhdx_of(parent->image);
  char linkage[40];
  linkage[0] = '{';
  guid_format_ms(ps->hdr.data_write_guid, linkage + 1);
  linkage[37] = '}';
  linkage[38] = '\0';
  struct kv kv[3] = { { "parent_linkage", linkage }, { NULL, NULL }, { NULL, NULL } };
  unsigned nkv = 1;
  int r = 0;
  char *rel = parent->relative ? to_backslashes(parent->relative) : NULL;
  char *abs = parent->absolute ? to_backslashes(parent->absolute) : NULL;
  if ((parent->relative && !rel) || (parent->absolute && !abs))
    r = vhd_error(ENOMEM, "%s: out of memory", name);
  if (rel)
    kv[nkv++] = (struct kv){ "relative_path", rel };
  if (abs)
    kv[nkv++] = (struct kv){ "absolute_win32_path", abs };
  if (r == 0)
    r = build_locator(name, kv, nkv, item, cap, len);
  vhd_free(rel);
  vhd_free(abs);
  return r;
}

static void meta_entry(uint8_t *table, unsigned i, const uint8_t guid[16], uint32_t offset,
                       uint32_t length, uint32_t flags)
{
  uint8_t *e = table + 32 + 32 * (size_t)i;
  memcpy(e, guid, 16);
  put_le32(e + 16, offset);
  put_le32(e + 20, length);
  put_le32(e + 24, flags);
}

struct layout {
  uint32_t block_size, lss, pss;
  uint64_t size;
  uint64_t chunk_ratio, payload_blocks, bitmap_blocks;
  uint64_t bat_entries;
  uint32_t bat_length;
  uint64_t data_start;
  bool fixed, diff;
  uint8_t disk_id[16];
};

static int plan(const char *name, const struct vhd_create_params *p,
                const struct parent_link *parent, struct layout *l)
{
  memset(l, 0, sizeof *l);
  l->diff = parent != NULL;
  l->fixed = p->type == VHD_TYPE_FIXED;
  l->lss = p->logical_sector_size ? p->logical_sector_size : 512;
  l->pss = p->physical_sector_size ? p->physical_sector_size : 4096;
  l->block_size = p->block_size ? p->block_size : l->diff ? 2 * VHDX_MIB : 32 * VHDX_MIB;
  l->size = p->size;
  vhdx_new_guid(l->disk_id);
  if (parent) {
    struct vhd_image *pi = parent->image;
    if (pi->drv != &vhd_driver_vhdx)
      return vhd_error(EINVAL, "%s: a VHDX differencing image needs a VHDX parent, and %s "
                       "is %s", name, pi->path, pi->drv->name);
    struct vhdx *ps = vhdx_of(pi);
    if (l->lss != ps->lss)
      return vhd_error(EINVAL, "%s: logical sector size %u differs from the parent's (%s: "
                       "%u); they must match", name, l->lss, pi->path, ps->lss);
    /* Virtual-disk metadata items carry over from parent to child. */
    if (!p->physical_sector_size)
      l->pss = ps->pss;
    memcpy(l->disk_id, ps->disk_id, 16);
  }
  if (!sector_size_valid(l->lss))
    return vhd_error(EINVAL, "%s: logical sector size %u is not 512 or 4096", name, l->lss);
  if (!sector_size_valid(l->pss))
    return vhd_error(EINVAL, "%s: physical sector size %u is not 512 or 4096", name, l->pss);
  if (l->block_size < VHDX_MIN_BLOCK || l->block_size > VHDX_MAX_BLOCK ||
      (l->block_size & (l->block_size - 1)))
    return vhd_error(EINVAL, "%s: block size %u is not a power of two from 1 MiB to "
                     "256 MiB", name, l->block_size);
  if (l->size == 0 || l->size % l->lss || l->size > VHDX_MAX_VIRTUAL_SIZE)
    return vhd_error(EINVAL, "%s: virtual size %llu is not a non-zero multiple of %u up to "
                     "64 TiB", name, (unsigned long long)l->size, l->lss);
  int r = vhdx_bat_limit(name, l->size, l->block_size, l->lss);
  if (r < 0)
    return r;
  l->chunk_ratio = vhdx_chunk_ratio(l->lss, l->block_size);
  l->payload_blocks = (l->size + l->block_size - 1) / l->block_size;
  l->bitmap_blocks = (l->payload_blocks + l->chunk_ratio - 1) / l->chunk_ratio;
  /* Room for every chunk's bitmap entry, so the file can later become or
   * serve as a differencing file without moving the BAT. */
  l->bat_entries = l->bitmap_blocks * (l->chunk_ratio + 1);
  uint64_t bat_bytes = (l->bat_entries * 8 + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
  l->bat_length = (uint32_t)bat_bytes;   /* at most VHDX_MAX_BAT_ENTRIES */
  l->data_start = BAT_OFFSET + bat_bytes;
  return 0;
}

static int write_headers(vhd_io *io)
{
  uint8_t raw[VHDX_HEADER_SIZE];
  struct vhdx_header h;
  memset(&h, 0, sizeof h);
  vhdx_new_guid(h.file_write_guid);
  vhdx_new_guid(h.data_write_guid);
  h.version = 1;
  h.log_length = LOG_LENGTH;
  h.log_offset = LOG_OFFSET;
  int r = 0;
  for (int i = 0; r == 0 && i < 2; i++) {
    h.sequence = (uint64_t)i + 1;
    vhdx_header_encode(&h, raw);
    r = io_pwrite(io, raw, sizeof raw, i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET);
  }
  return r;
}

static int write_identifier_and_regions(vhd_io *io, const struct layout *l)
{
  uint8_t *buf = vhd_calloc(1, VHDX_REGION_SIZE);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory", io->name);
  memcpy(buf, "vhdxfile", 8);
  utf8_to_utf16(CREATOR, buf + 8, 512, false);
  int r = io_pwrite(io, buf, VHDX_REGION_SIZE, 0);
  memset(buf, 0, VHDX_REGION_SIZE);
  memcpy(buf, "regi", 4);
  put_le32(buf + 8, 2);
  memcpy(buf + 16, vhdx_guid_bat, 16);
  put_le64(buf + 32, BAT_OFFSET);
  put_le32(buf + 40, l->bat_length);
  put_le32(buf + 44, 1);
  memcpy(buf + 48, vhdx_guid_metadata, 16);
  put_le64(buf + 64, META_OFFSET);
  put_le32(buf + 72, META_LENGTH);
  put_le32(buf + 76, 1);
  put_le32(buf + 4, vhdx_checksum(buf, VHDX_REGION_SIZE, 4));
  if (r == 0)
    r = io_pwrite(io, buf, VHDX_REGION_SIZE, VHDX_REGION1_OFFSET);
  if (r == 0)
    r = io_pwrite(io, buf, VHDX_REGION_SIZE, VHDX_REGION2_OFFSET);
  vhd_free(buf);
  return r;
}

static int write_metadata(vhd_io *io, const struct layout *l, const struct parent_link *parent)
{
  /* Items follow the 64 KiB table; the locator may take up to 1 MiB. */
  size_t cap = 2 * VHDX_META_TABLE_SIZE;
  uint8_t *buf = vhd_calloc(1, cap);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory", io->name);
  enum { REQ = 4, VD = 2 };
  uint8_t *t = buf;
  uint8_t *items = buf + VHDX_META_TABLE_SIZE;
  memcpy(t, "metadata", 8);
  unsigned n = 0;
  uint32_t off = VHDX_META_TABLE_SIZE;
  put_le32(items, l->block_size);
  put_le32(items + 4, l->diff ? 2u : l->fixed ? 1u : 0u);
  meta_entry(t, n++, vhdx_guid_file_parameters, off, 8, REQ);
  put_le64(items + 8, l->size);
  meta_entry(t, n++, vhdx_guid_virtual_disk_size, off + 8, 8, REQ | VD);
  memcpy(items + 16, l->disk_id, 16);
  meta_entry(t, n++, vhdx_guid_virtual_disk_id, off + 16, 16, REQ | VD);
  put_le32(items + 32, l->lss);
  meta_entry(t, n++, vhdx_guid_logical_sector_size, off + 32, 4, REQ | VD);
  put_le32(items + 36, l->pss);
  meta_entry(t, n++, vhdx_guid_physical_sector_size, off + 36, 4, REQ | VD);
  int r = 0;
  if (parent) {
    uint32_t len = 0;
    r = vhdx_encode_parent_locator(io->name, parent, items + 40,
                                   cap - VHDX_META_TABLE_SIZE - 40, &len);
    if (r == 0)
      meta_entry(t, n++, vhdx_guid_parent_locator, off + 40, len, REQ);
  }
  put_le16(t + 10, (uint16_t)n);
  if (r == 0)
    r = io_pwrite(io, buf, cap, META_OFFSET);
  vhd_free(buf);
  return r;
}

/* A fixed file's BAT: every payload block present, in order. */
static int write_fixed_bat(vhd_io *io, const struct layout *l)
{
  uint8_t *buf = vhd_calloc(1, VHDX_MIB);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory", io->name);
  int r = 0;
  const uint64_t per_mib = VHDX_MIB / 8;
  for (uint64_t first = 0; r == 0 && first < l->bat_entries; first += per_mib) {
    memset(buf, 0, VHDX_MIB);
    for (uint64_t j = 0; j < per_mib && first + j < l->bat_entries; j++) {
      uint64_t idx = first + j;
      if (idx % (l->chunk_ratio + 1) == l->chunk_ratio)
        continue;   /* sector bitmap entry: not present */
      uint64_t b = idx / (l->chunk_ratio + 1) * l->chunk_ratio + idx % (l->chunk_ratio + 1);
      if (b >= l->payload_blocks)
        continue;
      put_le64(buf + 8 * j, VHDX_BAT_ENTRY(VHDX_BAT_FULLY_PRESENT,
                                           l->data_start + b * l->block_size));
    }
    r = io_pwrite(io, buf, VHDX_MIB, BAT_OFFSET + first * 8);
  }
  vhd_free(buf);
  return r;
}

int vhdx_create(vhd_io *io, const struct vhd_create_params *p,
                const struct parent_link *parent)
{
  struct layout l;
  int r = plan(io->name, p, parent, &l);
  if (r < 0)
    return r;
  uint64_t end = l.data_start;
  if (l.fixed)
    end += l.payload_blocks * l.block_size;   /* a hole on the host until written */
  r = io_set_size(io, end);
  if (r == 0)
    r = write_identifier_and_regions(io, &l);
  if (r == 0)
    r = write_headers(io);
  if (r == 0)
    r = write_metadata(io, &l, parent);
  if (r == 0 && l.fixed)
    r = write_fixed_bat(io, &l);
  return r;
}
