/* SPDX-License-Identifier: BSD-3-Clause */
/* Pointing a differencing VHD at a new parent file: parent identity,
 * parent_unicode_name and the path locators rewritten.
 *
 * VHD has no journal, so the order of the writes is what keeps a crash
 * harmless. The locator payloads are written first, into reserved space
 * no structure uses or at the end of the file (the footer moves past the
 * new space before it is used, as a block allocation does); the dynamic
 * header, which is what makes them current, is written last in one
 * 1024-byte write. A crash before it leaves the old header, whose
 * locators may then hold a new path but whose identity still names the
 * old parent: the image opens, and rerunning set-parent finishes. */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "util/arith.h"

#define SECTOR VHD_SECTOR_SIZE

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
  return a < b + blen && b < a + alen;
}

/* Whether [off, off+len) touches no structure the new header keeps: the
 * footer copy, the header, the BAT, blktap's batmap header, a block or a
 * payload already placed. */
static bool range_free(const struct vhd_state *s, uint64_t off, uint64_t len,
                       const struct vhd_locator *placed, size_t nplaced)
{
  uint64_t block_bytes = (uint64_t)s->bitmap_bytes + s->block_size;
  if (overlaps(off, len, 0, VHD_FOOTER_SIZE) ||
      overlaps(off, len, s->header_offset, VHD_HEADER_SIZE) ||
      overlaps(off, len, s->bat.offset, vhd_bat_padded_bytes(s->bat.count)) ||
      (s->batmap_offset && overlaps(off, len, s->batmap_offset, VHD_SECTOR_SIZE)) ||
      off + len > s->footer_pos)
    return false;
  for (size_t i = 0; i < nplaced; i++)
    if (overlaps(off, len, placed[i].data_offset, placed[i].data_space))
      return false;
  for (uint32_t i = 0; i < s->bat.count; i++)
    if (s->bat.entry[i] != VHD_BAT_UNUSED &&
        overlaps(off, len, vhd_block_offset(s, i), block_bytes))
      return false;
  return true;
}

/* Choose where each payload goes: an old locator's reserved space when it
 * is big enough and free, else past the end of the file (*append grows). */
static void place_payloads(const struct vhd_state *s, const struct vhd_locator_payload *pl,
                           size_t npl, struct vhd_locator *loc, uint64_t tail,
                           uint64_t *append)
{
  bool taken[VHD_MAX_LOCATORS] = {false};
  *append = 0;
  for (size_t k = 0; k < npl; k++) {
    uint64_t need = align_up(pl[k].len ? pl[k].len : 1, SECTOR);
    loc[k].code = pl[k].code;
    loc[k].data_length = (uint32_t)pl[k].len;
    loc[k].data_space = (uint32_t)need;
    loc[k].reserved = 0;
    loc[k].data_offset = 0;
    for (unsigned i = 0; i < VHD_MAX_LOCATORS && !loc[k].data_offset; i++) {
      const struct vhd_locator *old = &s->header.loc[i];
      uint64_t space;
      if (taken[i] || old->code == VHD_LOC_NONE || old->data_offset % SECTOR ||
          !vhd_locator_space_bytes(old->data_space, &space) || space < need ||
          !range_free(s, old->data_offset, need, loc, k))
        continue;
      taken[i] = true;
      loc[k].data_offset = old->data_offset;
    }
    if (!loc[k].data_offset) {
      loc[k].data_offset = tail + *append;
      *append += need;
    }
  }
}

/* Refresh the decoded locators kept for parent lookup and vhd_info. */
static int remember_paths(struct vhd_image *img, struct vhd_state *s,
                          const struct vhd_locator_payload *pl, size_t npl)
{
  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++) {
    vhd_free(s->loc_path[i]);
    s->loc_path[i] = NULL;
  }
  s->parent_hint = NULL;
  for (size_t k = 0; k < npl; k++) {
    s->loc_path[k] = vhd_locator_decode(pl[k].code, pl[k].data, pl[k].len);
    if (!s->loc_path[k])
      return vhd_error(ENOMEM, "%s: out of memory", img->path);
    if (!s->parent_hint)
      s->parent_hint = s->loc_path[k];
  }
  return 0;
}

static int write_payloads(struct vhd_image *img, const struct vhd_locator_payload *pl,
                          size_t npl, const struct vhd_locator *loc)
{
  int r = 0;
  for (size_t k = 0; k < npl && r == 0; k++) {
    uint8_t *buf = vhd_calloc(1, loc[k].data_space);
    if (!buf)
      return vhd_error(ENOMEM, "%s: out of memory writing parent locators", img->path);
    memcpy(buf, pl[k].data, pl[k].len);
    r = io_pwrite(img->io, buf, loc[k].data_space, loc[k].data_offset);
    vhd_free(buf);
  }
  return r;
}

int vhd_fmt_set_parent(struct vhd_image *img, const struct parent_link *parent)
{
  struct vhd_state *s = vhd_state(img);
  slots_clear(&s->slots);   /* locator payloads may take space; found again at open */
  if (s->footer.disk_type != VHD_TYPE_DIFFERENCING)
    return vhd_error(EINVAL, "%s: not a differencing image, it has no parent to change",
                     img->path);

  struct vhd_dyn_header h = s->header;
  struct vhd_locator_payload pl[3];
  size_t npl = 0;
  int r = vhd_link_parent(img->path, &h, parent, pl, &npl);
  if (r < 0)
    return r;
  /* A MacX locator is written only where one was before: Windows tools
   * do not expect it, and Unix readers find the parent through W2ku. */
  bool had_macx = false;
  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++)
    had_macx |= s->header.loc[i].code == VHD_LOC_MACX;
  if (!had_macx && npl > 0 && pl[npl - 1].code == VHD_LOC_MACX)
    vhd_free(pl[--npl].data);

  /* Every old locator goes: they all name the old place. */
  memset(h.loc, 0, sizeof h.loc);
  uint64_t tail = align_up(s->data_end > s->footer_pos ? s->data_end : s->footer_pos, SECTOR);
  uint64_t append;
  place_payloads(s, pl, npl, h.loc, tail, &append);

  uint8_t footer[VHD_FOOTER_SIZE], hbuf[VHD_HEADER_SIZE];
  if (append) {
    /* The footer first, past the new space: a valid footer stays at the
     * end of the file whatever happens next. */
    vhd_footer_encode(&s->footer, footer);
    r = io_pwrite(img->io, footer, sizeof footer, tail + append);
    if (r == 0) {
      s->footer_pos = tail + append;
      s->footer_short = false;
    }
  }
  if (r == 0)
    r = write_payloads(img, pl, npl, h.loc);
  if (r == 0)
    r = io_flush(img->io);
  if (r == 0) {
    vhd_header_encode(&h, hbuf);
    r = io_pwrite(img->io, hbuf, sizeof hbuf, s->header_offset);
  }
  if (r == 0)
    r = io_flush(img->io);
  if (r == 0) {
    s->header = h;
    if (append) {
      s->meta_end = s->meta_end > tail + append ? s->meta_end : tail + append;
      s->data_end = s->data_end > s->meta_end ? s->data_end : s->meta_end;
    }
    r = remember_paths(img, s, pl, npl);
  }
  for (size_t k = 0; k < npl; k++)
    vhd_free(pl[k].data);
  return r;
}
