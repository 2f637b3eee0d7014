/* SPDX-License-Identifier: BSD-3-Clause */
/* State of an open VHD image, shared by the files of the VHD driver. */
#ifndef LIBVHD_VHD_PRIV_H
#define LIBVHD_VHD_PRIV_H

#include "driver.h"
#include "slots.h"
#include "vhd/bat.h"
#include "vhd/bitmap.h"
#include "vhd/dyn_header.h"
#include "vhd/footer.h"

struct vhd_state {
  struct vhd_footer footer;
  struct vhd_dyn_header header;   /* dynamic and differencing only */
  uint64_t header_offset;

  /* Dynamic and differencing: the table and the geometry of a block. */
  struct vhd_bat bat;
  struct vhd_bitmap_cache bitmaps;
  uint32_t block_size;       /* data bytes per block */
  uint32_t bitmap_bytes;     /* sector bitmap in front of each block */
  uint32_t sectors_per_block;
  uint32_t total_blocks;     /* blocks the virtual size spans */

  /* Where the footer lives now (the end of the file minus the footer), and
   * the end of the last structure (BAT, locator payloads, blocks). A new
   * block goes at footer_pos, which is at least data_end. */
  uint64_t footer_pos;
  uint64_t data_end;

  bool footer_from_copy;     /* the EOF footer was bad; offset 0 used */
  bool footer_short;         /* 511-byte footer */
  bool copy_mismatch;        /* offset-0 copy differs from the EOF footer */
  bool meta_dirty;           /* BAT or bitmaps changed since the last flush */
  bool footer_dirty;         /* footer (and copy) must be rewritten */
  uint64_t meta_end;         /* end of header, BAT and locator payloads */
  bool trimmed;              /* blocks freed since the last flush */
  bool can_punch;            /* cleared after the first -ENOTSUP */
  /* blktap's batmap ("tdbatmap" header right after the BAT): a bit per
   * block saying "fully present". We never read it, but it is metadata we
   * must not overwrite, and it must stop claiming blocks we free. */
  uint64_t batmap_offset;    /* its header; 0 when there is none */

  /* Block slots no BAT entry uses, between the first block and the end
   * (slots.h): found at open, added by trims, filled before the file
   * grows. Maintenance operations that move structures forget them. */
  struct free_slots slots;

  char *loc_path[VHD_MAX_LOCATORS];  /* decoded path locators, as stored */
  const char *parent_hint;   /* the preferred one of them, or NULL */
};

static inline struct vhd_state *vhd_state(struct vhd_image *img)
{
  return img->priv;
}

static inline bool vhd_is_sparse(const struct vhd_state *s)
{
  return s->footer.disk_type != VHD_TYPE_FIXED;
}

/* File offset of block blk's sector bitmap (the block must be allocated). */
static inline uint64_t vhd_block_offset(const struct vhd_state *s, uint32_t blk)
{
  return (uint64_t)s->bat.entry[blk] * VHD_SECTOR_SIZE;
}

/* vhd_open.c */
int vhd_fmt_probe(vhd_io *io, uint64_t file_size);
int vhd_fmt_open(struct vhd_image *img, struct vhd_diag *d);
void vhd_fmt_close(struct vhd_image *img);
void vhd_fmt_info(struct vhd_image *img, struct vhd_info *info);
int vhd_fmt_check(struct vhd_image *img, struct vhd_diag *d);
/* A footer whose cookie and checksum are right (blktap's unchecksummed
 * "hidden" byte tolerated for creator "tap"). */
bool vhd_footer_usable(const uint8_t *buf, size_t len);
void vhd_warn(struct vhd_image *img, struct vhd_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* vhd_rw.c */
int vhd_fmt_read(struct vhd_image *img, void *buf, size_t len, uint64_t off);
int vhd_fmt_write(struct vhd_image *img, const void *buf, size_t len, uint64_t off,
                  bool exclusive);
int vhd_fmt_flush(struct vhd_image *img);
int vhd_fmt_zero(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags, bool dry,
                 uint64_t *run);
int vhd_fmt_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                         enum layer_state *state, uint64_t *run);
/* Before freeing any block: disable a blktap batmap (see vhd_state). */
int vhd_batmap_invalidate(struct vhd_image *img, struct vhd_state *s);
/* Free block blk: its BAT entry goes at the next flush, its space is
 * punched now and becomes a free slot once the flush made that durable. */
