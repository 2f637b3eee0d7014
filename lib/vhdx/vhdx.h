/* SPDX-License-Identifier: BSD-3-Clause */
/* The VHDX driver's internal interface (MS-VHDX; see
 * ../shared/reference/vhd-vhdx-format.md, part 2).
 *
 * One file per on-disk structure: crc32c.c, header.c (file identifier and
 * the two headers), region.c (region tables), metadata.c (metadata table,
 * system items, parent locator), bat.c (block allocation table and sector
 * bitmaps), log.c (finding and replaying the log), log_write.c (metadata
 * transactions through the log), overlay.c (metadata reads that see a log
 * replayed in memory), guids.c (the GUIDs the format names), rw.c (virtual
 * disk I/O), create.c, parent.c, set_parent.c, check.c, repair.c,
 * compact.c, resize.c, bat_move.c (a larger BAT region for resize) and
 * open.c (the driver table).
 *
 * All metadata is read through vhdx_meta_read() so that a read-only open
 * of a file with a pending log sees the replayed state without writing a
 * byte. All metadata changes of a read-write session are collected in
 * memory (BAT sectors marked dirty, sector bitmap sectors kept in a small
 * pending map) and reach the file in one log transaction at flush time,
 * after the payload data they point at is durable.
 */
#ifndef LIBVHD_VHDX_VHDX_H
#define LIBVHD_VHDX_VHDX_H

#include "driver.h"
#include "platform.h"
#include "slots.h"

#define VHDX_KIB 1024u
#define VHDX_MIB (1024u * 1024u)

#define VHDX_HEADER1_OFFSET (64u * VHDX_KIB)
#define VHDX_HEADER2_OFFSET (128u * VHDX_KIB)
#define VHDX_HEADER_SIZE 4096u
#define VHDX_REGION1_OFFSET (192u * VHDX_KIB)
#define VHDX_REGION2_OFFSET (256u * VHDX_KIB)
#define VHDX_REGION_SIZE (64u * VHDX_KIB)
#define VHDX_REGION_MAX_ENTRIES 2047u
#define VHDX_META_TABLE_SIZE (64u * VHDX_KIB)
#define VHDX_META_MAX_ENTRIES 2047u
#define VHDX_META_MAX_ITEM VHDX_MIB
#define VHDX_SECTOR 4096u                  /* log and metadata update unit */
#define VHDX_BITMAP_BLOCK VHDX_MIB          /* one sector bitmap block */
#define VHDX_MAX_VIRTUAL_SIZE (64ull << 40)  /* 64 TiB */
#define VHDX_MIN_BLOCK VHDX_MIB
#define VHDX_MAX_BLOCK (256u * VHDX_MIB)

/* The BAT is held in memory (8 bytes an entry), so the entries a geometry
 * needs bound the memory of every open; this cap keeps it at 72 MiB. The
 * spec's extreme, 64 TiB in 1 MiB blocks, needs 64 Mi entries (512 MiB),
 * but real writers use larger blocks for large disks: Hyper-V defaults to
 * 32 MiB, qemu to 8..64 MiB growing with the disk. 9 Mi entries admit
 * every block size from 8 MiB up to the 64 TiB maximum, 1 MiB blocks up
 * to about 9 TiB and 4 MiB blocks up to about 36 TiB. create, resize and
 * open apply the same limit (vhdx_bat_limit). */
#define VHDX_MAX_BAT_ENTRIES (9u << 20)

/* The largest log we read into memory to replay (and whose replay the
 * overlay may copy, so twice this bounds the log's share of an open). The
 * format allows logs up to 4 GiB; Hyper-V and qemu write 1 MiB logs, only
 * qemu's log_size option makes larger ones (the interop tests use 4 MiB). */
#define VHDX_MAX_REPLAY_LOG (32u * VHDX_MIB)

/* BAT entry states (bits 0-2). Value 5 is UNMAPPED in VHDX 0.95 and
 * written by old QEMU versions; it is read as UNMAPPED. */
