/* SPDX-License-Identifier: BSD-3-Clause */
/* Probing, opening and validating a VHD; info and the extra checks of
 * vhd_check. Open and check share this one validation path (diag.h). */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "util/endian.h"
#include "util/strfmt.h"
#include "util/arith.h"

#define MSG_MAX 512

void vhd_warn(struct vhd_image *img, struct vhd_diag *d, const char *fmt, ...)
{
  char msg[MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vhd_vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  img->warnings++;
  diag_warn(d, "%s", msg);
}

/* A corruption the driver cannot work around: recorded like any other, but
 * the open (or the check) stops here. */
static int __attribute__((format(printf, 2, 3))) fatal(struct vhd_diag *d, const char *fmt, ...)
{
  char msg[MSG_MAX];
  va_list ap;
  int r;
  va_start(ap, fmt);
  vhd_vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r = diag_corrupt(d, "%s", msg);
  return r < 0 ? r : vhd_error(EINVAL, "%s", msg);
}

/* Propagate a corruption when it fails the open; go on when collecting. */
#define CORRUPT(...)                        \
  do {                                      \
    int r_ = diag_corrupt(d, __VA_ARGS__);  \
    if (r_ < 0)                             \
      return r_;                            \
  } while (0)

static bool is_sparse_type(uint32_t t)
{
  return t == VHD_TYPE_DYNAMIC || t == VHD_TYPE_DIFFERENCING;
}

int vhd_fmt_probe(vhd_io *io, uint64_t size)
{
  uint8_t buf[VHD_FOOTER_SIZE];
  int r;

  /* The footer at the end is authoritative; a fixed VHD has nothing else,
   * and its first sector is guest data that may itself say "conectix".
   * A read that fails is reported (the message is set), not taken for
   * "not a VHD", or raw would claim a file we could not look at. */
  if (size >= VHD_FOOTER_SIZE) {
    if ((r = io_pread(io, buf, 8, size - VHD_FOOTER_SIZE)) < 0)
      return r;
    if (vhd_footer_has_cookie(buf))
      return 100;
  }
  if (size % 512 == VHD_FOOTER_SIZE_OLD) {
    if ((r = io_pread(io, buf, 8, size - VHD_FOOTER_SIZE_OLD)) < 0)
      return r;
    if (vhd_footer_has_cookie(buf))
      return 100;
  }
  /* A dynamic disk whose end was lost still has its copy. Claim it even
   * when too short to be whole: it is a damaged VHD, and open then says
   * so, rather than a raw disk. */
  if (size >= VHD_FOOTER_SIZE) {
    if ((r = io_pread(io, buf, VHD_FOOTER_SIZE, 0)) < 0)
      return r;
    if (vhd_footer_has_cookie(buf) && is_sparse_type(get_be32(buf + 60)))
      return 60;
  }
  return 0;
}

/* A footer is usable when its cookie and checksum are right. Early blktap
 * set its "hidden" byte without updating the checksum, so for creator
 * "tap" the sum is retried with that byte cleared. */
bool vhd_footer_usable(const uint8_t *buf, size_t len)
{
  if (!vhd_footer_has_cookie(buf))
    return false;
  if (vhd_footer_checksum_ok(buf, len))
    return true;
  if (memcmp(buf + 28, "tap", 3) == 0) {
    uint8_t copy[VHD_FOOTER_SIZE];
    memcpy(copy, buf, len);
    copy[85] = 0;
    return vhd_footer_checksum_ok(copy, len);
  }
  return false;
}

/* Find the footer: at EOF first, else the copy at offset 0 of a dynamic or
 * differencing disk. Sets footer, footer_pos and *limit (where structures
 * must end). */
static int read_footer(struct vhd_image *img, struct vhd_state *s, uint64_t size,
                       uint64_t *limit, struct vhd_diag *d)
{
  uint8_t eof[VHD_FOOTER_SIZE], copy[VHD_FOOTER_SIZE];
  size_t flen;
  uint64_t pos;
  int r;

  if (size < VHD_FOOTER_SIZE_OLD)
    return fatal(d, "%s: file of %llu bytes is too small to be a VHD", img->path,
                 (unsigned long long)size);
  flen = (size % 512 == VHD_FOOTER_SIZE_OLD || size < VHD_FOOTER_SIZE) ? VHD_FOOTER_SIZE_OLD
                                                                       : VHD_FOOTER_SIZE;
  pos = size - flen;
  memset(eof, 0, sizeof eof);
  memset(copy, 0, sizeof copy);
  if ((r = io_pread(img->io, eof, flen, pos)) < 0)
    return r;
  if (vhd_footer_usable(eof, flen)) {
    vhd_footer_decode(eof, flen, &s->footer);
    s->footer_pos = pos;
    s->footer_short = flen == VHD_FOOTER_SIZE_OLD;
    *limit = pos;
    return 0;
  }

  if (size >= VHD_FOOTER_SIZE && (r = io_pread(img->io, copy, VHD_FOOTER_SIZE, 0)) < 0)
    return r;
  if (vhd_footer_usable(copy, VHD_FOOTER_SIZE) && is_sparse_type(get_be32(copy + 60))) {
    vhd_footer_decode(copy, VHD_FOOTER_SIZE, &s->footer);
    s->footer_from_copy = true;
    s->footer_pos = align_up(size, 512);
    *limit = size;
    vhd_warn(img, d, "%s: the footer at the end of the file is %s; using the copy at offset 0",
             img->path, vhd_footer_has_cookie(eof) ? "damaged" : "missing");
    return 0;
  }

  /* Neither is usable. With a collector, report the checksum and go on
   * with whichever footer has the cookie. */
  if (vhd_footer_has_cookie(eof)) {
    CORRUPT("%s: footer checksum 0x%08x does not match its contents (0x%08x)", img->path,
            get_be32(eof + 64), vhd_checksum(eof, flen, 64));
    vhd_footer_decode(eof, flen, &s->footer);
    s->footer_pos = pos;
    s->footer_short = flen == VHD_FOOTER_SIZE_OLD;
    *limit = pos;
    return 0;
  }
  if (vhd_footer_has_cookie(copy)) {
    CORRUPT("%s: no footer at the end of the file and the copy at offset 0 is %s", img->path,
            is_sparse_type(get_be32(copy + 60)) ? "damaged (bad checksum)"
                                                : "not of a dynamic or differencing disk");
    vhd_footer_decode(copy, VHD_FOOTER_SIZE, &s->footer);
    s->footer_from_copy = true;
    s->footer_pos = align_up(size, 512);
    *limit = size;
    return 0;
  }
  return fatal(d, "%s: not a VHD (no \"conectix\" footer at the end or at offset 0)",
               img->path);
}

static int validate_footer(struct vhd_image *img, struct vhd_state *s, uint64_t size,
                           uint64_t limit, struct vhd_diag *d)
{
  const struct vhd_footer *f = &s->footer;

  if (!(f->features & VHD_FEATURE_RESERVED))
    CORRUPT("%s: footer features 0x%08x lack the reserved bit 0x2 that must be set",
            img->path, f->features);
  if (f->version >> 16 != 1)
    CORRUPT("%s: footer file_format_version 0x%08x is not 1.x", img->path, f->version);
  if (f->disk_type != VHD_TYPE_FIXED && !is_sparse_type(f->disk_type))
    return fatal(d, "%s: footer disk_type %u is not fixed (2), dynamic (3) or differencing (4)",
                 img->path, f->disk_type);
  if (f->saved_state > 1)
    vhd_warn(img, d, "%s: footer saved_state %u is neither 0 nor 1", img->path, f->saved_state);
  else if (f->saved_state == 1)
    vhd_warn(img, d, "%s: footer saved_state is set (a virtual machine saved its state with this disk)",
             img->path);
  if (f->current_size % VHD_SECTOR_SIZE)
    vhd_warn(img, d, "%s: footer current_size %llu is not a multiple of 512; the partial sector is ignored",
             img->path, (unsigned long long)f->current_size);

  if (f->disk_type == VHD_TYPE_FIXED) {
    if (f->data_offset != VHD_DATA_OFFSET_NONE)
      vhd_warn(img, d, "%s: fixed disk footer data_offset is 0x%llx, not all ones", img->path,
               (unsigned long long)f->data_offset);
    if (f->current_size > limit)
      CORRUPT("%s: file is truncated: footer current_size %llu needs %llu bytes, the file has %llu",
              img->path, (unsigned long long)f->current_size,
              (unsigned long long)f->current_size + VHD_FOOTER_SIZE, (unsigned long long)size);
    return 0;
  }
  if (f->data_offset < VHD_FOOTER_SIZE || f->data_offset > limit ||
      limit - f->data_offset < VHD_HEADER_SIZE)
    return fatal(d, "%s: footer data_offset 0x%llx does not point at a dynamic header inside the file",
                 img->path, (unsigned long long)f->data_offset);
  return 0;
}

static int read_header(struct vhd_image *img, struct vhd_state *s, uint64_t limit,
                       struct vhd_diag *d)
{
  uint8_t buf[VHD_HEADER_SIZE];
  struct vhd_dyn_header *h = &s->header;
  bool clamped = false;
  int r;

  s->header_offset = s->footer.data_offset;
  if ((r = io_pread(img->io, buf, sizeof buf, s->header_offset)) < 0)
    return r;
  vhd_header_decode(buf, h);
  if (memcmp(h->cookie, VHD_HEADER_COOKIE, 8) != 0)
    return fatal(d, "%s: no dynamic header (cookie \"cxsparse\") at footer data_offset 0x%llx",
                 img->path, (unsigned long long)s->header_offset);
  if (!vhd_header_checksum_ok(buf))
    CORRUPT("%s: dynamic header checksum 0x%08x does not match its contents (0x%08x)",
            img->path, h->checksum, vhd_checksum(buf, sizeof buf, 36));
  if (h->version >> 16 != 1)
    CORRUPT("%s: dynamic header header_version 0x%08x is not 1.x", img->path, h->version);
  /* The 2006 text says 0xFFFFFFFF; Microsoft writes 64 ones. Accept both. */
  if (h->data_offset != UINT64_MAX && h->data_offset != 0xFFFFFFFFull)
    CORRUPT("%s: dynamic header data_offset 0x%llx is not all ones", img->path,
            (unsigned long long)h->data_offset);
  if (h->block_size < VHD_MIN_BLOCK_SIZE || (h->block_size & (h->block_size - 1)))
    return fatal(d, "%s: dynamic header block_size %u is not a power of two of at least 512",
                 img->path, h->block_size);
  /* Limits and their reasons: dyn_header.h. */
  if (h->block_size > VHD_MAX_BLOCK_SIZE)
    return fatal(d, "%s: dynamic header block_size %u is larger than %u, the largest block "
                 "any writer uses", img->path, h->block_size, VHD_MAX_BLOCK_SIZE);
  if (h->max_table_entries > VHD_MAX_BAT_ENTRIES)
    return fatal(d, "%s: dynamic header max_table_entries %u (the BAT's length) is more than %u, the most a "
                 "VHD needs (2040 GiB in 512 KiB blocks)", img->path, h->max_table_entries,
                 VHD_MAX_BAT_ENTRIES);
  /* The table must fit in the file, which also bounds the memory a hostile
   * max_table_entries can make us allocate. */
  if (h->table_offset > limit || vhd_bat_bytes(h->max_table_entries) > limit - h->table_offset) {
    r = diag_corrupt(d, "%s: BAT (table_offset 0x%llx, %u entries) extends past the end of the file",
                     img->path, (unsigned long long)h->table_offset, h->max_table_entries);
    if (r < 0)
      return r;
    h->max_table_entries =
        h->table_offset > limit ? 0 : (uint32_t)((limit - h->table_offset) / 4);
    clamped = true;
  }
  if ((uint64_t)h->max_table_entries * h->block_size < img->virtual_size) {
    if (!clamped)
        CORRUPT("%s: BAT too small: max_table_entries %u of %u-byte blocks cover %llu bytes, the disk has %llu",
              img->path, h->max_table_entries, h->block_size,
              (unsigned long long)h->max_table_entries * h->block_size,
              (unsigned long long)img->virtual_size);
    /* Collecting: look only at what the table can describe. */
    img->virtual_size = (uint64_t)h->max_table_entries * h->block_size;
  }
  return 0;
}

/* Decode the payload of every path locator and check that each payload
 * lies inside the file. */
static int read_locators(struct vhd_image *img, struct vhd_state *s, uint64_t limit,
                         char **paths, struct vhd_diag *d)
{
  struct vhd_dyn_header *h = &s->header;

  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++) {
    struct vhd_locator *l = &h->loc[i];
    uint64_t space;
    if (l->code == VHD_LOC_NONE)
      continue;
    if (s->footer.disk_type != VHD_TYPE_DIFFERENCING) {
      vhd_warn(img, d, "%s: dynamic disk has parent locator %u (ignored)", img->path, i);
      l->code = VHD_LOC_NONE;
      continue;
    }
    if (!vhd_locator_space_bytes(l->data_space, &space)) {
      CORRUPT("%s: parent locator %u platform_data_space %u is neither a sector count nor a multiple of 512",
              img->path, i, l->data_space);
      space = l->data_length;
    }
    if (l->data_length > space)
      CORRUPT("%s: parent locator %u platform_data_length %u exceeds its data space of %llu bytes",
              img->path, i, l->data_length, (unsigned long long)space);
    if (l->data_offset > limit || l->data_length > limit - l->data_offset) {
      CORRUPT("%s: parent locator %u payload (offset 0x%llx, %u bytes) lies past the end of the file",
              img->path, i, (unsigned long long)l->data_offset, l->data_length);
      l->code = VHD_LOC_NONE;
      continue;
    }
    if (!vhd_locator_is_path(l->code) || l->data_length == 0)
      continue;
    if (l->data_length > VHD_LOCATOR_MAX_PAYLOAD) {
      vhd_warn(img, d, "%s: parent locator %u payload of %u bytes is too long for a path (ignored)",
               img->path, i, l->data_length);
      continue;
    }
    uint8_t *payload = vhd_malloc(l->data_length);
    if (!payload)
      return vhd_error(ENOMEM, "%s: out of memory reading parent locator %u", img->path, i);
    int r = io_pread(img->io, payload, l->data_length, l->data_offset);
    if (r == 0) {
      paths[i] = vhd_locator_decode(l->code, payload, l->data_length);
      if (!paths[i])
        r = vhd_error(ENOMEM, "%s: out of memory decoding parent locator %u", img->path, i);
    }
    vhd_free(payload);
    if (r < 0)
      return r;
  }
  return 0;
}

