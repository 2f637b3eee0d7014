/* SPDX-License-Identifier: BSD-3-Clause */
/* Reading the log: validating entries, finding the active sequence (MS-VHDX
 * 2.3.3) and replaying it, onto the file for a read-write open or into the
 * in-memory overlay for a read-only one. */
#include "vhdx.h"
#include "error.h"
#include "util/endian.h"
#include "util/guid.h"

/* Descriptors: 126 fit in the first sector after the 64-byte header, 128 in
 * every further sector. */
static uint64_t descriptor_sectors(uint64_t count) { return (count + 2 + 127) / 128; }

static const uint8_t *log_sector(const uint8_t *log, uint32_t log_length, uint32_t pos,
                                 uint64_t i)
{
  return log + ((uint64_t)pos + i * VHDX_SECTOR) % log_length;
}

static const uint8_t *descriptor(const uint8_t *log, uint32_t log_length, uint32_t pos,
                                 uint64_t k)
{
  return log_sector(log, log_length, pos, (k + 2) / 128) + ((k + 2) % 128) * 32;
}

/* Entry validation; *work counts the bytes checksummed so a hostile log
 * cannot make the scan quadratic without bound. */
static bool entry_valid(const uint8_t *log, uint32_t log_length, uint32_t pos,
                        const uint8_t guid[16], struct vhdx_log_entry *e, uint64_t *work)
{
  const uint8_t *h = log + pos;
  if (memcmp(h, "loge", 4) != 0)
    return false;
  uint32_t len = get_le32(h + 8), tail = get_le32(h + 12);
  uint64_t seq = get_le64(h + 16);
  uint32_t count = get_le32(h + 24);
  if (len == 0 || len % VHDX_SECTOR || len > log_length || tail % VHDX_SECTOR ||
      tail >= log_length || seq == 0 || memcmp(h + 32, guid, 16) != 0)
    return false;
  uint64_t sectors = len / VHDX_SECTOR;
  uint64_t dsec = descriptor_sectors(count);
  if (dsec > sectors)
    return false;
  uint64_t data = 0;
  for (uint64_t k = 0; k < count; k++) {
    const uint8_t *d = descriptor(log, log_length, pos, k);
    if (get_le64(d + 24) != seq || get_le64(d + 16) % VHDX_SECTOR)
      return false;
    if (memcmp(d, "desc", 4) == 0)
      data++;
    else if (memcmp(d, "zero", 4) != 0 || get_le64(d + 8) % VHDX_SECTOR)
      return false;
  }
  if (dsec + data > sectors)
    return false;
  for (uint64_t j = 0; j < data; j++) {
    const uint8_t *d = log_sector(log, log_length, pos, dsec + j);
    if (memcmp(d, "data", 4) != 0 || get_le32(d + 4) != (uint32_t)(seq >> 32) ||
        get_le32(d + 4092) != (uint32_t)seq)
      return false;
  }
  if (work)
    *work += len;
  static const uint8_t zero[4];
  uint32_t crc = vhdx_crc32c_update(0xFFFFFFFFu, h, 4);
  crc = vhdx_crc32c_update(crc, zero, 4);
  crc = vhdx_crc32c_update(crc, h + 8, VHDX_SECTOR - 8);
  for (uint64_t i = 1; i < sectors; i++)
    crc = vhdx_crc32c_update(crc, log_sector(log, log_length, pos, i), VHDX_SECTOR);
  if (~crc != get_le32(h + 4))
    return false;
  e->pos = pos;
  e->length = len;
  e->tail = tail;
  e->sequence = seq;
  e->descriptors = count;
  e->flushed_file_offset = get_le64(h + 48);
  e->last_file_offset = get_le64(h + 56);
  return true;
}

bool vhdx_log_entry_valid(const uint8_t *log, uint32_t log_length, uint32_t pos,
                          const uint8_t guid[16], struct vhdx_log_entry *e)
{
  if (log_length == 0 || log_length % VHDX_SECTOR || pos % VHDX_SECTOR || pos >= log_length)
    return false;
  return entry_valid(log, log_length, pos, guid, e, NULL);
}