enum {
  VHDX_BAT_NOT_PRESENT = 0,
  VHDX_BAT_UNDEFINED = 1,
  VHDX_BAT_ZERO = 2,
  VHDX_BAT_UNMAPPED = 3,
  VHDX_BAT_RESERVED_STATE = 4,   /* no meaning in any version: refused */
  VHDX_BAT_UNMAPPED_OLD = 5,
  VHDX_BAT_FULLY_PRESENT = 6,
  VHDX_BAT_PARTIALLY_PRESENT = 7,
  VHDX_SB_NOT_PRESENT = 0,
  VHDX_SB_PRESENT = 6,
};
#define VHDX_BAT_STATE(e) ((unsigned)((e) & 7u))
/* BAT entries in one 4 KiB sector: the unit the log rewrites, and the unit
 * of the in-memory dirty map (one bit a sector). */
#define VHDX_BAT_PER_SECTOR (VHDX_SECTOR / 8u)
static inline uint64_t vhdx_bat_sectors(uint64_t entries)
{
  return (entries + VHDX_BAT_PER_SECTOR - 1) / VHDX_BAT_PER_SECTOR;
}
static inline size_t vhdx_bat_dirty_bytes(uint64_t entries)
{
  return (size_t)((vhdx_bat_sectors(entries) + 7) / 8);
}
/* Sectors one sector bitmap block describes (1 MiB of bits), and the
 * payload blocks of one chunk, which share one (MS-VHDX 2.5). */
#define VHDX_SECTORS_PER_BITMAP_BLOCK ((uint64_t)VHDX_BITMAP_BLOCK * 8)
static inline uint64_t vhdx_chunk_ratio(uint32_t lss, uint32_t block_size)
{
  return VHDX_SECTORS_PER_BITMAP_BLOCK * lss / block_size;
}
#define VHDX_BAT_OFFSET(e) ((e) & 0xFFFFFFFFFFF00000ull)
#define VHDX_BAT_RESERVED(e) ((e) & 0x00000000000FFFF8ull)
#define VHDX_BAT_ENTRY(state, offset) ((uint64_t)(offset) | (uint64_t)(state))

/* GUIDs in their on-disk (Microsoft mixed-endian) byte order. */
extern const uint8_t vhdx_guid_bat[16];
extern const uint8_t vhdx_guid_metadata[16];
extern const uint8_t vhdx_guid_file_parameters[16];
extern const uint8_t vhdx_guid_virtual_disk_size[16];
extern const uint8_t vhdx_guid_virtual_disk_id[16];
extern const uint8_t vhdx_guid_logical_sector_size[16];
extern const uint8_t vhdx_guid_physical_sector_size[16];
extern const uint8_t vhdx_guid_parent_locator[16];
extern const uint8_t vhdx_guid_locator_type_vhdx[16];

/* --- crc32c.c ---------------------------------------------------------- */

/* CRC-32C (Castagnoli) of buf, as VHDX stores it. */
uint32_t vhdx_crc32c(const void *buf, size_t len);
/* Continue a running CRC: start with crc = 0xFFFFFFFF, finish with ~crc. */
uint32_t vhdx_crc32c_update(uint32_t crc, const void *buf, size_t len);
/* The two implementations behind vhdx_crc32c_update, for tests. The
 * hardware one exists only where vhdx_crc32c_hw_available() says so. */
uint32_t vhdx_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t vhdx_crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool vhdx_crc32c_hw_available(void);
/* CRC-32C of len bytes with the 4-byte checksum field at csum_off read as
 * zero (how every VHDX structure is checksummed). */
uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t csum_off);

/* --- header.c ---------------------------------------------------------- */

struct vhdx_header {
  uint64_t sequence;
  uint8_t file_write_guid[16];
  uint8_t data_write_guid[16];
  uint8_t log_guid[16];
  uint16_t log_version;
  uint16_t version;
  uint32_t log_length;
  uint64_t log_offset;
};

/* Decode one 4 KiB header. Returns true when it is valid (signature,
 * checksum, version 1); otherwise *why says what is wrong. */