/* The stored path a person would recognise first: W2ru, W2ku, MacX... */
static const uint32_t locator_preference[] = {
  VHD_LOC_W2RU, VHD_LOC_W2KU, VHD_LOC_MACX, VHD_LOC_WI2R, VHD_LOC_WI2K,
};

/* Bytes each locator holds for data_end purposes: its reserved space when
 * that fits in the file, else just the payload. */
static uint64_t locator_end(const struct vhd_locator *l, uint64_t limit)
{
  uint64_t space;
  uint64_t end = l->data_offset + l->data_length;
  if (vhd_locator_space_bytes(l->data_space, &space) && space <= limit &&
      l->data_offset <= limit - space && l->data_offset + space > end)
    end = l->data_offset + space;
  return end;
}

/* blktap images ("tap" creator) may keep a batmap right after the BAT.
 * Returns its header offset and the map's range, or 0 when there is none
 * or it does not fit the file (then it is just ignored, as readers may). */
static int find_batmap(struct vhd_image *img, struct vhd_state *s, uint64_t limit,
                       uint64_t *header, uint64_t *map, uint64_t *map_len)
{
  uint8_t buf[32];
  *header = 0;
  if (memcmp(s->footer.creator_app, "tap", 3) != 0)
    return 0;
  uint64_t at = s->bat.offset + vhd_bat_padded_bytes(s->bat.count);
  if (at > limit || limit - at < VHD_SECTOR_SIZE)
    return 0;
  int r = io_pread(img->io, buf, sizeof buf, at);
  if (r < 0)
    return r;
  if (memcmp(buf, "tdbatmap", 8) != 0)
    return 0;
  uint64_t off = get_be64(buf + 8);
  uint64_t len = (uint64_t)get_be32(buf + 16) * VHD_SECTOR_SIZE;
  if (off < at + VHD_SECTOR_SIZE || off > limit || len > limit - off)
    return 0;
  *header = at;
  *map = off;
  *map_len = len;
  return 0;
}