int vhdx_log_find_active(const uint8_t *log, uint32_t log_length, const uint8_t guid[16],
                         struct vhdx_log_seq *seq)
{
  memset(seq, 0, sizeof *seq);
  if (log_length == 0 || log_length % VHDX_SECTOR)
    return 0;
  uint32_t max_entries = log_length / VHDX_SECTOR;
  uint32_t *starts = vhd_malloc(max_entries * sizeof *starts);
  if (!starts)
    return -ENOMEM;
  /* An honest log checksums each entry about once; allow generous slack. */
  uint64_t work = 0, budget = 16ull * log_length + 64ull * VHDX_MIB;
  uint32_t tail = 0, old_tail = 0;
  bool have = false;
  for (;;) {
    unsigned count = 0;
    uint64_t total = 0;
    uint32_t pos = tail;
    struct vhdx_log_entry e, last;
    memset(&last, 0, sizeof last);
    while (total < log_length && entry_valid(log, log_length, pos, guid, &e, &work)) {
      if (count && e.sequence != last.sequence + 1)
        break;
      if (total + e.length > log_length)
        break;   /* an entry cannot overlap the start of its own sequence */
      starts[count++] = pos;
      last = e;
      total += e.length;
      pos = (uint32_t)(((uint64_t)pos + e.length) % log_length);
    }
    if (work > budget) {
      vhd_free(starts);
      return -E2BIG;
    }
    /* Valid when the head's tail is the start of one of its entries. */
    unsigned first = count;
    for (unsigned i = 0; i < count; i++)
      if (starts[i] == last.tail)
        first = i;
    bool valid = count > 0 && first < count;
    if (valid && (!have || last.sequence > seq->head.sequence)) {
      have = true;
      seq->count = count - first;
      seq->head = last;
      seq->tail_pos = last.tail;
    }
    tail = valid ? pos : (uint32_t)(((uint64_t)tail + VHDX_SECTOR) % log_length);
    if (tail <= old_tail)
      break;   /* wrapped: the whole ring has been scanned */
    old_tail = tail;
  }
  vhd_free(starts);
  return 0;
}

/* Where replayed bytes go. */
struct replay_sink {
  int (*data)(void *opaque, uint64_t offset, const uint8_t sector[VHDX_SECTOR]);
  int (*zero)(void *opaque, uint64_t offset, uint64_t length);
  void *opaque;
};

/* Check every descriptor's target, then (when sink is non-NULL) hand the
 * reconstructed sectors and zero ranges to it in replay order. */
static int walk_sequence(const char *path, const uint8_t *log, uint32_t log_length,
                         uint64_t log_offset, const struct vhdx_log_seq *seq,
                         const struct replay_sink *sink)
{
  uint32_t pos = seq->tail_pos;
  uint8_t sector[VHDX_SECTOR];
  for (unsigned n = 0; n < seq->count; n++) {
    const uint8_t *h = log + pos;
    uint32_t len = get_le32(h + 8), count = get_le32(h + 24);
    uint64_t dsec = descriptor_sectors(count), data = 0;
    for (uint64_t k = 0; k < count; k++) {
      const uint8_t *d = descriptor(log, log_length, pos, k);
      bool is_data = memcmp(d, "desc", 4) == 0;
      uint64_t off = get_le64(d + 16);
      uint64_t dlen = is_data ? VHDX_SECTOR : get_le64(d + 8);
      /* Never the header section (identifier, headers, region tables:
       * the region table says which other ranges the log may change, so
       * it must not come from the log itself), never the log. */
      if (dlen > (1ull << 48) || off > (1ull << 48) - dlen)
        return vhd_error(EINVAL, "%s: log entry %llu: descriptor %llu targets offset %llu, "
                         "length %llu, past any possible file", path,
                         (unsigned long long)get_le64(h + 16), (unsigned long long)k,
                         (unsigned long long)off, (unsigned long long)dlen);
      if (off < VHDX_MIB || (off < log_offset + log_length && log_offset < off + dlen))
        return vhd_error(EINVAL, "%s: log entry %llu: descriptor %llu writes offset %llu, "
                         "length %llu, over the header section (first MiB: headers, "
                         "region tables) or the log itself", path,
                         (unsigned long long)get_le64(h + 16), (unsigned long long)k,
                         (unsigned long long)off, (unsigned long long)dlen);
      if (!sink)
        continue;
      int r;
      if (is_data) {
        const uint8_t *ds = log_sector(log, log_length, pos, dsec + data++);
        memcpy(sector, d + 8, 8);                       /* leading bytes */
        memcpy(sector + 8, ds + 8, VHDX_SECTOR - 12);
        memcpy(sector + VHDX_SECTOR - 4, d + 4, 4);     /* trailing bytes */
        r = sink->data(sink->opaque, off, sector);
      } else {
        r = dlen ? sink->zero(sink->opaque, off, dlen) : 0;
      }
      if (r < 0)
        return r;
    }
    pos = (uint32_t)(((uint64_t)pos + len) % log_length);
  }
  return 0;
}

