/* SPDX-License-Identifier: BSD-3-Clause */
/* The file type identifier and the two 4 KiB headers: decoding, choosing
 * the current one, and updating them so that a crash at any moment leaves
 * one valid header. */
#include "vhdx.h"
#include "error.h"
#include "util/endian.h"
#include "util/guid.h"
#include "util/strfmt.h"
#include "util/utf16.h"

void vhdx_warn(struct vhdx *s, struct vhd_diag *d, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vhd_vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (s && s->img)
    s->img->warnings++;
  diag_warn(d, "%s", msg);
}

int vhdx_fatal(struct vhd_diag *d, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vhd_vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (d)
    diag_corrupt(d, "%s", msg);
  return vhd_error(EINVAL, "%s", msg);
}

void vhdx_new_guid(uint8_t guid[16])
{
  /* vhd_uuid_generate gives RFC 4122 byte order; store the first three
   * fields little-endian so Windows prints a well-formed version 4 GUID. */
  uint8_t u[16];
  vhd_uuid_generate(u);
  guid[0] = u[3]; guid[1] = u[2]; guid[2] = u[1]; guid[3] = u[0];
  guid[4] = u[5]; guid[5] = u[4];
  guid[6] = u[7]; guid[7] = u[6];
  memcpy(guid + 8, u + 8, 8);
}

bool vhdx_header_decode(const uint8_t raw[VHDX_HEADER_SIZE], struct vhdx_header *h,
                        const char **why)
{
  memset(h, 0, sizeof *h);
  if (memcmp(raw, "head", 4) != 0) {
    *why = "signature is not \"head\"";
    return false;
  }
  if (get_le32(raw + 4) != vhdx_checksum(raw, VHDX_HEADER_SIZE, 4)) {
    *why = "checksum mismatch";
    return false;
  }
  h->sequence = get_le64(raw + 8);
  memcpy(h->file_write_guid, raw + 16, 16);
  memcpy(h->data_write_guid, raw + 32, 16);
  memcpy(h->log_guid, raw + 48, 16);
  h->log_version = get_le16(raw + 64);
  h->version = get_le16(raw + 66);
  h->log_length = get_le32(raw + 68);
  h->log_offset = get_le64(raw + 72);
  if (h->version != 1) {
    *why = "version is not 1";
    return false;
  }
  *why = NULL;
  return true;
}

void vhdx_header_encode(const struct vhdx_header *h, uint8_t raw[VHDX_HEADER_SIZE])
{
  memset(raw, 0, VHDX_HEADER_SIZE);
  memcpy(raw, "head", 4);
  put_le64(raw + 8, h->sequence);
  memcpy(raw + 16, h->file_write_guid, 16);
  memcpy(raw + 32, h->data_write_guid, 16);
  memcpy(raw + 48, h->log_guid, 16);
  put_le16(raw + 64, h->log_version);
  put_le16(raw + 66, h->version);
  put_le32(raw + 68, h->log_length);
  put_le64(raw + 72, h->log_offset);
  put_le32(raw + 4, vhdx_checksum(raw, VHDX_HEADER_SIZE, 4));
}

void vhdx_header_select(const uint8_t raw1[VHDX_HEADER_SIZE],
                        const uint8_t raw2[VHDX_HEADER_SIZE],
                        struct vhdx_header_choice *c)
{
  struct vhdx_header h[2];
  memset(c, 0, sizeof *c);
  c->valid[0] = vhdx_header_decode(raw1, &h[0], &c->why[0]);
  c->valid[1] = vhdx_header_decode(raw2, &h[1], &c->why[1]);
  if (c->valid[0] && c->valid[1]) {
    if (h[0].sequence > h[1].sequence) {
      c->current = 0;
    } else if (h[1].sequence > h[0].sequence) {
      c->current = 1;
    } else if (memcmp(raw1, raw2, VHDX_HEADER_SIZE) == 0) {
      /* The spec forbids equal sequence numbers, but Disk2VHD writes two
       * identical copies; with identical bytes either one is right. */
      c->current = 0;
      c->identical_equal_seq = true;
    } else {
      c->current = -1;
      c->conflict = true;
    }
  } else if (c->valid[0]) {
    c->current = 0;
  } else if (c->valid[1]) {
    c->current = 1;
  } else {
    c->current = -1;
  }
}