static int check_layout(struct vhd_image *img, struct vhd_state *s, uint64_t limit,
                        struct vhd_diag *d)
{
  struct vhd_file_range meta[5 + VHD_MAX_LOCATORS];
  uint64_t batmap, batmap_map = 0, batmap_len = 0;
  static const char *const loc_what[VHD_MAX_LOCATORS] = {
    "parent locator 0", "parent locator 1", "parent locator 2", "parent locator 3",
    "parent locator 4", "parent locator 5", "parent locator 6", "parent locator 7",
  };
  size_t n = 0;
  uint64_t end;
  int r;

  meta[n++] = (struct vhd_file_range){0, VHD_FOOTER_SIZE, "the footer copy"};
  meta[n++] = (struct vhd_file_range){s->header_offset, s->header_offset + VHD_HEADER_SIZE,
                                  "the dynamic header"};
  meta[n++] = (struct vhd_file_range){s->bat.offset, s->bat.offset + vhd_bat_bytes(s->bat.count),
                                  "the BAT"};
  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++) {
    const struct vhd_locator *l = &s->header.loc[i];
    if (l->code != VHD_LOC_NONE && l->data_length > 0)
      meta[n++] = (struct vhd_file_range){l->data_offset, l->data_offset + l->data_length,
                                      loc_what[i]};
  }
  if ((r = find_batmap(img, s, limit, &batmap, &batmap_map, &batmap_len)) < 0)
    return r;
  s->batmap_offset = batmap;
  if (batmap) {
    meta[n++] = (struct vhd_file_range){batmap, batmap + VHD_SECTOR_SIZE, "the blktap batmap header"};
    meta[n++] = (struct vhd_file_range){batmap_map, batmap_map + batmap_len, "the blktap batmap"};
  }
  for (size_t a = 0; a < n; a++)
    for (size_t b = a + 1; b < n; b++)
      if (meta[a].start < meta[b].end && meta[b].start < meta[a].end &&
          meta[a].end > meta[a].start && meta[b].end > meta[b].start)
        CORRUPT("%s: %s (0x%llx..0x%llx) overlaps %s (0x%llx..0x%llx)", img->path,
                meta[a].what, (unsigned long long)meta[a].start,
                (unsigned long long)meta[a].end, meta[b].what,
                (unsigned long long)meta[b].start, (unsigned long long)meta[b].end);

  r = vhd_bat_validate(&s->bat, img->path, (uint64_t)s->bitmap_bytes + s->block_size, meta,
                       n, limit, d);
  if (r < 0)
    return r;

  end = s->header_offset + VHD_HEADER_SIZE;
  if (s->bat.offset + vhd_bat_padded_bytes(s->bat.count) > end)
    end = s->bat.offset + vhd_bat_padded_bytes(s->bat.count);
  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++)
    if (s->header.loc[i].code != VHD_LOC_NONE && locator_end(&s->header.loc[i], limit) > end)
      end = locator_end(&s->header.loc[i], limit);
  if (batmap && batmap_map + batmap_len > end)
    end = batmap_map + batmap_len;
  s->meta_end = end;
  uint64_t blocks = vhd_bat_blocks_end(&s->bat, (uint64_t)s->bitmap_bytes + s->block_size);
  if (blocks > end)
    end = blocks;
  s->data_end = end;
  return vhd_find_free_slots(img, s, meta, n);
}

