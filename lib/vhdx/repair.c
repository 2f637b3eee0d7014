/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_check --repair for VHDX, after a read-write open in collecting mode
 * (which has already replayed a pending log onto the file):
 *  - an invalid header copy is rewritten from the current one (the spec's
 *    two-step update, so one valid header exists at every moment);
 *  - an invalid or stale region table copy is rewritten from the good one
 *    (the good copy is never touched, so a torn write is harmless);
 *  - BAT entries of blocks that lie outside the file are cleared through
 *    the log (their data was not in the file);
 *  - space past the last structure is given back.
 * Entries that overlap other structures or have invalid states are left
 * alone: clearing them could lose data that reads today. */
#include "vhdx.h"
#include "error.h"
#include "util/endian.h"
#include "util/strfmt.h"

static int repair_headers(struct vhdx *s, struct vhd_diag *d)
{
  uint8_t *raw = vhd_malloc(2 * (size_t)VHDX_HEADER_SIZE);
  if (!raw)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  int r = io_pread(s->io, raw, VHDX_HEADER_SIZE, VHDX_HEADER1_OFFSET);
  if (r == 0)
    r = io_pread(s->io, raw + VHDX_HEADER_SIZE, VHDX_HEADER_SIZE, VHDX_HEADER2_OFFSET);
  struct vhdx_header_choice c;
  if (r == 0)
    vhdx_header_select(raw, raw + VHDX_HEADER_SIZE, &c);
  vhd_free(raw);
  if (r < 0)
    return r;
  if (c.conflict) {
    diag_info(d, "not repaired: %s: both headers have one sequence number but differ; "
              "which one is right cannot be told", s->path);
    return 0;
  }
  if (c.valid[0] && c.valid[1])
    return 0;
  int bad = c.valid[0] ? 1 : 0;
  const char *why = c.why[bad];
  r = vhdx_header_update(s, 0, NULL);
  if (r == 0)
    diag_repaired(d, "%s: header %d at %u KiB (%s) rewritten from header %d", s->path,
                  bad + 1, (bad ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET) / VHDX_KIB,
                  why, 2 - bad);
  return r;
}

static int repair_regions(struct vhdx *s, struct vhd_diag *d)
{
  uint8_t *raw = NULL;
  int r = vhdx_read_region_copies(s, &raw);
  if (r < 0)
    return r;
  struct vhdx_regions reg;
  char why[512] = "";
  int r1 = vhdx_parse_region_table(s->path, "region table 1 at 192 KiB", raw, &reg);
  if (r1 < 0)
    vhd_snprintf(why, sizeof why, "%s", vhd_last_error());
  int r2 = vhdx_parse_region_table(s->path, "region table 2 at 256 KiB",
                                   raw + VHDX_REGION_SIZE, &reg);
  if (r2 < 0 && r1 == 0)
    vhd_snprintf(why, sizeof why, "%s", vhd_last_error());
  vhd_error_clear();
  /* The open used copy 1 when it was valid, else copy 2; the other one
   * becomes its twin. A copy naming an unknown required region is never
   * the good one. */
  int from = -1;
  if (r1 == 0 && (r2 < 0 || memcmp(raw, raw + VHDX_REGION_SIZE, VHDX_REGION_SIZE) != 0))
    from = 0;
  else if (r1 < 0 && r1 != -ENOTSUP && r2 == 0)
    from = 1;
  if (from >= 0) {
    int to = 1 - from;
    r = io_pwrite(s->io, raw + (size_t)from * VHDX_REGION_SIZE, VHDX_REGION_SIZE,
                  to ? VHDX_REGION2_OFFSET : VHDX_REGION1_OFFSET);
    if (r == 0)
      r = vhdx_sync(s);
    if (r == 0)
      diag_repaired(d, "%s: region table %d rewritten from region table %d (%s)", s->path,
                    to + 1, from + 1, why[0] ? why : "the copies differed");
  }
  vhd_free(raw);
  return r;
}