int vhdx_read_identifier(struct vhdx *s, struct vhd_diag *d)
{
  uint8_t raw[8 + 512];
  int r = io_pread(s->io, raw, sizeof raw, 0);
  if (r < 0)
    return r;
  if (memcmp(raw, "vhdxfile", 8) != 0)
    return vhdx_fatal(d, "%s: file type identifier is not \"vhdxfile\"", s->path);
  /* The creator is diagnostic text only; a bad one never fails the open. */
  char *creator = utf16_to_utf8(raw + 8, 512, false);
  if (!creator)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  size_t n = strlen(creator);
  if (n >= sizeof s->creator) {
    n = sizeof s->creator - 1;
    while (n > 0 && ((unsigned char)creator[n] & 0xC0) == 0x80)
      n--;   /* do not cut a UTF-8 sequence */
  }
  memcpy(s->creator, creator, n);
  s->creator[n] = '\0';
  vhd_free(creator);
  return 0;
}

int vhdx_load_headers(struct vhdx *s, struct vhd_diag *d)
{
  uint8_t raw[2][VHDX_HEADER_SIZE];
  int r = io_pread(s->io, raw[0], VHDX_HEADER_SIZE, VHDX_HEADER1_OFFSET);
  if (r == 0)
    r = io_pread(s->io, raw[1], VHDX_HEADER_SIZE, VHDX_HEADER2_OFFSET);
  if (r < 0)
    return r;

  struct vhdx_header_choice c;
  vhdx_header_select(raw[0], raw[1], &c);
  if (c.current < 0 && !c.conflict)
    return vhdx_fatal(d, "%s: both headers are invalid (header 1 at 64 KiB: %s; "
                      "header 2 at 128 KiB: %s)", s->path, c.why[0], c.why[1]);
  if (c.conflict) {
    r = diag_corrupt(d, "%s: both headers have sequence number %llu but differ",
                     s->path, (unsigned long long)get_le64(raw[0] + 8));
    if (r < 0)
      return r;
    c.current = 0;
  }
  for (int i = 0; i < 2; i++)
    if (!c.valid[i])
      vhdx_warn(s, d, "%s: header %d at %u KiB is invalid (%s); using header %d", s->path,
                i + 1, (i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET) / VHDX_KIB, c.why[i],
                2 - i);
  if (c.identical_equal_seq)
    diag_info(d, "%s: both headers are identical with sequence number %llu (as Disk2VHD "
              "writes them)", s->path, (unsigned long long)get_le64(raw[0] + 8));

  const char *why;
  vhdx_header_decode(raw[c.current], &s->hdr, &why);
  s->hdr_slot = c.current;
  if (s->hdr.log_version != 0 && !guid_is_zero(s->hdr.log_guid))
    return vhdx_fatal(d, "%s: header log_version %u is not supported (only 0)", s->path,
                      s->hdr.log_version);
  return 0;
}

int vhdx_sync(struct vhdx *s)
{
  int r = io_flush(s->io);
  if (r == 0)
    s->hdr_refresh_unflushed = false;
  return r;
}

int vhdx_header_update(struct vhdx *s, unsigned what, const uint8_t *log_guid)
{
  if (s->hdr.sequence > UINT64_MAX - 2)
    return vhd_error(EOVERFLOW, "%s: header sequence_number %llu cannot grow any more",
                     s->path, (unsigned long long)s->hdr.sequence);
  struct vhdx_header h = s->hdr;
  if (what & VHDX_NEW_FILE_GUID)
    vhdx_new_guid(h.file_write_guid);
  if (what & VHDX_NEW_DATA_GUID)
    vhdx_new_guid(h.data_write_guid);
  if (log_guid)
    memcpy(h.log_guid, log_guid, 16);
  h.log_version = 0;
  /* Never overwrite the current header in place: write the other slot,
   * make it durable (it is now current), then refresh the old one with
   * the same contents. The refresh needs no flush of its own: lost or
   * torn, it leaves the first copy current, which says the same. It must
   * be durable only before the next update overwrites that first copy. */
  uint8_t raw[VHDX_HEADER_SIZE];
  int r = s->hdr_refresh_unflushed ? vhdx_sync(s) : 0;
  for (int i = 0; r == 0 && i < 2; i++) {
    int slot = 1 - s->hdr_slot;
    h.sequence++;
    vhdx_header_encode(&h, raw);
    r = io_pwrite(s->io, raw, sizeof raw, slot ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET);
    if (r == 0 && i == 0)
      r = vhdx_sync(s);
    if (r == 0) {
      s->hdr = h;
      s->hdr_slot = slot;
    }
  }
  if (r < 0) {
    s->broken = true;
    return r;
  }
  s->hdr_refresh_unflushed = true;
  return 0;
}
