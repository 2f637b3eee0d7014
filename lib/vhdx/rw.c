/* SPDX-License-Identifier: BSD-3-Clause */
/* Virtual disk I/O: translating guest offsets through the BAT (and, in
 * differencing files, the sector bitmaps), allocating blocks, zeroing and
 * trimming, and reporting allocation. Requests arrive sector-aligned and
 * inside the virtual size (driver.h). */
#include "vhdx.h"
#include "error.h"
#include "image.h"
#include "trims.h"
#include "util/zero.h"
#include "util/arith.h"

/* How a block reads, coarsely: runs of blocks of one class are served
 * together. */
enum block_class { CLASS_DATA, CLASS_PARTIAL, CLASS_ABSENT, CLASS_ZERO };

static enum block_class classify(unsigned state)
{
  switch (state) {
  case VHDX_BAT_FULLY_PRESENT: return CLASS_DATA;
  case VHDX_BAT_PARTIALLY_PRESENT: return CLASS_PARTIAL;
  case VHDX_BAT_NOT_PRESENT: return CLASS_ABSENT;
  default: return CLASS_ZERO;   /* UNDEFINED, ZERO, UNMAPPED: we return zeros */
  }
}

static uint64_t block_offset(const struct vhdx *s, uint64_t block)
{
  return VHDX_BAT_OFFSET(vhdx_bat_get(s, vhdx_payload_index(s, block)));
}

/* Payload bytes from the file. A log is not meant to touch payload blocks,
 * but if one did, a read-only open must see what a replay to disk would
 * leave, so the overlay (empty unless a log was replayed in memory) applies
 * here too. */
static int data_read(struct vhdx *s, void *buf, uint64_t n, uint64_t off)
{
  int r = io_pread(s->io, buf, (size_t)n, off);
  if (r == 0 && s->overlay.count)
    vhdx_overlay_apply(&s->overlay, buf, (size_t)n, off);
  return r;
}

/* Bytes from off (inside block b) to len that continue in blocks of the same
 * class; for DATA also contiguous in the file, so one pread serves them. */
static uint64_t extend_run(const struct vhdx *s, uint64_t off, uint64_t len,
                           enum block_class cls)
{
  uint64_t bs = s->block_size, b = off / bs;
  uint64_t n = min_u64(len, bs - off % bs);
  uint64_t base = block_offset(s, b);
  for (uint64_t k = 1; n < len; k++) {
    unsigned st = vhdx_block_state(s, b + k);
    if (classify(st) != cls || cls == CLASS_PARTIAL)
      break;
    if (cls == CLASS_DATA && block_offset(s, b + k) != base + k * bs)
      break;
    n += min_u64(len - n, bs);
  }
  return n;
}

int vhdx_read(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
  struct vhdx *s = vhdx_of(img);
  uint8_t *out = buf;
  while (len) {
    uint64_t b = off / s->block_size, inblk = off % s->block_size;
    enum block_class cls = classify(vhdx_block_state(s, b));
    uint64_t n = extend_run(s, off, len, cls);
    int r = 0;
    switch (cls) {
    case CLASS_DATA:
      r = data_read(s, out, n, block_offset(s, b) + inblk);
      break;
    case CLASS_PARTIAL: {
      bool set;
      uint64_t run;
      uint64_t first = (b % s->chunk_ratio) * s->sectors_per_block + inblk / s->lss;
      r = vhdx_bitmap_run(s, b / s->chunk_ratio, first, n / s->lss, &set, &run);
      if (r < 0)
        return r;
      n = run * s->lss;
      if (set)
        r = data_read(s, out, n, block_offset(s, b) + inblk);
      else
        r = image_read_parent(img, out, (size_t)n, off);
      break;
    }
    case CLASS_ABSENT:
      if (s->has_parent)
        r = image_read_parent(img, out, (size_t)n, off);
      else
        memset(out, 0, (size_t)n);
      break;
    case CLASS_ZERO:
      memset(out, 0, (size_t)n);
      break;
    }
    if (r < 0)
      return r;
    out += n;
    off += n;
    len -= (size_t)n;
  }
  return 0;
}

int vhdx_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                      enum layer_state *state, uint64_t *run)
{
  struct vhdx *s = vhdx_of(img);
  uint64_t b = off / s->block_size, inblk = off % s->block_size;
  enum block_class cls = classify(vhdx_block_state(s, b));
  uint64_t n = extend_run(s, off, len, cls);
  switch (cls) {
  case CLASS_DATA:
    *state = LAYER_DATA;
    break;
  case CLASS_PARTIAL: {
    bool set;
    uint64_t sectors;
    uint64_t first = (b % s->chunk_ratio) * s->sectors_per_block + inblk / s->lss;
    int r = vhdx_bitmap_run(s, b / s->chunk_ratio, first, n / s->lss, &set, &sectors);
    if (r < 0)
      return r;
    n = sectors * s->lss;
    *state = set ? LAYER_DATA : LAYER_ABSENT;
    break;
  }
  case CLASS_ABSENT:
    *state = LAYER_ABSENT;
    break;
  case CLASS_ZERO:
    *state = LAYER_ZERO;
    break;
  }
  *run = n;
  return 0;
}