/* Entries the open cleared in memory, compared with the table on disk. */
static int repair_bat(struct vhdx *s, struct vhd_diag *d)
{
  uint8_t *buf = vhd_malloc(VHDX_MIB);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory", s->path);
  uint64_t cleared = 0;
  int r = 0;
  for (uint64_t i = 0; i < s->bat_count && r == 0;) {
    uint64_t n = s->bat_count - i < VHDX_MIB / 8 ? s->bat_count - i : VHDX_MIB / 8;
    r = vhdx_meta_read(s, buf, (size_t)n * 8, s->reg.bat_offset + i * 8);
    for (uint64_t j = 0; r == 0 && j < n; j++) {
      uint64_t e = get_le64(buf + 8 * j), idx = i + j;
      if (e == s->bat[idx])
        continue;
      bool bitmap = idx % (s->chunk_ratio + 1) == s->chunk_ratio;
      unsigned st = VHDX_BAT_STATE(e);
      bool located = bitmap ? st == VHDX_SB_PRESENT
                            : st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
      uint64_t off = VHDX_BAT_OFFSET(e);
      if (located && (off < VHDX_MIB || off >= s->file_size)) {
        vhdx_bat_set(s, idx, VHDX_BAT_ENTRY(VHDX_BAT_NOT_PRESENT, 0));
        cleared++;
        diag_repaired(d, "%s: BAT entry %llu pointed %s (offset %llu); cleared, the "
                      "block now reads as %s (its data was not in the file)",
                      s->path, (unsigned long long)idx,
                      off < VHDX_MIB ? "into the header section" : "past the end of the file",
                      (unsigned long long)off, s->has_parent ? "the parent" : "zeros");
      } else {
        s->bat[idx] = e;
        diag_info(d, "not repaired: %s: BAT entry %llu (0x%016llx) overlaps another "
                  "structure or has an invalid state; clearing it could lose data",
                  s->path, (unsigned long long)idx, (unsigned long long)e);
      }
    }
    i += n;
  }
  vhd_free(buf);
  if (r < 0 || !cleared)
    return r;
  s->meta_dirty = true;
  if (!s->guids_updated)
    r = vhdx_header_update(s, VHDX_NEW_FILE_GUID, NULL);
  return r == 0 ? vhdx_log_commit(s) : r;
}

/* Whole MiBs past the last structure: the file is cut after it (on the
 * 1 MiB boundary every VHDX structure keeps). */
static int repair_tail(struct vhdx *s, struct vhd_diag *d)
{
  uint64_t end = vhdx_structures_end(s);
  if (s->file_size < end + VHDX_MIB)   /* the rule vhdx_check reports by */
    return 0;
  end = (end + VHDX_MIB - 1) / VHDX_MIB * VHDX_MIB;
  uint64_t was = s->file_size;
  int r = io_set_size(s->io, end);
  if (r == 0)
    r = vhdx_sync(s);
  if (r < 0)
    return r;
  s->file_size = end;
  if (s->alloc_end > end)
    s->alloc_end = end;
  diag_repaired(d, "%s: %llu unused bytes after the last structure given back (file cut "
                "to %llu bytes)", s->path, (unsigned long long)(was - end),
                (unsigned long long)end);
  return 0;
}

int vhdx_repair(struct vhd_image *img, struct vhd_diag *d)
{
  struct vhdx *s = vhdx_of(img);
  if (s->log_replayed)
    diag_repaired(d, "%s: the log's %u pending entries were replayed onto the file and the "
                  "log emptied", s->path, s->log_entries_replayed);
  int r = repair_headers(s, d);
  if (r == 0)
    r = repair_regions(s, d);
  if (r == 0)
    r = repair_bat(s, d);
  if (r == 0)
    r = repair_tail(s, d);
  /* Free slots, unless the open dropped entries (repair_bat may have put
   * some back, and their blocks would look free). */
  uint64_t n = 0;
  if (r == 0 && d && d->result && d->result->corruptions == 0)
    r = slots_punch_reusable(&s->slots, s->io, s->block_size, &n);
  if (n)
    diag_repaired(d, "%s: %llu free block slots between blocks punched", s->path,
                  (unsigned long long)n);
  return r;
}
