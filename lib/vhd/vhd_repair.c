/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_check --repair for VHD: what the collecting open found and can be
 * fixed without losing readable data.
 *
 *  - BAT entries whose block lies past the end of the file are cleared
 *    (their data is not in the file; the block then reads as zeros or as
 *    the parent), a blktap batmap disabled first; a block the end of a
 *    truncated file cuts through is kept, the file grown to hold it.
 *    Entries that overlap other structures are left alone:
 *    which of two claimants is right cannot be told.
 *  - A dynamic header with a wrong checksum gets the right one.
 *  - The footer at the end is rewritten from the copy at offset 0 (or from
 *    its own fields with a fresh checksum), the copy from the footer, and
 *    unused space before the footer is given back.
 * Writes go in an order where a crash leaves a file that opens at least
 * as well as before: the BAT first, then the footer at its new place, the
 * copy, and only then the cut. */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "util/endian.h"
#include "util/arith.h"

#define SECTOR VHD_SECTOR_SIZE

/* Entries the open dropped from the in-memory BAT: cleared on disk when
 * the block is past the end, put back when something else was wrong. */
static int repair_bat(struct vhd_image *img, struct vhd_state *s, uint64_t limit,
                      struct vhd_diag *d)
{
  struct vhd_bat disk;
  uint64_t block_bytes = (uint64_t)s->bitmap_bytes + s->block_size;
  int r = vhd_bat_load(img->io, s->bat.offset, s->bat.count, &disk);
  if (r < 0)
    return r;
  for (uint32_t i = 0; i < s->bat.count; i++) {
    uint32_t e = disk.entry[i];
    if (e == s->bat.entry[i] || e == VHD_BAT_UNUSED)
      continue;
    uint64_t start = (uint64_t)e * SECTOR, end = start + block_bytes;
    if (s->footer_from_copy && end > limit && start < limit) {
      /* The file was cut inside this block (its footer went with the
       * end): keep what is there; the footer goes after the block, so the
       * missing tail reads as zeros. */
      s->bat.entry[i] = e;
      diag_repaired(d, "%s: block %u (BAT entry %u) was cut short by the end of the file; "
                    "its %llu bytes there are kept and the missing %llu read as zeros",
                    img->path, i, i, (unsigned long long)(limit - start),
                    (unsigned long long)(end - limit));
      continue;
    }
    if (end > limit) {
      /* blktap's batmap must stop calling the block present. */
      if (s->batmap_offset) {
        if ((r = vhd_batmap_invalidate(img, s)) < 0)
          break;
        diag_repaired(d, "%s: blktap batmap disabled (a block it may list is freed)",
                      img->path);
      }
      vhd_bat_set(&s->bat, i, VHD_BAT_UNUSED);
      diag_repaired(d, "%s: BAT entry %u pointed past the end of the file (sector %u); "
                    "cleared, the block now reads as %s (its data was not in the file)",
                    img->path, i, e,
                    s->footer.disk_type == VHD_TYPE_DIFFERENCING ? "the parent" : "zeros");
    } else {
      s->bat.entry[i] = e;
      diag_info(d, "not repaired: %s: BAT entry %u (sector %u) overlaps another structure; "
                "clearing it could lose data", img->path, i, e);
    }
  }
  vhd_bat_free(&disk);
  if (r < 0)
    return r;
  uint64_t blocks = vhd_bat_blocks_end(&s->bat, block_bytes);
  if (blocks > s->data_end)
    s->data_end = blocks;
  if (!s->bat.any_dirty)
    return 0;
  r = vhd_bat_write_dirty(img->io, &s->bat);
  return r == 0 ? io_flush(img->io) : r;
}

/* Only the checksum field changes: the fields the open read are kept as
 * the file has them. */
static int repair_header_checksum(struct vhd_image *img, struct vhd_state *s,
                                  struct vhd_diag *d)
{
  uint8_t buf[VHD_HEADER_SIZE];
  int r = io_pread(img->io, buf, sizeof buf, s->header_offset);
  if (r < 0 || vhd_header_checksum_ok(buf))
    return r;
  uint32_t was = get_be32(buf + 36), sum = vhd_checksum(buf, sizeof buf, 36);
  put_be32(buf + 36, sum);
  r = io_pwrite(img->io, buf, sizeof buf, s->header_offset);
  if (r == 0)
    r = io_flush(img->io);
  if (r == 0)
    diag_repaired(d, "%s: dynamic header checksum 0x%08x replaced by 0x%08x, the sum of "
                  "its contents", img->path, was, sum);
  return r;
}

/* The copy at offset 0 is a valid footer of another disk (or of this disk
 * before some change): which one is right cannot be told. */