/* A present block's payload, extended over the blocks that follow it in
 * the file. A log replayed in memory (overlay) may change bytes the file
 * holds, so then no range reads exactly as the file does. */
int vhdx_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                     uint64_t *run)
{
  struct vhdx *s = vhdx_of(img);
  uint64_t b = off / s->block_size;
  enum block_class cls = classify(vhdx_block_state(s, b));
  if (s->overlay.count || (cls != CLASS_DATA && cls != CLASS_PARTIAL))
    return -ENOTSUP;
  *host = block_offset(s, b) + off % s->block_size;
  *run = cls == CLASS_DATA ? extend_run(s, off, len, cls)
                           : min_u64(len, s->block_size - off % s->block_size);
  return 0;
}

/* --- changes ------------------------------------------------------------- */

/* Before the first change of a session: fresh file_write_guid and
 * data_write_guid (a child's link to this file breaks from now on), except
 * in a merge, which keeps the data_write_guid until its end. */
static int begin_change(struct vhdx *s)
{
  if (s->broken)
    return vhd_error(EIO, "%s: an earlier metadata update failed; close and reopen the "
                     "image", s->path);
  if (s->guids_updated)
    return 0;
  bool keep = (s->img->flags & VHD_OPEN_KEEP_LINK_ID) != 0;
  int r = vhdx_header_update(s, VHDX_NEW_FILE_GUID | (keep ? 0 : VHDX_NEW_DATA_GUID), NULL);
  if (r == 0)
    s->guids_updated = true;
  return r;
}

int vhdx_begin_change(struct vhdx *s) { return begin_change(s); }

/* A free slot's old bytes made to read as zeros. */
static int clear_slot(struct vhdx *s, uint64_t off)
{
  int r = io_punch_hole(s->io, off, s->block_size);
  if (r != -ENOTSUP)
    return r;
  uint8_t *z = vhd_calloc(1, VHDX_MIB);
  if (!z)
    return vhd_error(ENOMEM, "%s: out of memory clearing a block slot", s->path);
  r = 0;
  for (uint64_t done = 0; done < s->block_size && r == 0; done += VHDX_MIB)
    r = io_pwrite(s->io, z, VHDX_MIB, off + done);
  vhd_free(z);
  return r;
}

/* Space for a new block or bitmap block; it reads as zeros. Payload
 * blocks take the lowest free slot (slots.h), everything else goes at the
 * end of the file. */
static int allocate(struct vhdx *s, uint64_t len, uint64_t *out)
{
  if (len == s->block_size && slots_take_lowest(&s->slots, out))
    return clear_slot(s, *out);
  uint64_t off = s->alloc_end;
  int r = io_set_size(s->io, off + len);
  if (r < 0)
    return r;
  s->alloc_end = off + len;
  s->file_size = off + len;
  *out = off;
  return 0;
}

/* The chunk's sector bitmap block, allocated on first use. *fresh says it
 * was just allocated (and so holds only zero bits). */
static int ensure_bitmap(struct vhdx *s, uint64_t chunk, bool *fresh)
{
  uint64_t idx = vhdx_bitmap_index(s, chunk);
  *fresh = false;
  if (VHDX_BAT_STATE(vhdx_bat_get(s, idx)) == VHDX_SB_PRESENT)
    return 0;
  if (idx >= s->bat_count)
    return vhd_error(ENOSPC, "%s: the BAT region has no entry for sector bitmap block %llu",
                     s->path, (unsigned long long)chunk);
  uint64_t off;
  int r = allocate(s, VHDX_BITMAP_BLOCK, &off);
  if (r < 0)
    return r;
  vhdx_bat_set(s, idx, VHDX_BAT_ENTRY(VHDX_SB_PRESENT, off));
  *fresh = true;
  return 0;
}