/* The footer copy at offset 0 should mirror the real footer. A copy that
 * is missing or damaged is only worth a warning (the EOF footer is
 * authoritative and a flush rewrites the copy). A valid copy that
 * disagrees about what the disk is - type, size, header location, identity
 * - means one of the two was tampered with or a tool stopped half way:
 * which one is right cannot be told, so that is a corruption. */
static int compare_footer_copy(struct vhd_image *img, struct vhd_state *s, struct vhd_diag *d)
{
  uint8_t copy[VHD_FOOTER_SIZE], mine[VHD_FOOTER_SIZE];
  struct vhd_footer c;
  const struct vhd_footer *f = &s->footer;
  const char *field = NULL;
  int r;

  if ((r = io_pread(img->io, copy, sizeof copy, 0)) < 0)
    return r;
  if (!vhd_footer_usable(copy, VHD_FOOTER_SIZE)) {
    s->copy_mismatch = true;
    vhd_warn(img, d, "%s: the footer copy at offset 0 is %s", img->path,
             vhd_footer_has_cookie(copy) ? "damaged (bad checksum)" : "missing");
    return 0;
  }
  vhd_footer_decode(copy, sizeof copy, &c);
  if (c.disk_type != f->disk_type)
    field = "disk_type";
  else if (c.current_size != f->current_size)
    field = "current_size";
  else if (c.data_offset != f->data_offset)
    field = "data_offset";
  else if (memcmp(c.unique_id, f->unique_id, 16) != 0)
    field = "unique_id";
  else if (c.cylinders != f->cylinders || c.heads != f->heads ||
           c.sectors_per_track != f->sectors_per_track)
    field = "geometry";
  if (field) {
    s->copy_mismatch = true;
    CORRUPT("%s: the footer copy at offset 0 disagrees with the footer at the end of the file about %s",
            img->path, field);
    return 0;
  }

  /* Same disk: compare the rest, except the stored checksums (already
   * judged) and blktap's hidden byte. */
  vhd_footer_encode(f, mine);
  memset(copy + 64, 0, 4);
  memset(mine + 64, 0, 4);
  if (memcmp(f->creator_app, "tap", 3) == 0)
    copy[85] = mine[85] = 0;
  if (s->footer_short)
    copy[511] = 0;
  if (memcmp(copy, mine, sizeof copy) != 0) {
    s->copy_mismatch = true;
    vhd_warn(img, d, "%s: the footer copy at offset 0 differs from the footer at the end of the file",
             img->path);
  }
  return 0;
}