bool vhdx_header_decode(const uint8_t raw[VHDX_HEADER_SIZE], struct vhdx_header *h,
                        const char **why);
/* Encode h with its checksum into raw (4 KiB, reserved bytes zero). */
void vhdx_header_encode(const struct vhdx_header *h, uint8_t raw[VHDX_HEADER_SIZE]);

/* Which of the two header copies is current. */
struct vhdx_header_choice {
  int current;                 /* 0 or 1; -1 when neither can be used */
  bool valid[2];
  const char *why[2];          /* reason a copy is invalid */
  bool identical_equal_seq;    /* both valid with one sequence number and
                                  byte-identical (Disk2VHD) */
  bool conflict;               /* both valid, same sequence, different */
};
void vhdx_header_select(const uint8_t raw1[VHDX_HEADER_SIZE],
                        const uint8_t raw2[VHDX_HEADER_SIZE],
                        struct vhdx_header_choice *c);

/* --- region.c ---------------------------------------------------------- */

struct vhdx_regions {
  uint64_t bat_offset;
  uint32_t bat_length;
  uint64_t meta_offset;
  uint32_t meta_length;
  /* The span from the first to the end of the last region we do not know
   * (optional ones are allowed): never handed out as a free slot. */
  uint64_t other_start, other_end;
};

/* --- metadata.c -------------------------------------------------------- */

/* The VHDX parent locator's key/value pairs we understand, as UTF-8. */
struct vhdx_locator {
  bool present;
  char *parent_linkage;
  char *parent_linkage2;
  char *relative_path;
  char *volume_path;
  char *absolute_win32_path;
};
void vhdx_locator_free(struct vhdx_locator *loc);

/* --- overlay.c --------------------------------------------------------- */

/* File ranges as a replayed log left them, in replay order (later records
 * win). data == NULL means zeros. */
struct vhdx_overlay_rec {
  uint64_t offset;
  uint64_t length;
  uint8_t *data;
};
struct vhdx_overlay {
  struct vhdx_overlay_rec *rec;
  size_t count, cap;
};

/* A metadata sector (4 KiB, file offset aligned) changed in memory and not
 * yet written through the log: sector bitmap sectors. */
struct vhdx_pending {
  uint64_t offset;
  uint8_t *data;
};

/* --- the driver state (img->priv) -------------------------------------- */

struct vhdx {
  struct vhd_image *img;
  vhd_io *io;
  const char *path;
  struct vhd_diag *diag;       /* during open only */

  uint64_t file_size;          /* the file's length as this session sees it
                                  (after an in-memory replay: at least the
                                  log's last_file_offset) */
  uint64_t alloc_end;          /* where the next block goes (1 MiB aligned,
                                  past every structure) */
  char creator[64];

  struct vhdx_header hdr;      /* the current header */
  int hdr_slot;                /* 0: header 1 at 64 KiB is current; 1: header 2 */
  bool hdr_refresh_unflushed;  /* the last update's second copy may not be
                                  durable yet (vhdx_header_update) */

  struct vhdx_regions reg;

  uint32_t block_size;
  uint32_t lss;                /* logical sector size */
  uint32_t pss;                /* physical sector size */
  bool leave_allocated;
  bool has_parent;
  uint64_t virtual_size;
  uint8_t disk_id[16];
  uint64_t disk_id_offset;     /* file offset of the Virtual Disk ID item */
  struct vhdx_locator loc;
  uint8_t linkage[16];         /* parent_linkage parsed */
  uint8_t linkage2[16];
  bool has_linkage2;

  /* Geometry. */
  uint64_t chunk_ratio;        /* payload blocks per sector bitmap block */
  uint64_t payload_blocks;
  uint64_t bitmap_blocks;
  uint64_t sectors_per_block;