static int overlay_data(void *opaque, uint64_t offset, const uint8_t sector[VHDX_SECTOR])
{
  return vhdx_overlay_add(opaque, offset, VHDX_SECTOR, sector);
}

static int overlay_zero(void *opaque, uint64_t offset, uint64_t length)
{
  return vhdx_overlay_add(opaque, offset, length, NULL);
}

int vhdx_log_replay_overlay(const char *path, const uint8_t *log, uint32_t log_length,
                            uint64_t log_offset, const struct vhdx_log_seq *seq,
                            struct vhdx_overlay *o)
{
  struct replay_sink sink = { overlay_data, overlay_zero, o };
  int r = walk_sequence(path, log, log_length, log_offset, seq, NULL);
  if (r == 0)
    r = walk_sequence(path, log, log_length, log_offset, seq, &sink);
  if (r == -ENOMEM)
    r = vhd_error(ENOMEM, "%s: out of memory replaying the log", path);
  return r;
}

/* A record of the replayed view may lie wholly inside the BAT region,
 * wholly inside the metadata region, or outside both (the space after the
 * fixed structures, where sector bitmap blocks live); never across a
 * region's edge. The header section and the log are refused earlier, in
 * walk_sequence, so the region table this check trusts cannot have come
 * from the log. */
static bool straddles(uint64_t off, uint64_t len, uint64_t start, uint64_t rlen)
{
  bool overlaps = off < start + rlen && start < off + len;
  bool inside = off >= start && off + len <= start + rlen;
  return overlaps && !inside;
}

/* How far past the file's present end a replay may reach. Writers extend
 * the file and flush the new blocks' data before the entry that points at
 * them, so a real file falls short of a log's last_file_offset only by
 * the growth its host lost in the last moments before a crash: a few
 * blocks. One largest block (256 MiB, eight of Hyper-V's default 32 MiB)
 * covers that; a log that claims more would make the replay grow the file
 * to whatever it says (qemu does: a 1 TiB sparse file from a few bytes). */
#define LOG_MAX_GROWTH (256ull << 20)

