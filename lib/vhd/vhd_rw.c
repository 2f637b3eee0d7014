/* SPDX-License-Identifier: BSD-3-Clause */
/* Reading, writing, zeroing and mapping the virtual disk of a VHD.
 *
 * Crash safety of a dynamic or differencing image rests on three rules:
 *  - a valid footer is at the end of the file at every moment: a new block
 *    goes where the footer is, and the footer is first rewritten past the
 *    new block;
 *  - the BAT on disk only ever points at durable data: entries and bitmap
 *    changes stay in memory until flush, which syncs the data first;
 *  - new blocks take a free slot (slots.h: one no durable BAT entry
 *    references, punched or zeroed first) or fresh space past every
 *    structure, so the parts of a block that are not written read as
 *    zeros, never as old bytes.
 * A crash at any point therefore leaves an image that opens; the worst
 * case is leaked space (at the tail, or a block slot nothing references,
 * which the next open lists as free), which vhd_check reports. */
#include "vhd/vhd_priv.h"

#include "error.h"
#include "trims.h"
#include "util/zero.h"
#include "util/arith.h"

#define SECTOR VHD_SECTOR_SIZE
#define JOIN_MAX (64u << 10)

static bool is_diff(const struct vhd_state *s)
{
  return s->footer.disk_type == VHD_TYPE_DIFFERENCING;
}

static uint32_t bat_entry(const struct vhd_state *s, uint32_t blk)
{
  return blk < s->bat.count ? s->bat.entry[blk] : VHD_BAT_UNUSED;
}

/* The part of a request inside one block. */
struct seg {
  uint32_t blk;
  uint32_t inblk;   /* byte offset inside the block's data */
  size_t len;
};

static struct seg seg_at(const struct vhd_state *s, uint64_t off, uint64_t len)
{
  struct seg g;
  g.blk = (uint32_t)(off / s->block_size);
  g.inblk = (uint32_t)(off % s->block_size);
  g.len = (size_t)min_u64(len, s->block_size - g.inblk);
  return g;
}