  /* The BAT: bat_count entries in memory (a whole number of 4 KiB sectors,
   * never more than the BAT region holds); authoritative during a session. */
  uint64_t *bat;
  uint64_t bat_count;
  uint8_t *bat_dirty;          /* one bit per 4 KiB BAT sector */
  bool meta_dirty;             /* something waits for the next flush */
  struct vhdx_pending *pend;   /* sorted by offset */
  size_t npend, cap_pend;
  /* Payload block slots no BAT entry uses (slots.h): found at open
   * between the first block and the last, added by trims and compact. A
   * freed one is reused only once the BAT change that freed it is
   * durable, or a crash could show one block's data in another. */
  struct free_slots slots;

  /* Log. */
  struct vhdx_overlay overlay; /* read-only replay, consulted by meta reads */
  bool log_replayed;           /* a pending log was replayed at open */
  unsigned log_entries_replayed;
  bool log_apply_pending;      /* read-write: the overlay still has to be
                                  written to the file (vhdx_log_apply) */
  uint64_t log_last_file_offset;
  uint8_t session_log_guid[16]; /* the log GUID of the commit under way */
  bool log_guid_in_header;     /* hdr.log_guid names it */
  uint64_t log_seq;            /* sequence number of the last entry written */
  uint32_t log_pos;            /* where the next entry goes */

  /* Session state of a read-write open. */
  bool guids_updated;          /* new file_write_guid and data_write_guid */
  bool broken;                 /* a metadata write failed half-way: refuse
                                  further changes */
  char *parent_hint;           /* first locator path, for vhd_info */
};

static inline struct vhdx *vhdx_of(struct vhd_image *img) { return img->priv; }

