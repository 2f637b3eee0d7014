/* SPDX-License-Identifier: BSD-3-Clause */
/* Writing metadata through the log. Allocations and bitmap changes collect
 * in memory; a flush first makes the payload data durable, then writes all
 * changed 4 KiB metadata sectors as log entries (each written, flushed,
 * applied in place, flushed) and finally marks the log empty again, so a
 * crash at any point leaves either the old metadata or a log that replays
 * to the new one, and a clean file after every completed flush. */
#include "vhdx.h"
#include "error.h"
#include "util/endian.h"

uint32_t vhdx_log_entry_size(size_t n)
{
  uint64_t dsec = (n + 2 + 127) / 128;
  return (uint32_t)((dsec + n) * VHDX_SECTOR);
}

void vhdx_log_build_entry(uint8_t *out, uint32_t entry_length, uint32_t tail,
                          uint64_t sequence, const uint8_t guid[16],
                          uint64_t flushed_file_offset, uint64_t last_file_offset,
                          size_t n, const uint64_t *offsets, const uint8_t *data)
{
  memset(out, 0, entry_length);
  memcpy(out, "loge", 4);
  put_le32(out + 8, entry_length);
  put_le32(out + 12, tail);
  put_le64(out + 16, sequence);
  put_le32(out + 24, (uint32_t)n);
  memcpy(out + 32, guid, 16);
  put_le64(out + 48, flushed_file_offset);
  put_le64(out + 56, last_file_offset);
  size_t dsec = (n + 2 + 127) / 128;
  for (size_t k = 0; k < n; k++) {
    const uint8_t *src = data + k * VHDX_SECTOR;
    uint8_t *d = out + (k + 2) / 128 * VHDX_SECTOR + (k + 2) % 128 * 32;
    memcpy(d, "desc", 4);
    memcpy(d + 4, src + VHDX_SECTOR - 4, 4);   /* trailing bytes */
    memcpy(d + 8, src, 8);                     /* leading bytes */
    put_le64(d + 16, offsets[k]);
    put_le64(d + 24, sequence);
    uint8_t *ds = out + (dsec + k) * VHDX_SECTOR;
    memcpy(ds, "data", 4);
    put_le32(ds + 4, (uint32_t)(sequence >> 32));
    memcpy(ds + 8, src + 8, VHDX_SECTOR - 12);
    put_le32(ds + VHDX_SECTOR - 4, (uint32_t)sequence);
  }
  put_le32(out + 4, vhdx_checksum(out, entry_length, 4));
}

/* The changed sectors in a safe order: bitmap sectors first, then BAT
 * sectors from the end of the table. A chunk's bitmap entry follows all
 * its payload entries, so walking down writes it no later than any
 * payload entry that relies on it: a crash between two entries never
 * leaves a partially present block without its bitmap. */
struct change_list {
  size_t n;
  uint64_t *offsets;
  uint8_t *data;
};

static int collect_changes(struct vhdx *s, struct change_list *c)
{
  uint64_t nsec = vhdx_bat_sectors(s->bat_count), dirty = 0;
  for (uint64_t k = 0; k < nsec; k++)
    if (s->bat_dirty[k / 8] & (1u << (k % 8)))
      dirty++;
  size_t n = s->npend + (size_t)dirty;
  c->n = 0;
  c->offsets = vhd_malloc((n ? n : 1) * sizeof *c->offsets);
  c->data = vhd_malloc((n ? n : 1) * (size_t)VHDX_SECTOR);
  if (!c->offsets || !c->data)
    return vhd_error(ENOMEM, "%s: out of memory writing metadata", s->path);
  for (size_t i = 0; i < s->npend; i++) {
    c->offsets[c->n] = s->pend[i].offset;
    memcpy(c->data + c->n * VHDX_SECTOR, s->pend[i].data, VHDX_SECTOR);
    c->n++;
  }
  for (uint64_t k = nsec; k-- > 0;) {
    if (!(s->bat_dirty[k / 8] & (1u << (k % 8))))
      continue;
    uint8_t *dst = c->data + c->n * VHDX_SECTOR;
    for (unsigned j = 0; j < VHDX_BAT_PER_SECTOR; j++) {
      uint64_t idx = k * VHDX_BAT_PER_SECTOR + j;
      put_le64(dst + 8 * j, idx < s->bat_count ? s->bat[idx] : 0);
    }
    c->offsets[c->n++] = s->reg.bat_offset + k * VHDX_SECTOR;
  }
  return 0;
}