static uint64_t data_offset(const struct vhd_state *s, uint32_t blk, uint32_t inblk)
{
  return vhd_block_offset(s, blk) + s->bitmap_bytes + inblk;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

/* A differencing block: sectors marked in its bitmap come from this file,
 * the others from the parent, one run of equal bits at a time. */
static int read_diff_block(struct vhd_image *img, struct vhd_state *s, struct seg g,
                           uint8_t *p, uint64_t off)
{
  uint32_t first = g.inblk / SECTOR, count = (uint32_t)(g.len / SECTOR);

  while (count > 0) {
    bool set;
    uint32_t run;
    int r = vhd_bitmap_run(&s->bitmaps, img->io, g.blk, vhd_block_offset(s, g.blk), first,
                           count, &set, &run);
    if (r < 0)
      return r;
    size_t bytes = (size_t)run * SECTOR;
    if (set)
      r = io_pread(img->io, p, bytes, data_offset(s, g.blk, first * SECTOR));
    else
      r = image_read_parent(img, p, bytes, off);
    if (r < 0)
      return r;
    p += bytes;
    off += bytes;
    first += run;
    count -= run;
  }
  return 0;
}

int vhd_fmt_read(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
  struct vhd_state *s = vhd_state(img);
  uint8_t *p = buf;

  if (!vhd_is_sparse(s))
    return io_pread(img->io, buf, len, off);
  while (len > 0) {
    struct seg g = seg_at(s, off, len);
    int r;
    if (bat_entry(s, g.blk) == VHD_BAT_UNUSED) {
      /* A dynamic disk has nothing below it. */
      if (is_diff(s)) {
        r = image_read_parent(img, p, g.len, off);
      } else {
        memset(p, 0, g.len);
        r = 0;
      }
    } else if (is_diff(s)) {
      r = read_diff_block(img, s, g, p, off);
    } else {
      /* Dynamic disks ignore the bitmap: the spec requires unmarked
       * sectors to hold zeros, so the data area is right either way. */
      r = io_pread(img->io, p, g.len, data_offset(s, g.blk, g.inblk));
    }
    if (r < 0)
      return r;
    p += g.len;
    off += g.len;
    len -= g.len;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */

int vhd_write_footer_at(struct vhd_image *img, struct vhd_state *s, uint64_t pos)
{
  uint8_t buf[VHD_FOOTER_SIZE];
  vhd_footer_encode(&s->footer, buf);
  return io_pwrite(img->io, buf, sizeof buf, pos);
}

static int beyond_bat(struct vhd_image *img, struct vhd_state *s, uint32_t blk)
{
  return vhd_error(EIO, "%s: block %u lies beyond the BAT (max_table_entries %u)", img->path,
                   blk, s->bat.count);
}

/* Allocate block g.blk at the end of the file and put p into it.
 * Exclusive lock held. */
static int allocate_block(struct vhd_image *img, struct vhd_state *s, struct seg g,
                          const uint8_t *p)
{
  uint64_t start = vhd_block_start_after(s, max_u64(s->data_end, s->footer_pos));
  uint64_t new_end = start + s->bitmap_bytes + s->block_size;
  uint32_t first = g.inblk / SECTOR, count = (uint32_t)(g.len / SECTOR);
  bool with_data = !buffer_is_zero(p, g.len);
  uint8_t *buf;
  size_t buf_len;
  int r;

  if (g.blk >= s->bat.count)
    return beyond_bat(img, s, g.blk);
  /* The lowest free slot before the end of the file. Once taken it is
   * this block's: if clearing or writing it fails it is leaked (found
   * again at the next open), never handed out half-written. */
  bool reused = slots_take_lowest(&s->slots, &start);
  if (reused && (r = vhd_clear_slot(img, s, start)) < 0)
    return r;
  if (start / SECTOR >= VHD_BAT_UNUSED)
    return vhd_error(EFBIG, "%s: no room for block %u: a VHD cannot address data beyond 2 TiB",
                     img->path, g.blk);

  /* The bitmap and, when a small write starts the block, the data in one
   * go; a large write is cheaper as a second pwrite than as a copy into a
   * fresh buffer. Data never written stays a hole past the old end of the
   * file, so zeros need no write at all. */
  bool joined = with_data && g.inblk == 0 && g.len <= JOIN_MAX;
  buf_len = s->bitmap_bytes + (joined ? g.len : 0);
  buf = vhd_malloc(buf_len);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory allocating block %u", img->path, g.blk);
  if (is_diff(s)) {
    /* Exactly the written sectors: the rest still belong to the parent. */
    memset(buf, 0, s->bitmap_bytes);
    vhd_bits_set_range(buf, first, count);
  } else {
    /* Every sector: unwritten ones read as zeros, which is their content. */
    memset(buf, 0xff, s->bitmap_bytes);
  }
  if (joined)
    memcpy(buf + s->bitmap_bytes, p, g.len);

  r = reused ? 0 : vhd_write_footer_at(img, s, new_end);
  if (r == 0) {
    /* From here the old area up to new_end belongs to this block, even if
     * writing it fails: it is leaked then, never reused half-written. */
    if (!reused)
      s->footer_pos = new_end;
    r = io_pwrite(img->io, buf, buf_len, start);
  }
  if (r == 0 && with_data && !joined)
    r = io_pwrite(img->io, p, g.len, start + s->bitmap_bytes + g.inblk);
  if (r == 0) {
    vhd_bat_set(&s->bat, g.blk, (uint32_t)(start / SECTOR));
    vhd_bitmap_install(&s->bitmaps, g.blk, is_diff(s) ? buf : NULL);
    if (!reused)
      s->data_end = new_end;
    s->meta_dirty = true;
  }
  vhd_free(buf);
  return r;
}

/* Under the shared lock: can the segment be written without touching
 * metadata? (0 = yes, or nothing to write; WRITE_NEEDS_EXCLUSIVE, which is
 * 1; or -errno) */
static int plain_write_ok(struct vhd_image *img, struct vhd_state *s, struct seg g,
                          const uint8_t *p)
{
  bool set;
  uint32_t run, count = (uint32_t)(g.len / SECTOR);
  int r;

  if (g.blk >= s->bat.count)
    return beyond_bat(img, s, g.blk);
  if (s->bat.entry[g.blk] == VHD_BAT_UNUSED) {
    /* Zeros into a hole of a dynamic disk: nothing to store. In a
     * differencing disk they must be stored to hide the parent. */
    if (!is_diff(s) && buffer_is_zero(p, g.len))
      return 0;
    return WRITE_NEEDS_EXCLUSIVE;
  }
  /* Bitmaps are kept exact for dynamic disks too: other readers
   * (VirtualBox, blktap) honour them. */
  r = vhd_bitmap_run(&s->bitmaps, img->io, g.blk, vhd_block_offset(s, g.blk),
                     g.inblk / SECTOR, count, &set, &run);
  if (r < 0)
    return r;
  return set && run == count ? 0 : WRITE_NEEDS_EXCLUSIVE;
}

/* Exclusive lock held: write one segment, allocating or marking sectors. */
static int write_seg(struct vhd_image *img, struct vhd_state *s, struct seg g,
                     const uint8_t *p)
{
  int r;

  if (g.blk >= s->bat.count)
    return beyond_bat(img, s, g.blk);
  if (s->bat.entry[g.blk] == VHD_BAT_UNUSED) {
    if (!is_diff(s) && buffer_is_zero(p, g.len))
      return 0;
    return allocate_block(img, s, g, p);
  }
  r = io_pwrite(img->io, p, g.len, data_offset(s, g.blk, g.inblk));
  if (r < 0)
    return r;
  /* The bitmap change is written at flush, after the data is durable. */
  r = vhd_bitmap_set(&s->bitmaps, img->io, g.blk, vhd_block_offset(s, g.blk),
                     g.inblk / SECTOR, (uint32_t)(g.len / SECTOR));
  if (r < 0)
    return r;
  if (r > 0)
    s->meta_dirty = true;
  return 0;
}

int vhd_fmt_write(struct vhd_image *img, const void *buf, size_t len, uint64_t off,
                  bool exclusive)
{
  struct vhd_state *s = vhd_state(img);
  const uint8_t *p = buf;
  int r;

  if (!vhd_is_sparse(s))
    return io_pwrite(img->io, buf, len, off);

  if (!exclusive) {
    /* Decide for the whole request before writing any of it. */
    for (uint64_t o = off, left = len; left > 0;) {
      struct seg g = seg_at(s, o, left);
      r = plain_write_ok(img, s, g, p + (o - off));
      if (r < 0 || r == WRITE_NEEDS_EXCLUSIVE)
        return r;
      o += g.len;
      left -= g.len;
    }
    for (uint64_t o = off, left = len; left > 0;) {
      struct seg g = seg_at(s, o, left);
      if (s->bat.entry[g.blk] != VHD_BAT_UNUSED &&
          (r = io_pwrite(img->io, p + (o - off), g.len, data_offset(s, g.blk, g.inblk))) < 0)
        return r;
      o += g.len;
      left -= g.len;
    }
    return 0;
  }

  for (uint64_t o = off, left = len; left > 0;) {
    struct seg g = seg_at(s, o, left);
    if ((r = write_seg(img, s, g, p + (o - off))) < 0)
      return r;
    o += g.len;
    left -= g.len;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Flushing                                                            */

static uint64_t bitmap_offset_of(void *opaque, uint32_t blk)
{
  return vhd_block_offset(opaque, blk);
}

/* After freeing blocks at the end: move the footer down and cut the file,
 * once the BAT that no longer references them is durable. */
static int shrink_tail(struct vhd_image *img, struct vhd_state *s)
{
  uint64_t end = vhd_bat_blocks_end(&s->bat, (uint64_t)s->bitmap_bytes + s->block_size);
  int r;

  if (end < s->meta_end)
    end = s->meta_end;
  end = align_up(end, SECTOR);
  s->data_end = end;
  if (end >= s->footer_pos)
    return 0;
  /* The old footer stays at EOF until the cut. */
  if ((r = vhd_write_footer_at(img, s, end)) < 0 ||
      (r = io_set_size(img->io, end + VHD_FOOTER_SIZE)) < 0)
    return r;
  s->footer_pos = end;
  s->footer_short = false;
  return io_flush(img->io);
}

int vhd_fmt_flush(struct vhd_image *img)
{
  struct vhd_state *s = vhd_state(img);
  int r;

  if (!io_writable(img->io))
    return 0;
  if (!vhd_is_sparse(s) || !(s->meta_dirty || s->bat.any_dirty || s->trimmed))
    return io_flush(img->io);

  /* 1. The data the new metadata will point at. */
  if ((r = io_flush(img->io)) < 0)
    return r;
  /* 2. Bitmaps, and the footer when it needs repair (found only at offset
   *    0, or a stale copy there). */
  if ((r = vhd_bitmap_write_dirty(&s->bitmaps, img->io, bitmap_offset_of, s)) < 0)
    return r;
  if (s->footer_from_copy || s->copy_mismatch || s->footer_dirty) {
    if ((r = vhd_write_footer_at(img, s, s->footer_pos)) < 0 ||
        (r = vhd_write_footer_at(img, s, 0)) < 0)
      return r;
    s->footer_from_copy = s->copy_mismatch = s->footer_dirty = false;
  }
  if ((r = io_flush(img->io)) < 0)
    return r;
  /* 3. The BAT, now that everything it references is durable. */
  if ((r = vhd_bat_write_dirty(img->io, &s->bat)) < 0 || (r = io_flush(img->io)) < 0)
    return r;
  s->meta_dirty = false;
  /* No durable entry points at the blocks freed so far: their slots may
   * take new blocks now. */
  slots_commit(&s->slots);
  if (s->trimmed) {
    if ((r = shrink_tail(img, s)) < 0)
      return r;
    slots_drop_from(&s->slots, s->data_end);
    s->trimmed = false;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Zeroing                                                             */

/* A blktap batmap claims blocks are fully present; before any block is
 * freed, zero its cookie (the way blktap itself disables it) so tapdisk
 * stops trusting it. Done before the BAT changes reach the disk. */
int vhd_batmap_invalidate(struct vhd_image *img, struct vhd_state *s)
{
  static const uint8_t none[8];
  if (!s->batmap_offset)
    return 0;
  int r = io_pwrite(img->io, none, sizeof none, s->batmap_offset);
  if (r == 0)
    s->batmap_offset = 0;
  return r;
}

/* The BAT entry goes at the next flush; the host space is given back now
 * (a crash before the flush leaves the old entry pointing at zeros, which
 * is what a trim of a dynamic block, or of a child's block over zeros,
 * allows). The slot is reused only after that flush. */
int vhd_free_block(struct vhd_image *img, struct vhd_state *s, uint32_t blk)
{
  uint64_t start = vhd_block_offset(s, blk);
  int r;

  if ((r = vhd_batmap_invalidate(img, s)) < 0)
    return r;
  vhd_bat_set(&s->bat, blk, VHD_BAT_UNUSED);
  vhd_bitmap_forget(&s->bitmaps, blk);
  if (img->trims)
    trims_forget(img->trims, blk);
  s->meta_dirty = true;
  s->trimmed = true;
  /* Out of memory only means the slot waits for compact. */
  (void)slots_push(&s->slots.freed, start);
  if (!s->can_punch)
    return 0;
  r = io_punch_hole(img->io, start, vhd_slot_bytes(s));
  if (r == -ENOTSUP) {
    s->can_punch = false;
    r = 0;
  }
  return r;
}

/* A block whose every visible byte the segment covers (the last block may
 * reach past the virtual size). */
static bool covers_block(struct vhd_image *img, struct vhd_state *s, struct seg g,
                         uint64_t off)
{
  return g.inblk == 0 && (g.len == s->block_size || off + g.len >= img->virtual_size);
}

/* The cheap part of zeroing (driver.h): a fixed disk is its file; in a
 * dynamic one, a hole needs nothing and an allocated block covered whole
 * may be freed (with may-trim). A differencing disk stores its zeros, to
 * hide the parent: always written. */
int vhd_fmt_zero(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags, bool dry,
                 uint64_t *run)
{
  struct vhd_state *s = vhd_state(img);

  if (!vhd_is_sparse(s)) {
    if (!s->can_punch)
      flags &= ~VHD_ZERO_MAY_TRIM;
    int r = image_zero_by_punch(img, off, len, flags, dry, run);
    if (r == 0 && !dry && !io_may_punch(img->io))
      s->can_punch = false;
    return r;
  }
  *run = len;
  if (is_diff(s))
    return 0;
  int cheap = -1;
  uint64_t done = 0;
  while (done < len) {
    struct seg g = seg_at(s, off + done, len - done);
    bool hole = bat_entry(s, g.blk) == VHD_BAT_UNUSED;
    bool frees = !hole && (flags & VHD_ZERO_MAY_TRIM) && covers_block(img, s, g, off + done);
    int here = hole || frees;
    if (cheap >= 0 && here != cheap)
      break;
    cheap = here;
    if (frees && !dry) {
      int r = vhd_free_block(img, s, g.blk);
      if (r < 0)
        return r;
    }
    done += g.len;
  }
  *run = done;
  return cheap;
}

/* ------------------------------------------------------------------ */
/* Block status                                                        */

static int status_fixed(struct vhd_image *img, uint64_t off, uint64_t len,
                        enum layer_state *state, uint64_t *run)
{
  uint64_t data, hole;

  if (io_find_data(img->io, off, &data, &hole) < 0 || hole <= off) {
    *state = LAYER_DATA;
    *run = len;
  } else if (data > off) {
    *state = LAYER_ZERO;
    *run = min_u64(data - off, len);
  } else {
    *state = LAYER_DATA;
    *run = min_u64(hole - off, len);
  }
  return 0;
}

int vhd_fmt_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                         enum layer_state *state, uint64_t *run)
{
  struct vhd_state *s = vhd_state(img);
  uint64_t total = 0;

  if (!vhd_is_sparse(s))
    return status_fixed(img, off, len, state, run);

  while (total < len) {
    struct seg g = seg_at(s, off + total, len - total);
    enum layer_state st;
    uint64_t n = g.len;

    if (bat_entry(s, g.blk) == VHD_BAT_UNUSED) {
      st = LAYER_ABSENT;
    } else if (!is_diff(s)) {
      st = LAYER_DATA;
    } else {
      bool set;
      uint32_t bits;
      int r = vhd_bitmap_run(&s->bitmaps, img->io, g.blk, vhd_block_offset(s, g.blk),
                             g.inblk / SECTOR, (uint32_t)(g.len / SECTOR), &set, &bits);
      if (r < 0)
        return r;
      st = set ? LAYER_DATA : LAYER_ABSENT;
      n = (uint64_t)bits * SECTOR;
    }
    if (total == 0)
      *state = st;
    else if (st != *state)
      break;
    total += n;
    if (n < g.len)
      break;
  }
  *run = total;
  return 0;
}

/* A fixed image's disk is its file; a block's data follows its bitmap, so
 * only one block at a time is contiguous in the file. */
int vhd_fmt_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                        uint64_t *run)
{
  struct vhd_state *s = vhd_state(img);

  if (!vhd_is_sparse(s)) {
    *host = off;
    *run = len;
    return 0;
  }
  struct seg g = seg_at(s, off, len);
  if (bat_entry(s, g.blk) == VHD_BAT_UNUSED)
    return -ENOTSUP;
  *host = data_offset(s, g.blk, g.inblk);
  *run = g.len;
  return 0;
}
