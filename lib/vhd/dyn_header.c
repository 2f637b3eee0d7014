/* SPDX-License-Identifier: BSD-3-Clause */
/* The dynamic disk header and its parent locators. */
#include "vhd/dyn_header.h"

#include "vhd/footer.h"
#include "util/endian.h"
#include "util/strfmt.h"
#include "util/utf16.h"

#define LOC_TABLE_OFF 576u
#define LOC_ENTRY_SIZE 24u

void vhd_header_decode(const uint8_t buf[VHD_HEADER_SIZE], struct vhd_dyn_header *h)
{
  memcpy(h->cookie, buf, 8);
  h->data_offset = get_be64(buf + 8);
  h->table_offset = get_be64(buf + 16);
  h->version = get_be32(buf + 24);
  h->max_table_entries = get_be32(buf + 28);
  h->block_size = get_be32(buf + 32);
  h->checksum = get_be32(buf + 36);
  memcpy(h->parent_unique_id, buf + 40, 16);
  h->parent_timestamp = get_be32(buf + 56);
  h->reserved1 = get_be32(buf + 60);
  memcpy(h->parent_unicode_name, buf + 64, VHD_PARENT_NAME_BYTES);
  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++) {
    const uint8_t *e = buf + LOC_TABLE_OFF + i * LOC_ENTRY_SIZE;
    h->loc[i].code = get_be32(e);
    h->loc[i].data_space = get_be32(e + 4);
    h->loc[i].data_length = get_be32(e + 8);
    h->loc[i].reserved = get_be32(e + 12);
    h->loc[i].data_offset = get_be64(e + 16);
  }
}

void vhd_header_encode(const struct vhd_dyn_header *h, uint8_t buf[VHD_HEADER_SIZE])
{
  memset(buf, 0, VHD_HEADER_SIZE);
  memcpy(buf, h->cookie, 8);
  put_be64(buf + 8, h->data_offset);
  put_be64(buf + 16, h->table_offset);
  put_be32(buf + 24, h->version);
  put_be32(buf + 28, h->max_table_entries);
  put_be32(buf + 32, h->block_size);
  memcpy(buf + 40, h->parent_unique_id, 16);
  put_be32(buf + 56, h->parent_timestamp);
  put_be32(buf + 60, h->reserved1);
  memcpy(buf + 64, h->parent_unicode_name, VHD_PARENT_NAME_BYTES);
  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++) {
    uint8_t *e = buf + LOC_TABLE_OFF + i * LOC_ENTRY_SIZE;
    put_be32(e, h->loc[i].code);
    put_be32(e + 4, h->loc[i].data_space);
    put_be32(e + 8, h->loc[i].data_length);
    put_be32(e + 12, h->loc[i].reserved);
    put_be64(e + 16, h->loc[i].data_offset);
  }
  put_be32(buf + 36, vhd_checksum(buf, VHD_HEADER_SIZE, 36));
}

bool vhd_header_checksum_ok(const uint8_t buf[VHD_HEADER_SIZE])
{
  return get_be32(buf + 36) == vhd_checksum(buf, VHD_HEADER_SIZE, 36);
}

bool vhd_locator_space_bytes(uint32_t data_space, uint64_t *bytes)
{
  if (data_space < VHD_SECTOR_SIZE) {
    *bytes = (uint64_t)data_space * VHD_SECTOR_SIZE;
    return true;
  }
  if (data_space % VHD_SECTOR_SIZE == 0) {
    *bytes = data_space;
    return true;
  }
  return false;
}

const char *vhd_locator_code_name(uint32_t code)
{
  switch (code) {
  case VHD_LOC_WI2R: return "Wi2r";
  case VHD_LOC_WI2K: return "Wi2k";
  case VHD_LOC_W2RU: return "W2ru";
  case VHD_LOC_W2KU: return "W2ku";
  case VHD_LOC_MAC: return "Mac ";
  case VHD_LOC_MACX: return "MacX";
  default: return NULL;
  }
}

bool vhd_locator_is_path(uint32_t code)
{
  return code == VHD_LOC_WI2R || code == VHD_LOC_WI2K || code == VHD_LOC_W2RU ||
         code == VHD_LOC_W2KU || code == VHD_LOC_MACX;
}

/* Latin-1 bytes to UTF-8 (each byte >= 0x80 becomes two). */
static char *latin1_to_utf8(const uint8_t *src, size_t len)
{
  char *out = vhd_malloc(len * 2 + 1);
  size_t o = 0;
  if (!out)
    return NULL;
  for (size_t i = 0; i < len && src[i]; i++) {
    if (src[i] < 0x80) {
      out[o++] = (char)src[i];
    } else {
      out[o++] = (char)(0xc0 | src[i] >> 6);
      out[o++] = (char)(0x80 | (src[i] & 0x3f));
    }
  }
  out[o] = 0;
  return out;
}

char *vhd_locator_decode(uint32_t code, const uint8_t *payload, size_t len)
{
  switch (code) {
  case VHD_LOC_W2RU:
  case VHD_LOC_W2KU:
    /* utf16_to_utf8 stops at a NUL, which drops trailing padding. */
    return utf16_to_utf8(payload, len & ~(size_t)1, false);
  case VHD_LOC_WI2R:
  case VHD_LOC_WI2K:
    return latin1_to_utf8(payload, len);
  default: {
    size_t n = 0;
    while (n < len && payload[n])
      n++;
    return vhd_strndup((const char *)payload, n);
  }
  }
}

int vhd_locator_encode(uint32_t code, const char *stored, uint8_t *dst, size_t dst_size)
{
  switch (code) {
  case VHD_LOC_W2RU:
  case VHD_LOC_W2KU:
    return utf8_to_utf16(stored, dst, dst_size, false);
  case VHD_LOC_MACX: {
    size_t n = strlen(stored);
    if (n > dst_size)
      return -ERANGE;
    memcpy(dst, stored, n);
    return (int)n;
  }
  default:
    return -EINVAL;
  }
}