/* Record a warning: counts it on the image and reports it to a collector. */
void vhdx_warn(struct vhdx *s, struct vhd_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* header.c */
int vhdx_read_identifier(struct vhdx *s, struct vhd_diag *d);
int vhdx_load_headers(struct vhdx *s, struct vhd_diag *d);
/* Write a new header the spec's way: sequence + 1 into the non-current
 * slot, flush, then the other slot (sequence + 2), flush. `what` asks for
 * fresh GUIDs; log_guid (NULL: unchanged) replaces the log GUID. */
#define VHDX_NEW_FILE_GUID 0x1u
#define VHDX_NEW_DATA_GUID 0x2u
int vhdx_header_update(struct vhdx *s, unsigned what, const uint8_t *log_guid);
/* io_flush for the driver: it also knows that every header copy is now
 * durable. */
int vhdx_sync(struct vhdx *s);
/* A fresh random GUID in the on-disk layout. */
void vhdx_new_guid(uint8_t guid[16]);
/* Report a problem that stops the open even when collecting findings:
 * records it as a corruption and returns -EINVAL with the message set. */
int vhdx_fatal(struct vhd_diag *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* region.c */
/* Validate one 64 KiB copy (what names it in messages). -EINVAL when it is
 * damaged, -ENOTSUP when it lists an unknown region marked required. */
int vhdx_parse_region_table(const char *path, const char *what, const uint8_t *raw,
                            struct vhdx_regions *out);
int vhdx_load_regions(struct vhdx *s, struct vhd_diag *d);
/* Both 64 KiB copies, one after the other, in a new buffer (*out). */
int vhdx_read_region_copies(struct vhdx *s, uint8_t **out);

/* metadata.c */
int vhdx_load_metadata(struct vhdx *s, struct vhd_diag *d);
int vhdx_parse_locator(struct vhdx *s, const uint8_t *item, uint32_t len,
                       struct vhd_diag *d);

/* bat.c */
int vhdx_compute_geometry(struct vhdx *s, struct vhd_diag *d);
int vhdx_load_bat(struct vhdx *s, struct vhd_diag *d);
/* BAT entries (payload and sector bitmap) a disk of size bytes in blocks
 * of block_size needs with logical sectors of lss bytes. */
uint64_t vhdx_bat_entries(uint64_t size, uint32_t block_size, uint32_t lss);
/* 0, or -EFBIG with the reason when those entries exceed
 * VHDX_MAX_BAT_ENTRIES; path names the file. */
int vhdx_bat_limit(const char *path, uint64_t size, uint32_t block_size, uint32_t lss);
/* Check the allocated blocks against the file, the other structures and
 * each other (used by open and check). */
int vhdx_validate_bat(struct vhdx *s, struct vhd_diag *d);
static inline uint64_t vhdx_payload_index(const struct vhdx *s, uint64_t block)
{
  return block + block / s->chunk_ratio;
}
static inline uint64_t vhdx_bitmap_index(const struct vhdx *s, uint64_t chunk)
{
  return chunk * (s->chunk_ratio + 1) + s->chunk_ratio;
}
uint64_t vhdx_bat_get(const struct vhdx *s, uint64_t index);
void vhdx_bat_set(struct vhdx *s, uint64_t index, uint64_t entry);
/* Payload block state with 5 folded into UNMAPPED. */
unsigned vhdx_block_state(const struct vhdx *s, uint64_t block);
/* Longest run from sector `first` (numbered from the start of the chunk)
 * whose bitmap bits all equal the first one, at most max sectors; *set
 * gets that bit. Sees pending changes and the overlay. */
int vhdx_bitmap_run(struct vhdx *s, uint64_t chunk, uint64_t first, uint64_t max,
                    bool *set, uint64_t *run);
/* Set or clear bits in the pending copy of the bitmap. */
int vhdx_bitmap_assign(struct vhdx *s, uint64_t chunk, uint64_t first, uint64_t count,
                       bool value);
void vhdx_pending_free(struct vhdx *s);
/* The pending copy of the metadata sector (4 KiB) at file offset off,
 * loaded on first use; the next log commit writes it. */
int vhdx_pending_sector(struct vhdx *s, uint64_t off, uint8_t **out);
/* A payload block slot freed in this session (never fails: out of
 * memory only means it is not reused before compact). */
void vhdx_slot_freed(struct vhdx *s, uint64_t offset);

/* overlay.c */
int vhdx_meta_read(struct vhdx *s, void *buf, size_t len, uint64_t off);
int vhdx_overlay_add(struct vhdx_overlay *o, uint64_t offset, uint64_t length,
                     const uint8_t *data);
void vhdx_overlay_apply(const struct vhdx_overlay *o, uint8_t *buf, size_t len,
                        uint64_t off);
void vhdx_overlay_free(struct vhdx_overlay *o);

/* log.c */
/* One parsed, valid log entry. */
struct vhdx_log_entry {
  uint32_t pos;               /* offset inside the log */
  uint32_t length;
  uint32_t tail;
  uint64_t sequence;
  uint32_t descriptors;
  uint64_t flushed_file_offset;
  uint64_t last_file_offset;
};
/* The active sequence of a log held in memory (log_length bytes). */
struct vhdx_log_seq {
  unsigned count;             /* entries from the tail entry to the head */
  struct vhdx_log_entry head;
  uint32_t tail_pos;
};
/* Validate the entry at pos of an in-memory log; true when valid. */
bool vhdx_log_entry_valid(const uint8_t *log, uint32_t log_length, uint32_t pos,
                          const uint8_t guid[16], struct vhdx_log_entry *e);
/* Find the active sequence; 0 with seq->count == 0 when there is none.
 * -E2BIG when the scan ran past its work limit. */
int vhdx_log_find_active(const uint8_t *log, uint32_t log_length, const uint8_t guid[16],
                         struct vhdx_log_seq *seq);
/* Replay the entries of seq into the overlay o (read-only opens), after
 * checking every descriptor's target (log_offset: where the log lies). */
int vhdx_log_replay_overlay(const char *path, const uint8_t *log, uint32_t log_length,
                            uint64_t log_offset, const struct vhdx_log_seq *seq,
                            struct vhdx_overlay *o);
/* At open: find a pending log and replay it into the overlay. */
int vhdx_log_open(struct vhdx *s, struct vhd_diag *d);
/* Once the regions are known: every replayed range lies inside the BAT or
 * the metadata region or outside both. */
int vhdx_log_check_targets(struct vhdx *s, struct vhd_diag *d);
/* Read-write opens, once the replayed view has been validated: write it to
 * the file and empty the log. */
int vhdx_log_apply(struct vhdx *s, struct vhd_diag *d);

/* log_write.c */
/* Build one log entry for n 4 KiB sectors (offsets[i], data + i*4096) into
 * out (entry_length bytes, see vhdx_log_entry_size). */
uint32_t vhdx_log_entry_size(size_t n);
void vhdx_log_build_entry(uint8_t *out, uint32_t entry_length, uint32_t tail,
                          uint64_t sequence, const uint8_t guid[16],
                          uint64_t flushed_file_offset, uint64_t last_file_offset,
                          size_t n, const uint64_t *offsets, const uint8_t *data);
/* Write every pending metadata change through the log (data first); the
 * header's log_guid is empty again when it returns 0. */
int vhdx_log_commit(struct vhdx *s);

/* rw.c */
int vhdx_read(struct vhd_image *img, void *buf, size_t len, uint64_t off);
int vhdx_write(struct vhd_image *img, const void *buf, size_t len, uint64_t off,
               bool exclusive);
int vhdx_zero(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags, bool dry,
              uint64_t *run);
int vhdx_discard(struct vhd_image *img, uint64_t off, uint64_t len);
int vhdx_flush(struct vhd_image *img);
/* Before the first change of a session: fresh file and data write GUIDs
 * (rw.c's rule, for the other operations that change the file). */
int vhdx_begin_change(struct vhdx *s);
int vhdx_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                      enum layer_state *state, uint64_t *run);
int vhdx_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                     uint64_t *run);