static void free_state(struct vhd_state *s)
{
  if (!s)
    return;
  vhd_bat_free(&s->bat);
  vhd_bitmap_destroy(&s->bitmaps);
  slots_free(&s->slots);
  for (unsigned i = 0; i < VHD_MAX_LOCATORS; i++)
    vhd_free(s->loc_path[i]);
  vhd_free(s);
}

static int open_sparse(struct vhd_image *img, struct vhd_state *s, uint64_t limit,
                       struct vhd_diag *d)
{
  int r;

  if ((r = read_header(img, s, limit, d)) < 0)
    return r;
  s->block_size = s->header.block_size;
  s->bitmap_bytes = vhd_bitmap_bytes(s->block_size);
  s->sectors_per_block = s->block_size / VHD_SECTOR_SIZE;
  uint64_t blocks = (img->virtual_size + s->block_size - 1) / s->block_size;
  s->total_blocks = blocks > s->header.max_table_entries ? s->header.max_table_entries
                                                         : (uint32_t)blocks;
  if ((r = read_locators(img, s, limit, s->loc_path, d)) < 0)
    return r;
  if ((r = vhd_bat_load(img->io, s->header.table_offset, s->header.max_table_entries,
                        &s->bat)) < 0)
    return r;
  if ((r = check_layout(img, s, limit, d)) < 0)
    return r;
  if ((r = vhd_bitmap_init(&s->bitmaps, img->path, s->bat.count, s->block_size)) < 0)
    return r;
  if (!s->footer_from_copy && (r = compare_footer_copy(img, s, d)) < 0)
    return r;