/* Write one piece [off, off+n) lying inside one block. */
static int write_piece(struct vhd_image *img, const uint8_t *buf, uint64_t n, uint64_t off)
{
  struct vhdx *s = vhdx_of(img);
  uint64_t b = off / s->block_size, inblk = off % s->block_size;
  uint64_t idx = vhdx_payload_index(s, b);
  uint64_t chunk = b / s->chunk_ratio;
  uint64_t first = (b % s->chunk_ratio) * s->sectors_per_block + inblk / s->lss;
  unsigned st = vhdx_block_state(s, b);
  bool present = st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
  /* Zeros into a block that reads as zeros change nothing: keep the image
   * thin (and the file untouched). */
  bool reads_zero = !present && (st != VHDX_BAT_NOT_PRESENT || !s->has_parent);
  if (reads_zero && buffer_is_zero(buf, (size_t)n))
    return 0;
  int r = begin_change(s);
  if (r < 0)
    return r;
  switch (st) {
  case VHDX_BAT_FULLY_PRESENT:
    return io_pwrite(s->io, buf, (size_t)n, block_offset(s, b) + inblk);
  case VHDX_BAT_PARTIALLY_PRESENT:
    r = io_pwrite(s->io, buf, (size_t)n, block_offset(s, b) + inblk);
    if (r == 0)
      r = vhdx_bitmap_assign(s, chunk, first, n / s->lss, true);
    return r;
  default:
    break;
  }
  bool partial = st == VHDX_BAT_NOT_PRESENT && s->has_parent && n < s->block_size;
  bool fresh_bitmap = false;
  if (partial) {
    r = ensure_bitmap(s, chunk, &fresh_bitmap);
    if (r < 0)
      return r;
  }
  uint64_t data;
  r = allocate(s, s->block_size, &data);
  if (r == 0)
    r = io_pwrite(s->io, buf, (size_t)n, data + inblk);
  if (r < 0)
    return r;
  if (partial) {
    /* Old bits of a block that was never present here mean nothing. */
    uint64_t base = (b % s->chunk_ratio) * s->sectors_per_block;
    if (!fresh_bitmap)
      r = vhdx_bitmap_assign(s, chunk, base, s->sectors_per_block, false);
    if (r == 0)
      r = vhdx_bitmap_assign(s, chunk, first, n / s->lss, true);
    if (r < 0)
      return r;
    vhdx_bat_set(s, idx, VHDX_BAT_ENTRY(VHDX_BAT_PARTIALLY_PRESENT, data));
  } else {
    /* The rest of the new block is fresh file space: zeros, which is
     * what an unallocated block of a dynamic file (or a ZERO block of any
     * file) reads as. */
    vhdx_bat_set(s, idx, VHDX_BAT_ENTRY(VHDX_BAT_FULLY_PRESENT, data));
  }
  return 0;
}

/* All of [off, off+len) lies in data this file already holds. */
static bool writable_in_place(struct vhdx *s, uint64_t off, uint64_t len)
{
  while (len) {
    uint64_t b = off / s->block_size, inblk = off % s->block_size;
    uint64_t n = min_u64(len, s->block_size - inblk);
    unsigned st = vhdx_block_state(s, b);
    if (st == VHDX_BAT_PARTIALLY_PRESENT) {
      bool set;
      uint64_t run;
      uint64_t first = (b % s->chunk_ratio) * s->sectors_per_block + inblk / s->lss;
      if (vhdx_bitmap_run(s, b / s->chunk_ratio, first, n / s->lss, &set, &run) < 0 ||
          !set || run * s->lss < n)
        return false;
    } else if (st != VHDX_BAT_FULLY_PRESENT) {
      return false;
    }
    off += n;
    len -= n;
  }
  return true;
}

static int write_range(struct vhd_image *img, const uint8_t *buf, uint64_t len, uint64_t off)
{
  struct vhdx *s = vhdx_of(img);
  while (len) {
    uint64_t n = min_u64(len, s->block_size - off % s->block_size);
    int r = write_piece(img, buf, n, off);
    if (r < 0)
      return r;
    buf += n;
    off += n;
    len -= n;
  }
  return 0;
}

int vhdx_write(struct vhd_image *img, const void *buf, size_t len, uint64_t off,
               bool exclusive)
{
  struct vhdx *s = vhdx_of(img);
  /* Under the shared lock only writes into existing data may go ahead,
   * and only once the session's header update is done. */
  if (!exclusive && (!s->guids_updated || s->broken || !writable_in_place(s, off, len)))
    return WRITE_NEEDS_EXCLUSIVE;
  return write_range(img, buf, len, off);
}

/* The cheap part of zeroing [off, off+n) inside one block (driver.h): 1
 * when it needs no data written (done unless dry), 0 when it does. */