/* One log entry: written, flushed, then its sectors in place, flushed. The
 * first entry of a commit is written before the header names its GUID: a
 * crash in between leaves a header without a log to replay, and the old
 * metadata, which is consistent. */
static int write_entry(struct vhdx *s, size_t n, const uint64_t *offsets,
                       const uint8_t *data, uint8_t *buf)
{
  uint32_t len = vhdx_log_entry_size(n);
  if ((uint64_t)s->log_pos + len > s->hdr.log_length)
    s->log_pos = 0;
  uint64_t flushed = s->file_size / VHDX_MIB * VHDX_MIB;
  uint64_t last = s->alloc_end > s->file_size ? s->alloc_end : s->file_size;
  last = (last + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
  s->log_seq++;
  vhdx_log_build_entry(buf, len, s->log_pos, s->log_seq, s->session_log_guid, flushed, last,
                       n, offsets, data);
  int r = io_pwrite(s->io, buf, len, s->hdr.log_offset + s->log_pos);
  if (r == 0)
    r = vhdx_sync(s);
  if (r == 0 && !s->log_guid_in_header) {
    r = vhdx_header_update(s, 0, s->session_log_guid);
    if (r == 0)
      s->log_guid_in_header = true;
  }
  for (size_t i = 0; r == 0 && i < n; i++)
    r = io_pwrite(s->io, data + i * VHDX_SECTOR, VHDX_SECTOR, offsets[i]);
  if (r == 0)
    r = vhdx_sync(s);
  s->log_pos = (uint32_t)(((uint64_t)s->log_pos + len) % s->hdr.log_length);
  return r;
}

int vhdx_log_commit(struct vhdx *s)
{
  if (!s->meta_dirty)
    return 0;
  if (s->broken)
    return vhd_error(EIO, "%s: an earlier metadata update failed; close and reopen the "
                     "image", s->path);
  if (s->hdr.log_length < 4 * VHDX_SECTOR)
    return vhd_error(ENOTSUP, "%s: the file has no usable log, so its metadata cannot be "
                     "changed", s->path);
  /* The BAT must only ever point at durable data. */
  int r = vhdx_sync(s);
  if (r < 0)
    return r;
  struct change_list c;
  r = collect_changes(s, &c);
  /* Keep one log sector free, as QEMU does, so a full ring is never
   * mistaken for an empty one. */
  size_t max = 1;
  while (vhdx_log_entry_size(max + 1) <= s->hdr.log_length - VHDX_SECTOR)
    max++;
  uint8_t *buf = r == 0 ? vhd_malloc(vhdx_log_entry_size(max)) : NULL;
  if (r == 0 && !buf)
    r = vhd_error(ENOMEM, "%s: out of memory writing the log", s->path);
  /* Every commit starts a new log: a fresh GUID makes all older entries
   * invalid, so the ring can be reused from its start. */
  vhdx_new_guid(s->session_log_guid);
  s->log_seq = 0;
  s->log_pos = 0;
  for (size_t i = 0; r == 0 && i < c.n;) {
    size_t k = c.n - i < max ? c.n - i : max;
    r = write_entry(s, k, c.offsets + i, c.data + i * VHDX_SECTOR, buf);
    i += k;
  }
  /* Everything is in place: the log is empty again. Leaving log_guid set
   * would make other readers (QEMU) refuse the file after a crash that
   * loses nothing. */
  static const uint8_t empty[16];
  if (r == 0 && s->log_guid_in_header) {
    r = vhdx_header_update(s, 0, empty);
    if (r == 0)
      s->log_guid_in_header = false;
  }
  vhd_free(buf);
  vhd_free(c.offsets);
  vhd_free(c.data);
  if (r < 0) {
    s->broken = true;
    return r;
  }
  memset(s->bat_dirty, 0, vhdx_bat_dirty_bytes(s->bat_count));
  vhdx_pending_free(s);
  slots_commit(&s->slots);
  s->meta_dirty = false;
  return 0;
}