  for (size_t p = 0; p < sizeof locator_preference / sizeof *locator_preference; p++)
    for (unsigned i = 0; i < VHD_MAX_LOCATORS && !s->parent_hint; i++)
      if (s->header.loc[i].code == locator_preference[p] && s->loc_path[i])
        s->parent_hint = s->loc_path[i];
  return 0;
}

int vhd_fmt_open(struct vhd_image *img, struct vhd_diag *d)
{
  struct vhd_state *s;
  uint64_t size, limit = 0;
  int r;

  if ((r = io_get_size(img->io, &size)) < 0)
    return r;
  s = vhd_calloc(1, sizeof *s);
  if (!s)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  s->can_punch = true;

  if ((r = read_footer(img, s, size, &limit, d)) < 0 ||
      (r = validate_footer(img, s, size, limit, d)) < 0)
    goto fail;
  img->type = (enum vhd_disk_type)s->footer.disk_type;
  img->sector_size = VHD_SECTOR_SIZE;
  img->virtual_size = vhd_footer_virtual_size(&s->footer) & ~(uint64_t)(VHD_SECTOR_SIZE - 1);
  if (s->footer.disk_type == VHD_TYPE_FIXED) {
    s->data_end = s->footer_pos;
  } else if ((r = open_sparse(img, s, limit, d)) < 0) {
    goto fail;
  } else if (img->writable && !d && s->footer_from_copy && vhd_restore_footer(img, s) < 0) {
    /* A backend that cannot cut the file (a file's fixed extents under
     * the UEFI loader) keeps using the copy, as before. */
    vhd_warn(img, d, "%s: the footer could not be put back at the end of the file: %s",
             img->path, vhd_last_error());
  }
  img->priv = s;
  return 0;

fail:
  free_state(s);
  return r;
}

