/* SPDX-License-Identifier: BSD-3-Clause */
/* The VHD footer: byte layout, checksum, geometry and the size rule. */
#include "vhd/footer.h"

#include "util/endian.h"
#include "util/strfmt.h"

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
  uint32_t sum = 0;
  for (size_t i = 0; i < len; i++)
    if (i < csum_off || i >= csum_off + 4)
      sum += buf[i];
  return ~sum;
}

bool vhd_footer_has_cookie(const uint8_t *buf)
{
  return memcmp(buf, VHD_FOOTER_COOKIE, 8) == 0;
}

bool vhd_footer_checksum_ok(const uint8_t *buf, size_t len)
{
  return get_be32(buf + 64) == vhd_checksum(buf, len, 64);
}

void vhd_footer_decode(const uint8_t *src, size_t len, struct vhd_footer *f)
{
  /* A short footer lacks the last reserved byte; decode from a padded copy
   * so both lengths share one path. */
  uint8_t buf[VHD_FOOTER_SIZE];
  memset(buf, 0, sizeof buf);
  memcpy(buf, src, len < sizeof buf ? len : sizeof buf);

  memcpy(f->cookie, buf, 8);
  f->features = get_be32(buf + 8);
  f->version = get_be32(buf + 12);
  f->data_offset = get_be64(buf + 16);
  f->timestamp = get_be32(buf + 24);
  memcpy(f->creator_app, buf + 28, 4);
  f->creator_version = get_be32(buf + 32);
  memcpy(f->creator_host, buf + 36, 4);
  f->original_size = get_be64(buf + 40);
  f->current_size = get_be64(buf + 48);
  f->cylinders = get_be16(buf + 56);
  f->heads = buf[58];
  f->sectors_per_track = buf[59];
  f->disk_type = get_be32(buf + 60);
  f->checksum = get_be32(buf + 64);
  memcpy(f->unique_id, buf + 68, 16);
  f->saved_state = buf[84];
  memcpy(f->reserved, buf + 85, sizeof f->reserved);
}

void vhd_footer_encode(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE])
{
  memcpy(buf, f->cookie, 8);
  put_be32(buf + 8, f->features);
  put_be32(buf + 12, f->version);
  put_be64(buf + 16, f->data_offset);
  put_be32(buf + 24, f->timestamp);
  memcpy(buf + 28, f->creator_app, 4);
  put_be32(buf + 32, f->creator_version);
  memcpy(buf + 36, f->creator_host, 4);
  put_be64(buf + 40, f->original_size);
  put_be64(buf + 48, f->current_size);
  put_be16(buf + 56, f->cylinders);
  buf[58] = f->heads;
  buf[59] = f->sectors_per_track;
  put_be32(buf + 60, f->disk_type);
  memcpy(buf + 68, f->unique_id, 16);
  buf[84] = f->saved_state;
  memcpy(buf + 85, f->reserved, sizeof f->reserved);
  put_be32(buf + 64, vhd_checksum(buf, VHD_FOOTER_SIZE, 64));
}

void vhd_chs_from_sectors(uint64_t n, uint16_t *cyl, uint8_t *heads, uint8_t *spt)
{
  uint64_t cth, h, s;

  if (n > VHD_CHS_MAX_SECTORS)
    n = VHD_CHS_MAX_SECTORS;
  if (n >= 65535ull * 16 * 63) {
    s = 255;
    h = 16;
    cth = n / s;
  } else {
    s = 17;
    cth = n / s;
    h = (cth + 1023) / 1024;
    if (h < 4)
      h = 4;
    if (cth >= h * 1024 || h > 16) {
      s = 31;
      h = 16;
      cth = n / s;
    }
    if (cth >= h * 1024) {
      s = 63;
      h = 16;
      cth = n / s;
    }
  }
  *cyl = (uint16_t)(cth / h);
  *heads = (uint8_t)h;
  *spt = (uint8_t)s;
}

uint64_t vhd_chs_round_up(uint64_t sectors)
{
  if (sectors >= VHD_CHS_MAX_SECTORS)
    return sectors;
  /* The product for k sectors is at most k and falls short of it by less
   * than one cylinder, so a few thousand steps reach a product >= sectors.
   * It must also be a fixed point - the geometry computed from the product
   * gives the product back - because the geometry is stored from the final
   * size; near branch boundaries of the algorithm a product can map to a
   * different, smaller geometry. */
  for (uint64_t k = sectors;; k++) {
    uint16_t c;
    uint8_t h, s;
    vhd_chs_from_sectors(k, &c, &h, &s);
    uint64_t p = vhd_chs_product(c, h, s);
    if (p < sectors)
      continue;
    vhd_chs_from_sectors(p, &c, &h, &s);
    if (vhd_chs_product(c, h, s) == p)
      return p;
  }
}

bool vhd_chs_is_max(const struct vhd_footer *f)
{
  return f->cylinders == VHD_CHS_MAX_CYLINDERS && f->heads == VHD_CHS_MAX_HEADS &&
         f->sectors_per_track == VHD_CHS_MAX_SPT;
}

bool vhd_creator_sizes_by_chs(const uint8_t app[4])
{
  return memcmp(app, "vpc ", 4) == 0 || memcmp(app, "qemu", 4) == 0;
}

uint64_t vhd_footer_virtual_size(const struct vhd_footer *f)
{
  uint64_t chs = vhd_chs_product(f->cylinders, f->heads, f->sectors_per_track);
  if (vhd_creator_sizes_by_chs(f->creator_app) && !vhd_chs_is_max(f) && chs != 0)
    return chs * VHD_SECTOR_SIZE;
  return f->current_size;
}

static size_t four_chars(const uint8_t in[4], char out[5])
{
  size_t n = 4;
  while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == 0))
    n--;
  for (size_t i = 0; i < n; i++)
    out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? (char)in[i] : '?';
  out[n] = 0;
  return n;
}

void vhd_creator_describe(const struct vhd_footer *f, char *out, size_t size)
{
  char app[5], host[5];
  four_chars(f->creator_app, app);
  four_chars(f->creator_host, host);
  vhd_snprintf(out, size, "%s %u.%u (%s)", app, f->creator_version >> 16,
               f->creator_version & 0xffffu, host);
}