int vhd_free_block(struct vhd_image *img, struct vhd_state *s, uint32_t blk);
int vhd_fmt_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                        uint64_t *run);

/* vhd_discard.c */
int vhd_fmt_discard(struct vhd_image *img, uint64_t off, uint64_t len);

/* vhd_slots.c */
/* Bytes of one block slot: sector bitmap and data. */
static inline uint64_t vhd_slot_bytes(const struct vhd_state *s)
{
  return (uint64_t)s->bitmap_bytes + s->block_size;
}
/* Where a block appended at or after pos starts. Its data goes on a 4 KiB
 * boundary (4 KiB-sector disks, O_DIRECT) the way Windows lays out its own
 * VHDs: the padding comes before the sector bitmap, whose last byte ends
 * on the boundary. Any sector would do for readers: the BAT entry names
 * the bitmap's sector, so old layouts read and write as before. */
#define VHD_DATA_ALIGN 4096u
static inline uint64_t vhd_block_start_after(const struct vhd_state *s, uint64_t pos)
{
  uint64_t data = (pos + s->bitmap_bytes + VHD_DATA_ALIGN - 1) / VHD_DATA_ALIGN * VHD_DATA_ALIGN;
  return data - s->bitmap_bytes;
}
/* At open: every slot between the end of the header, BAT and locators
 * and the last block that no BAT entry and none of the meta ranges use. */
int vhd_find_free_slots(struct vhd_image *img, struct vhd_state *s,
                        const struct vhd_file_range *meta, size_t nmeta);
/* Make a slot taken from the free list read as zeros (punched, or zeros
 * written where the host cannot punch). */
int vhd_clear_slot(struct vhd_image *img, struct vhd_state *s, uint64_t start);
/* After a crash the footer may be missing at the end of the file (the
 * copy at offset 0 was used): put it back after the last structure and
 * cut the file there. Read-write opens only. */
int vhd_restore_footer(struct vhd_image *img, struct vhd_state *s);

/* vhd_create.c */
int vhd_fmt_create(vhd_io *io, const struct vhd_create_params *p,
                   const struct parent_link *parent);
/* An encoded locator payload (vhd_malloc'd data). */
struct vhd_locator_payload {
  uint32_t code;
  uint8_t *data;
  size_t len;
};
/* Fill h's parent fields (identity, parent_unicode_name) for parent and
 * encode its W2ru, W2ku and MacX payloads into pl (*npl set; the caller
 * frees each data). Used by create and set-parent. */
int vhd_link_parent(const char *path, struct vhd_dyn_header *h,
                    const struct parent_link *parent, struct vhd_locator_payload pl[3],
                    size_t *npl);

/* vhd_set_parent.c, vhd_repair.c */
int vhd_fmt_set_parent(struct vhd_image *img, const struct parent_link *parent);
int vhd_fmt_repair(struct vhd_image *img, struct vhd_diag *d);
int vhd_fmt_reset_id(struct vhd_image *img);
/* Encode the footer and write it at pos. */
int vhd_write_footer_at(struct vhd_image *img, struct vhd_state *s, uint64_t pos);

/* vhd_compact.c */
int vhd_fmt_compact(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
                    struct vhd_compact_result *result);
int vhd_fmt_block_slot(struct vhd_image *img, uint64_t blk, uint64_t *host, uint64_t *bytes);
int vhd_fmt_pack_rules(struct vhd_image *img, struct pack_rules *rules);
int vhd_fmt_move_blocks(struct vhd_image *img, const struct pack_plan *plan,
                        vhd_progress_fn progress, void *opaque);
uint64_t vhd_fmt_structures_end(struct vhd_image *img);

/* vhd_resize.c */
int vhd_fmt_resize(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                   void *opaque);
int vhd_fmt_resize_room(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                        void *opaque, uint64_t *stale_end);

/* vhd_parent.c */
int vhd_fmt_parent_candidates(struct vhd_image *img, struct parent_candidates *c);
int vhd_fmt_parent_matches(struct vhd_image *img, struct vhd_image *candidate);
/* The identity a child records for parent: the VHD unique id, or the id
 * another format's driver reports. */
void vhd_parent_identity(struct vhd_image *parent, uint8_t id[16], uint32_t *timestamp);

#endif