uint64_t vhd_fmt_structures_end(struct vhd_image *img) { return vhd_state(img)->data_end; }

void vhd_fmt_close(struct vhd_image *img)
{
  free_state(img->priv);
  img->priv = NULL;
}

void vhd_fmt_info(struct vhd_image *img, struct vhd_info *info)
{
  struct vhd_state *s = vhd_state(img);

  info->logical_sector_size = VHD_SECTOR_SIZE;
  info->physical_sector_size = VHD_SECTOR_SIZE;
  vhd_creator_describe(&s->footer, info->creator, sizeof info->creator);
  memcpy(info->id, s->footer.unique_id, 16);
  info->cylinders = s->footer.cylinders;
  info->heads = s->footer.heads;
  info->sectors_per_track = s->footer.sectors_per_track;
  if (!vhd_is_sparse(s))
    return;
  info->block_size = s->block_size;
  info->total_blocks = s->total_blocks;
  info->allocated_blocks = vhd_bat_count_used(&s->bat, s->bat.count);
  info->free_slot_bytes = slots_count(&s->slots) * vhd_slot_bytes(s);
  if (s->footer.disk_type == VHD_TYPE_DIFFERENCING) {
    memcpy(info->parent_id, s->header.parent_unique_id, 16);
    info->parent_hint = s->parent_hint;
  }
}

int vhd_fmt_check(struct vhd_image *img, struct vhd_diag *d)
{
  struct vhd_state *s = vhd_state(img);
  uint64_t size;
  int r;

  if (!vhd_is_sparse(s))
    return 0;
  if ((r = io_get_size(img->io, &size)) < 0)
    return r;
  /* Space after the last structure up to the footer. An interrupted
   * allocation leaves at least a whole block there; anything shorter is
   * the alignment padding Hyper-V and Virtual PC put before the footer. */
  uint64_t tail_end = s->footer_from_copy ? size : s->footer_pos;
  uint64_t used_end = align_up(s->data_end, VHD_SECTOR_SIZE);
  uint64_t gap = tail_end > used_end ? tail_end - used_end : 0;
  /* Free slots between blocks: a leak where the host still spends space
   * on them, a note where they are holes (new blocks take them first;
   * compact cuts them out of the file either way). */
  uint64_t held, punched, bytes = vhd_slot_bytes(s);
  r = slots_census(&s->slots, img->io, bytes, &held, &punched);
  if (r == -ENOMEM)
    return vhd_error(ENOMEM, "%s: out of memory checking free block slots", img->path);
  if (r < 0)
    return r;
  if (held)
    diag_leak(d, held * bytes,
              "%s: %llu free block slots (%llu bytes) between blocks hold data no block "
              "uses; compact gives them back", img->path, (unsigned long long)held,
              (unsigned long long)(held * bytes));
  if (punched)
    diag_info(d, "%s: %llu free block slots (%llu bytes) between blocks are holes; new "
              "blocks take them first, compact cuts them out", img->path,
              (unsigned long long)punched, (unsigned long long)(punched * bytes));
  /* A crash while a block was being added can leave the file without its
   * footer at the end: what lies past the last structure is then unused,
   * however short it is. */
  if (s->footer_from_copy)
    diag_leak(d, gap,
              "%s: no footer at the end of the file; the %llu bytes after the last structure "
              "(0x%llx) are unused (a read-write open or check --repair puts the footer back)",
              img->path, (unsigned long long)gap, (unsigned long long)used_end);
  else if (gap >= (uint64_t)s->bitmap_bytes + s->block_size)
    diag_leak(d, gap,
              "%s: %llu bytes between the end of the last structure (0x%llx) and the footer are unused",
              img->path, (unsigned long long)gap, (unsigned long long)used_end);
  else if (gap > 0)
    diag_info(d, "%s: %llu bytes of padding before the footer", img->path,
              (unsigned long long)gap);
  return 0;
}