static bool copy_disagrees(const uint8_t *copy, const struct vhd_footer *f)
{
  struct vhd_footer c;
  vhd_footer_decode(copy, VHD_FOOTER_SIZE, &c);
  return c.disk_type != f->disk_type || c.current_size != f->current_size ||
         c.data_offset != f->data_offset || memcmp(c.unique_id, f->unique_id, 16) != 0 ||
         c.cylinders != f->cylinders || c.heads != f->heads ||
         c.sectors_per_track != f->sectors_per_track;
}

static int repair_footer(struct vhd_image *img, struct vhd_state *s, uint64_t size,
                         struct vhd_diag *d)
{
  uint8_t eof[VHD_FOOTER_SIZE], copy[VHD_FOOTER_SIZE], want[VHD_FOOTER_SIZE];
  size_t flen = s->footer_short ? VHD_FOOTER_SIZE_OLD : VHD_FOOTER_SIZE;
  bool sparse = vhd_is_sparse(s);
  int r;

  memset(eof, 0, sizeof eof);
  if ((r = io_pread(img->io, eof, flen, s->footer_pos)) < 0)
    return r;
  bool eof_ok = !s->footer_from_copy && s->footer_pos + flen == size &&
                vhd_footer_usable(eof, flen);
  bool copy_ok = false;
  if (sparse) {
    if ((r = io_pread(img->io, copy, sizeof copy, 0)) < 0)
      return r;
    copy_ok = vhd_footer_usable(copy, sizeof copy);
  }
  if (eof_ok)
    memcpy(want, eof, sizeof want);   /* as it is, blktap's hidden byte included */
  else if (s->footer_from_copy && copy_ok)
    memcpy(want, copy, sizeof want);
  else
    vhd_footer_encode(&s->footer, want);

  /* Where the footer belongs: right after the last structure when it must
   * be rewritten anyway or when a block's worth of space lies unused. */
  uint64_t end = sparse ? align_up(s->data_end, SECTOR) : s->footer_pos;
  uint64_t gap = s->footer_pos > end ? s->footer_pos - end : 0;
  bool leak = sparse && gap >= (uint64_t)s->bitmap_bytes + s->block_size;
  uint64_t pos = (!eof_ok && sparse) || leak ? end : s->footer_pos;
  if (!eof_ok || pos != s->footer_pos) {
    if ((r = io_pwrite(img->io, want, sizeof want, pos)) < 0 || (r = io_flush(img->io)) < 0)
      return r;
    if (!eof_ok)
      diag_repaired(d, "%s: footer at the end of the file rewritten from %s", img->path,
                    s->footer_from_copy && copy_ok ? "the copy at offset 0"
                                                   : "its fields with a fresh checksum");
  }

  if (sparse && copy_ok && eof_ok && copy_disagrees(copy, &s->footer)) {
    diag_info(d, "not repaired: %s: the footer copy at offset 0 and the footer at the end "
              "describe different disks; which one is right cannot be told", img->path);
  } else if (sparse && memcmp(copy, want, sizeof want) != 0) {
    if ((r = io_pwrite(img->io, want, sizeof want, 0)) < 0 || (r = io_flush(img->io)) < 0)
      return r;
    diag_repaired(d, "%s: footer copy at offset 0 %s", img->path,
                  copy_ok ? "made equal to the footer again" : "rewritten from the footer");
  }

  if (pos + VHD_FOOTER_SIZE < size) {
    if ((r = io_set_size(img->io, pos + VHD_FOOTER_SIZE)) < 0 || (r = io_flush(img->io)) < 0)
      return r;
    diag_repaired(d, "%s: %llu unused bytes at the end of the file given back (the footer "
                  "moved to 0x%llx)", img->path,
                  (unsigned long long)(size - pos - VHD_FOOTER_SIZE), (unsigned long long)pos);
  }
  s->footer_pos = pos;
  s->footer_short = false;
  s->footer_from_copy = s->copy_mismatch = s->footer_dirty = false;
  return 0;
}

int vhd_fmt_repair(struct vhd_image *img, struct vhd_diag *d)
{
  struct vhd_state *s = vhd_state(img);
  uint64_t size;
  /* Free slots go back to the host, unless the open dropped entries
   * (repair_bat may put some back, and their blocks would look free);
   * then they are forgotten. */
  uint64_t n = 0;
  int r = 0;
  if (d && d->result && d->result->corruptions == 0)
    r = slots_punch_reusable(&s->slots, img->io, vhd_slot_bytes(s), &n);
  if (n)
    diag_repaired(d, "%s: %llu free block slots between blocks punched", img->path,
                  (unsigned long long)n);
  slots_clear(&s->slots);
  if (r == 0)
    r = io_get_size(img->io, &size);
  if (r < 0)
    return r;
  if (vhd_is_sparse(s)) {
    uint64_t limit = s->footer_from_copy ? size : s->footer_pos;
    if ((r = repair_bat(img, s, limit, d)) < 0 || (r = repair_header_checksum(img, s, d)) < 0)
      return r;
  }
  return repair_footer(img, s, size, d);
}