int vhdx_log_check_targets(struct vhdx *s, struct vhd_diag *d)
{
  const struct vhdx_regions *g = &s->reg;
  uint64_t size;
  int rc = io_get_size(s->io, &size);
  if (rc < 0)
    return rc;
  uint64_t limit = size + LOG_MAX_GROWTH;
  if (s->log_last_file_offset > limit)
    return vhdx_fatal(d, "%s: the log's last_file_offset %llu lies more than %llu MiB past "
                      "the end of the file (%llu bytes); it is not replayed", s->path,
                      (unsigned long long)s->log_last_file_offset,
                      (unsigned long long)(LOG_MAX_GROWTH >> 20), (unsigned long long)size);
  for (size_t i = 0; i < s->overlay.count; i++) {
    const struct vhdx_overlay_rec *r = &s->overlay.rec[i];
    if (r->offset > limit || r->length > limit - r->offset)
      return vhdx_fatal(d, "%s: the log writes offset %llu, length %llu, more than %llu MiB "
                        "past the end of the file (%llu bytes); it is not replayed", s->path,
                        (unsigned long long)r->offset, (unsigned long long)r->length,
                        (unsigned long long)(LOG_MAX_GROWTH >> 20), (unsigned long long)size);
    const char *what = straddles(r->offset, r->length, g->bat_offset, g->bat_length)
                       ? "BAT region"
                       : straddles(r->offset, r->length, g->meta_offset, g->meta_length)
                       ? "metadata region" : NULL;
    if (what)
      return vhdx_fatal(d, "%s: the log writes offset %llu, length %llu, across the "
                        "edge of the %s; it is not replayed", s->path,
                        (unsigned long long)r->offset, (unsigned long long)r->length, what);
  }
  return 0;
}

static int zero_on_disk(struct vhdx *s, uint64_t offset, uint64_t length, uint64_t size)
{
  static const uint8_t zeros[64 * 1024];
  uint64_t end = offset + length < size ? offset + length : size;
  for (uint64_t o = offset; o < end;) {
    size_t n = end - o < sizeof zeros ? (size_t)(end - o) : sizeof zeros;
    int r = io_pwrite(s->io, zeros, n, o);
    if (r < 0)
      return r;
    o += n;
  }
  return 0;
}

/* Read-write: the replayed view has been validated like any other open
 * (regions, metadata, BAT), so only now does it reach the file, in the
 * spec's order: header (new file_write_guid), the replayed ranges, flush,
 * then a header with an empty log_guid. */
int vhdx_log_apply(struct vhdx *s, struct vhd_diag *d)
{
  if (!s->log_apply_pending)
    return 0;
  uint64_t size;
  int r = io_get_size(s->io, &size);
  if (r == 0)
    r = vhdx_header_update(s, VHDX_NEW_FILE_GUID, NULL);
  if (r < 0)
    return r;
  /* Zeros past the end need no writing (the end moves with each sector
   * written past it, so a later zero range still clears it). */
  for (size_t i = 0; r == 0 && i < s->overlay.count; i++) {
    const struct vhdx_overlay_rec *o = &s->overlay.rec[i];
    r = o->data ? io_pwrite(s->io, o->data, (size_t)o->length, o->offset)
                : zero_on_disk(s, o->offset, o->length, size);
    if (o->data && o->offset + o->length > size)
      size = o->offset + o->length;
  }
  if (r == 0 && size < s->log_last_file_offset)
    r = io_set_size(s->io, s->log_last_file_offset);
  if (r == 0)
    r = vhdx_sync(s);
  if (r == 0)
    r = io_get_size(s->io, &s->file_size);
  if (r < 0) {
    s->broken = true;
    return r;
  }
  static const uint8_t empty[16];
  r = vhdx_header_update(s, 0, empty);
  if (r < 0)
    return r;
  diag_info(d, "%s: replayed %u log entries", s->path, s->log_entries_replayed);
  vhdx_overlay_free(&s->overlay);
  s->log_apply_pending = false;
  return 0;
}