/* create.c */
int vhdx_create(vhd_io *io, const struct vhd_create_params *p,
                const struct parent_link *parent);
/* Encode the parent locator item for parent (a VHDX image): parent_linkage
 * from its data_write_guid, relative_path and absolute_win32_path. At most
 * cap bytes; *len gets the item's length. */
int vhdx_encode_parent_locator(const char *name, const struct parent_link *parent,
                               uint8_t *item, size_t cap, uint32_t *len);

/* parent.c */
int vhdx_parent_candidates(struct vhd_image *img, struct parent_candidates *c);
int vhdx_parent_matches(struct vhd_image *img, struct vhd_image *candidate);

/* check.c */
int vhdx_check(struct vhd_image *img, struct vhd_diag *d);

/* compact.c */
int vhdx_compact(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
                 struct vhd_compact_result *result);
int vhdx_block_slot(struct vhd_image *img, uint64_t blk, uint64_t *host, uint64_t *bytes);
int vhdx_pack_rules(struct vhd_image *img, struct pack_rules *rules);
int vhdx_move_blocks(struct vhd_image *img, const struct pack_plan *plan,
                     vhd_progress_fn progress, void *opaque);
uint64_t vhdx_image_end(struct vhd_image *img);
/* After a commit that left the log empty: cut free space off the end. */
int vhdx_cut_tail(struct vhdx *s);

/* resize.c */
int vhdx_resize(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                void *opaque);
int vhdx_resize_room(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                     void *opaque, uint64_t *stale_end);
/* End of the last structure (log, regions, located blocks). */
uint64_t vhdx_structures_end(const struct vhdx *s);

/* bat_move.c */
/* Make the BAT region hold at least entries entries: grown in place when
 * it is the last structure, else moved behind the last one (crash-safe,
 * the disk's size unchanged). */
int vhdx_bat_make_room(struct vhdx *s, uint64_t entries);

/* set_parent.c, repair.c */
int vhdx_set_parent(struct vhd_image *img, const struct parent_link *parent);
int vhdx_repair(struct vhd_image *img, struct vhd_diag *d);
int vhdx_reset_id(struct vhd_image *img);
/* Lay len bytes at file offset off over the pending metadata sectors; the
 * next log commit writes them. */
int vhdx_meta_write(struct vhdx *s, uint64_t off, const uint8_t *buf, size_t len);

#endif