static int zero_piece(struct vhd_image *img, uint64_t off, uint64_t n, unsigned flags, bool dry)
{
  struct vhdx *s = vhdx_of(img);
  uint64_t b = off / s->block_size;
  uint64_t idx = vhdx_payload_index(s, b);
  unsigned st = vhdx_block_state(s, b);
  bool present = st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT;
  bool reads_zero = !present && (st != VHDX_BAT_NOT_PRESENT || !s->has_parent);
  /* The last block may stop at the end of the disk. */
  bool whole = off % s->block_size == 0 &&
               (n == s->block_size || off + n == s->virtual_size);
  /* A fixed file keeps every block present (MS-VHDX 2.5.1.1), but its
   * space may still go back to the host. */
  bool fixed = s->leave_allocated && !s->has_parent;
  bool trim = flags & VHD_ZERO_MAY_TRIM;

  if (reads_zero && (st != VHDX_BAT_UNDEFINED || fixed || !whole))
    return 1;   /* UNDEFINED reads as zeros here; whole ones become ZERO below */
  bool punch_only = fixed && present;
  if (punch_only ? !(trim && whole && io_may_punch(s->io)) : !(whole && (trim || !present)))
    return 0;
  if (dry)
    return 1;
  int r = begin_change(s);
  if (r < 0)
    return r;
  if (punch_only)
    return io_punch_hole(s->io, block_offset(s, b), s->block_size) == 0;
  /* ZERO reads as zeros and hides any parent; its offset must be 0. */
  uint64_t old = block_offset(s, b);
  vhdx_bat_set(s, idx, VHDX_BAT_ENTRY(VHDX_BAT_ZERO, 0));
  if (present) {
    /* Reading the old block before the BAT change is durable gives
     * zeros too, so the space can go at once; once punched (reading as
     * zeros) it can hold a new block after the next commit. */
    r = io_punch_hole(s->io, old, s->block_size);
    if (r < 0 && r != -ENOTSUP)
      return r;
    vhdx_slot_freed(s, old);
  }
  return 1;
}

/* Block by block, as long as the pieces give the same answer. */
int vhdx_zero(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags, bool dry,
              uint64_t *run)
{
  struct vhdx *s = vhdx_of(img);
  int cheap = -1;
  uint64_t done = 0;
  while (done < len) {
    uint64_t n = min_u64(len - done, s->block_size - (off + done) % s->block_size);
    /* A piece that needs writes is only looked at, never changed. */
    int here = zero_piece(img, off + done, n, flags, true);
    if (here < 0)
      return here;
    if (cheap >= 0 && here != cheap)
      break;
    cheap = here;
    if (here && !dry) {
      here = zero_piece(img, off + done, n, flags, false);
      if (here < 0)
        return here;
      if (!here) {   /* the host could not punch after all */
        if (done == 0) {
          done = n;
          cheap = 0;
        }
        break;
      }
    }
    done += n;
  }
  *run = done;
  return cheap;
}

/* A trim (vhd_discard): nothing is written and nothing allocated. A block
 * trimmed whole goes as zero_piece frees it (ZERO, space punched and its
 * slot reused after the next commit; a fixed file's block only punched).
 * Part of a present block: the host pages inside it are punched, the BAT
 * and sector bitmap stay; the parts add up (trims.h) until they cover the
 * block, which then goes like a whole one. Blocks this file does not hold
 * have nothing to give back. */
int vhdx_discard(struct vhd_image *img, uint64_t off, uint64_t len)
{
  struct vhdx *s = vhdx_of(img);
  while (len) {
    uint64_t b = off / s->block_size, inblk = off % s->block_size;
    uint64_t n = min_u64(len, s->block_size - inblk);
    uint64_t visible = min_u64(s->block_size, s->virtual_size - (off - inblk));
    unsigned st = vhdx_block_state(s, b);
    int r = 0;
    /* A fixed file keeps its blocks (MS-VHDX 2.5.1.1): pages only. */
    bool fixed = s->leave_allocated && !s->has_parent;
    if (st == VHDX_BAT_FULLY_PRESENT || st == VHDX_BAT_PARTIALLY_PRESENT) {
      bool whole = !fixed && inblk == 0 && n >= visible;
      if (!whole && (r = begin_change(s)) == 0) {
        r = trims_punch_pages(s->io, block_offset(s, b) + inblk, n);
        if (r == -ENOTSUP)
          r = 0;
        struct trim_log *t = r == 0 && !fixed ? trims_of(img, s->block_size) : NULL;
        whole = t && trims_add(t, b, inblk, n, visible);
      }
      if (r == 0 && whole && (r = zero_piece(img, off - inblk, visible, VHD_ZERO_MAY_TRIM, false)) > 0)
        r = 0;
    }
    if (r < 0)
      return r;
    off += n;
    len -= n;
  }
  return 0;
}

int vhdx_flush(struct vhd_image *img)
{
  struct vhdx *s = vhdx_of(img);
  if (!s->meta_dirty)
    return vhdx_sync(s);
  /* Blocks freed at the end leave space that belongs to nothing once the
   * commit is durable: cut it, as compact does, rather than leak it. */
  bool freed = s->slots.freed.count > 0;
  int r = vhdx_log_commit(s);
  if (r == 0 && freed)
    r = vhdx_cut_tail(s);
  return r;
}