int vhdx_log_open(struct vhdx *s, struct vhd_diag *d)
{
  const struct vhdx_header *h = &s->hdr;
  bool pending = !guid_is_zero(h->log_guid);
  if (h->log_length == 0 && !pending)
    return 0;
  if (h->log_length % VHDX_MIB || h->log_length == 0 || h->log_offset % VHDX_MIB ||
      h->log_offset < VHDX_MIB || h->log_offset > s->file_size ||
      h->log_length > s->file_size - h->log_offset) {
    int r = diag_corrupt(d, "%s: log (offset %llu, length %u) is not a 1 MiB-aligned "
                         "range inside the file (%llu bytes) after its first MiB", s->path,
                         (unsigned long long)h->log_offset, h->log_length,
                         (unsigned long long)s->file_size);
    if (r < 0 || pending)
      return r < 0 ? r : vhd_error(EINVAL, "%s: the log cannot be replayed", s->path);
    /* Checking goes on as if there were no log. */
    s->hdr.log_offset = 0;
    s->hdr.log_length = 0;
    return 0;
  }
  if (!pending)
    return 0;
  if (h->log_length > VHDX_MAX_REPLAY_LOG)
    return vhdx_fatal(d, "%s: header log_length %u is more than %u, the largest log this "
                      "version replays", s->path, h->log_length, VHDX_MAX_REPLAY_LOG);

  uint8_t *log = vhd_malloc(h->log_length);
  if (!log)
    return vhd_error(ENOMEM, "%s: out of memory reading the log", s->path);
  int r = io_pread(s->io, log, h->log_length, h->log_offset);
  if (r < 0)
    goto out;
  struct vhdx_log_seq seq;
  r = vhdx_log_find_active(log, h->log_length, h->log_guid, &seq);
  if (r == -E2BIG) {
    r = vhdx_fatal(d, "%s: the log is too damaged to scan (checksum work limit reached)",
                   s->path);
    goto out;
  }
  if (r < 0) {
    r = vhd_error(ENOMEM, "%s: out of memory scanning the log", s->path);
    goto out;
  }
  if (seq.count == 0) {
    /* No valid sequence: the log is empty, as QEMU reads it (vhdx_parse_log
     * replays only a valid sequence) and as issue 11 reads MS-VHDX 2.3.3.
     * A header whose log GUID outlived its entries loses nothing; a
     * warning keeps it visible to check. */
    vhdx_warn(s, d, "%s: header log_guid is set but the log holds no valid entry "
              "sequence; the log is treated as empty", s->path);
    r = 0;
    goto out;
  }
  /* 64 TiB of data plus every structure fits well below 2^47 bytes. */
  if (seq.head.last_file_offset > (1ull << 47) || seq.head.last_file_offset % VHDX_MIB) {
    r = vhdx_fatal(d, "%s: log entry %llu: last_file_offset %llu is not a plausible file "
                   "size", s->path, (unsigned long long)seq.head.sequence,
                   (unsigned long long)seq.head.last_file_offset);
    goto out;
  }
  if (s->file_size < seq.head.flushed_file_offset) {
    r = vhdx_fatal(d, "%s: the file is truncated: %llu bytes, but log entry %llu says "
                   "%llu bytes were durable", s->path, (unsigned long long)s->file_size,
                   (unsigned long long)seq.head.sequence,
                   (unsigned long long)seq.head.flushed_file_offset);
    goto out;
  }
  if (d && d->result)
    d->result->log_needs_replay = 1;
  /* Always into memory first: the rest of the open validates the replayed
   * structures there, and a read-write open writes them (vhdx_log_apply)
   * only once they have passed. */
  r = vhdx_log_replay_overlay(s->path, log, h->log_length, h->log_offset, &seq, &s->overlay);
  if (r < 0) {
    if (r != -ENOMEM && d)
      diag_corrupt(d, "%s", vhd_last_error());
    goto out;
  }
  if (s->file_size < seq.head.last_file_offset)
    s->file_size = seq.head.last_file_offset;
  s->log_last_file_offset = seq.head.last_file_offset;
  if (s->img->writable) {
    s->log_apply_pending = true;
  } else {
    vhdx_warn(s, d, "%s: the log holds %u entries not yet applied (sequence %llu); they "
              "are replayed in memory, a read-write open applies them", s->path, seq.count,
              (unsigned long long)seq.head.sequence);
  }
  s->log_replayed = true;
  s->log_entries_replayed = seq.count;
  r = 0;
out:
  vhd_free(log);
  return r;
}
