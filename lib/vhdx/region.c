/* SPDX-License-Identifier: BSD-3-Clause */
/* The region table (two 64 KiB copies at 192 and 256 KiB): where the BAT
 * and the metadata region are. Region tables change through the log, so
 * they are read with vhdx_meta_read after any replay. */
#include "vhdx.h"
#include "error.h"
#include "util/endian.h"
#include "util/guid.h"
#include "util/strfmt.h"

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
  return a < b + blen && b < a + alen;
}

int vhdx_parse_region_table(const char *path, const char *what, const uint8_t *raw,
                            struct vhdx_regions *out)
{
  memset(out, 0, sizeof *out);
  if (memcmp(raw, "regi", 4) != 0)
    return vhd_error(EINVAL, "%s: %s: signature is not \"regi\"", path, what);
  if (get_le32(raw + 4) != vhdx_checksum(raw, VHDX_REGION_SIZE, 4))
    return vhd_error(EINVAL, "%s: %s: checksum mismatch", path, what);
  uint32_t count = get_le32(raw + 8);
  if (count > VHDX_REGION_MAX_ENTRIES)
    return vhd_error(EINVAL, "%s: %s: entry_count %u is more than %u", path, what, count,
                     VHDX_REGION_MAX_ENTRIES);
  bool have_bat = false, have_meta = false;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *e = raw + 16 + 32 * (size_t)i;
    uint64_t off = get_le64(e + 16);
    uint32_t len = get_le32(e + 24);
    uint32_t required = get_le32(e + 28);
    char g[37];
    guid_format_ms(e, g);
    if (off % VHDX_MIB || off < VHDX_MIB || len % VHDX_MIB || len == 0 ||
        off > UINT64_MAX - len)
      return vhd_error(EINVAL, "%s: %s: region {%s} at offset %llu, length %u is not a "
                       "non-empty 1 MiB-aligned range after the first MiB", path, what, g,
                       (unsigned long long)off, len);
    for (uint32_t j = 0; j < i; j++) {
      const uint8_t *o = raw + 16 + 32 * (size_t)j;
      if (memcmp(o, e, 16) == 0)
        return vhd_error(EINVAL, "%s: %s: region {%s} is listed twice", path, what, g);
      if (ranges_overlap(off, len, get_le64(o + 16), get_le32(o + 24))) {
        char g2[37];
        guid_format_ms(o, g2);
        return vhd_error(EINVAL, "%s: %s: region {%s} overlaps region {%s}", path, what,
                         g, g2);
      }
    }
    if (memcmp(e, vhdx_guid_bat, 16) == 0) {
      have_bat = true;
      out->bat_offset = off;
      out->bat_length = len;
    } else if (memcmp(e, vhdx_guid_metadata, 16) == 0) {
      have_meta = true;
      out->meta_offset = off;
      out->meta_length = len;
    } else if (required & 1) {
      return vhd_error(ENOTSUP, "%s: %s: unknown region {%s} is marked required", path,
                       what, g);
    } else {
      if (!out->other_end || off < out->other_start)
        out->other_start = off;
      if (off + len > out->other_end)
        out->other_end = off + len;
    }
  }
  if (!have_bat)
    return vhd_error(EINVAL, "%s: %s: no BAT region", path, what);
  if (!have_meta)
    return vhd_error(EINVAL, "%s: %s: no metadata region", path, what);
  if (out->meta_length < VHDX_META_TABLE_SIZE)
    return vhd_error(EINVAL, "%s: %s: metadata region of %u bytes cannot hold its table",
                     path, what, out->meta_length);
  return 0;
}

int vhdx_read_region_copies(struct vhdx *s, uint8_t **out)
{
  uint8_t *raw = vhd_malloc(2 * (size_t)VHDX_REGION_SIZE);
  if (!raw)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  int r = vhdx_meta_read(s, raw, VHDX_REGION_SIZE, VHDX_REGION1_OFFSET);
  if (r == 0)
    r = vhdx_meta_read(s, raw + VHDX_REGION_SIZE, VHDX_REGION_SIZE, VHDX_REGION2_OFFSET);
  if (r < 0) {
    vhd_free(raw);
    return r;
  }
  *out = raw;
  return 0;
}

int vhdx_load_regions(struct vhdx *s, struct vhd_diag *d)
{
  uint8_t *raw = NULL;
  int r = vhdx_read_region_copies(s, &raw);
  if (r < 0)
    return r;

  struct vhdx_regions reg[2];
  char why1[512], why2[512];
  int r1 = vhdx_parse_region_table(s->path, "region table 1 at 192 KiB", raw, &reg[0]);
  vhd_snprintf(why1, sizeof why1, "%s", vhd_last_error());
  int r2 = vhdx_parse_region_table(s->path, "region table 2 at 256 KiB",
                                   raw + VHDX_REGION_SIZE, &reg[1]);
  vhd_snprintf(why2, sizeof why2, "%s", vhd_last_error());
  vhd_error_clear();
  /* An unknown required region refuses the file whichever copy says so. */
  if (r1 == -ENOTSUP || (r1 < 0 && r2 == -ENOTSUP)) {
    const char *msg = r1 == -ENOTSUP ? why1 : why2;
    if (d)
      diag_corrupt(d, "%s", msg);
    r = vhd_error(ENOTSUP, "%s", msg);
    goto out;
  }
  if (r1 < 0 && r2 < 0) {
    r = vhdx_fatal(d, "%s; %s", why1, why2);
    goto out;
  }
  if (r1 < 0) {
    vhdx_warn(s, d, "%s; using region table 2", why1);
    s->reg = reg[1];
  } else {
    s->reg = reg[0];
    if (r2 < 0)
      vhdx_warn(s, d, "%s", why2);
    else if (memcmp(raw, raw + VHDX_REGION_SIZE, VHDX_REGION_SIZE) != 0)
      vhdx_warn(s, d, "%s: the two region table copies differ; using copy 1", s->path);
  }

  /* Where the regions lie relative to the file and the log. */
  const struct vhdx_regions *g = &s->reg;
  if (g->bat_offset + g->bat_length > s->file_size) {
    r = vhdx_fatal(d, "%s: BAT region (offset %llu, length %u) is past the end of the "
                   "file (%llu bytes)", s->path, (unsigned long long)g->bat_offset,
                   g->bat_length, (unsigned long long)s->file_size);
    goto out;
  }
  if (g->meta_offset + g->meta_length > s->file_size) {
    r = vhdx_fatal(d, "%s: metadata region (offset %llu, length %u) is past the end of "
                   "the file (%llu bytes)", s->path, (unsigned long long)g->meta_offset,
                   g->meta_length, (unsigned long long)s->file_size);
    goto out;
  }
  if (s->hdr.log_length) {
    if (ranges_overlap(g->bat_offset, g->bat_length, s->hdr.log_offset, s->hdr.log_length)) {
      r = vhdx_fatal(d, "%s: BAT region (offset %llu) overlaps the log (offset %llu, "
                     "length %u)", s->path, (unsigned long long)g->bat_offset,
                     (unsigned long long)s->hdr.log_offset, s->hdr.log_length);
      goto out;
    }
    if (ranges_overlap(g->meta_offset, g->meta_length, s->hdr.log_offset,
                       s->hdr.log_length)) {
      r = vhdx_fatal(d, "%s: metadata region (offset %llu) overlaps the log (offset %llu, "
                     "length %u)", s->path, (unsigned long long)g->meta_offset,
                     (unsigned long long)s->hdr.log_offset, s->hdr.log_length);
      goto out;
    }
  }
  r = 0;
out:
  vhd_free(raw);
  return r;
}
