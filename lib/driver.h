/* SPDX-License-Identifier: BSD-3-Clause */
/* The format driver interface. raw, VHD, VHDX and (read only) qcow2,
 * VMDK and VDI each implement it; the
 * image/chain layer (image.c, chain.c) is the only caller.
 *
 * Contract common to all callbacks:
 *  - Return 0 or -errno, and set the error message (error.h) on failure.
 *  - Offsets and lengths given to read/write/zero are multiples of the
 *    image's logical sector size and lie inside the virtual size; the image
 *    layer does unaligned edges and bounds.
 *  - Locking is the image layer's: read and block_status run under the
 *    image's shared lock (possibly in parallel), write runs under the
 *    shared lock first and may ask for the exclusive one, everything else
 *    runs exclusively. Drivers need no lock of their own unless they keep
 *    caches that shared-lock callers fill.
 */
#ifndef LIBVHD_DRIVER_H
#define LIBVHD_DRIVER_H

#include "diag.h"
#include "image.h"
#include "io.h"

/* What one layer holds at an offset. */
enum layer_state {
  LAYER_DATA,    /* this layer stores the bytes */
  LAYER_ZERO,    /* this layer says they are zeros (never look below) */
  LAYER_ABSENT,  /* not in this layer: the parent's, or zeros without one */
};

/* Returned by write (positive) when it needs the exclusive lock because it
 * must allocate or change metadata; the image layer retries exclusively. */
#define WRITE_NEEDS_EXCLUSIVE 1

/* Where a differencing image's parent may be, in the order to try. Paths
 * are as stored, converted to UTF-8 with '/' separators; relative ones are
 * relative to the child's directory. */
#define PARENT_MAX_CANDIDATES 8
struct parent_candidates {
  unsigned count;
  char *path[PARENT_MAX_CANDIDATES];
  const char *kind[PARENT_MAX_CANDIDATES];  /* "W2ru", "relative_path", ... */
};
void parent_candidates_free(struct parent_candidates *c);
/* c holds the one candidate path (copied), of kind; for formats that
 * name their parent once (qcow2, VMDK). */
int parent_candidates_one(struct vhd_image *img, struct parent_candidates *c, const char *path,
                          const char *kind);

/* The parent a new differencing image points at. */
struct parent_link {
  struct vhd_image *image;  /* the opened parent */
  const char *relative;     /* from the child's directory, '/' separators */
  const char *absolute;     /* absolute host path, '/' separators */
};

/* Compact's packing: the plan is made once for every format in lib/ops/
 * (pack_plan.c) from block_slot and pack_rules; the driver's move_blocks
 * carries it out. */
struct pack_range {
  uint64_t offset, length;
};
struct pack_rules {
  uint64_t start;              /* the first byte a block may move to */
  uint64_t align, skew;        /* a block moves to where (offset + skew) % align
                                  is 0 (skew: a VHD sector bitmap before the
                                  data that is aligned) */
  struct pack_range *fixed;    /* structures past start no block may move
                                  onto, in any order (vhd_malloc'd; the
                                  caller frees it) */
  size_t nfixed;
};
struct pack_move {
  uint64_t blk, from, to;      /* block_slot's block, old and new place */
  bool commit_first;           /* the copy may land where the durable table
                                  still points: commit the moves before it
                                  first */
  size_t released_end;         /* the released places of this move and the
                                  ones before it: released[0..released_end) */
};
struct pack_plan {
  struct pack_move *move;      /* in plan order: to and from increase */
  size_t n;
  struct pack_range *released; /* old places no move's new place covers, in
                                  move order: to give back once the moves
                                  made are durable */
  size_t nreleased;
};

struct vhd_driver {
  const char *name;
  enum vhd_format format;

  /* How surely the file holds this format: 0 not at all, higher surer.
   * Reads only what it needs; never fails on garbage. */
  int (*probe)(vhd_io *io, uint64_t file_size);

  /* Parse and validate every structure (d: see diag.h). Sets type,
   * virtual_size, sector_size and priv. Does not open the parent. */
  int (*open)(struct vhd_image *img, struct vhd_diag *d);
  void (*close)(struct vhd_image *img);

  int (*read)(struct vhd_image *img, void *buf, size_t len, uint64_t off);
  int (*write)(struct vhd_image *img, const void *buf, size_t len,
               uint64_t off, bool exclusive);
  int (*flush)(struct vhd_image *img);
  /* The cheap part of zeroing; the policy (VHD_ZERO_FAST, the slow
   * fallback) is the image layer's (vhd_zero in image.c). From off, a run
   * of *run bytes (1..len) that either this layer can make read as zeros
   * without writing data (free or mark zero a block, punch host space;
   * VHD_ZERO_MAY_TRIM allows freeing and punching): returns 1 and, unless
   * dry, does it; or that needs data written: returns 0 and changes
   * nothing (the image layer then writes zeros through write). dry: answer
   * only, with no side effect at all. A run a dry pass called cheap may
   * still return 0 when the host turns out unable to punch (io.h). */
  int (*zero)(struct vhd_image *img, uint64_t off, uint64_t len, unsigned flags, bool dry,
              uint64_t *run);
  /* Give back what the range holds, writing no data and allocating
   * nothing (a trim: the range may read as zeros or as before
   * afterwards, include/vhd.h). NULL: trims do nothing. */
  int (*discard)(struct vhd_image *img, uint64_t off, uint64_t len);
  /* State of this layer at off, for a run of *run bytes (<= len, >= 1). */
  int (*block_status)(struct vhd_image *img, uint64_t off, uint64_t len,
                      enum layer_state *state, uint64_t *run);
  /* Optional (NULL: offsets unknown). For a range block_status called
   * LAYER_DATA: where off lies in this layer's file (*host) and how many
   * bytes from there (*run, 1..len) lie contiguously in the file and read
   * exactly as the file holds them, so a host hole there reads as zeros.
   * -ENOTSUP when no such place exists (the caller then reports no host
   * offset and no holes). Used by vhd_map and by block status's host-hole
   * probe. */
  int (*host_extent)(struct vhd_image *img, uint64_t off, uint64_t len,
                     uint64_t *host, uint64_t *run);
  /* Fill the format-specific fields of info. */
  void (*info)(struct vhd_image *img, struct vhd_info *info);

  /* Write a new empty image onto io (empty, writable). parent is non-NULL
   * for differencing images. */
  int (*create)(vhd_io *io, const struct vhd_create_params *p,
                const struct parent_link *parent);

  /* Differencing only (NULL otherwise). */
  int (*parent_candidates)(struct vhd_image *img, struct parent_candidates *c);
  /* 0 when candidate is this image's parent, else -EINVAL with a message
   * naming both files and the identity field that differs. */
  int (*parent_matches)(struct vhd_image *img, struct vhd_image *candidate);
  /* The format links its parent by file name alone (qcow2): no identity
   * to compare, so the all-zeros parent link rule (chain.c) is not its. */
  bool parent_by_name_only;

  /* Extra whole-file checks run by vhd_check after open (leaks, overlaps
   * that open tolerates). May be NULL. */
  int (*check)(struct vhd_image *img, struct vhd_diag *d);

  /* Maintenance (include/vhd.h); NULL when the format cannot. All run
   * exclusively on an image opened read-write, after the operation layer
   * (lib/ops/) has checked the arguments. */
  int (*resize)(struct vhd_image *img, uint64_t new_size,
                vhd_progress_fn progress, void *opaque);
  /* Optional first step of a grow, for formats whose new area can show
   * bytes from before (a block's tail past the old end, a parent): make
   * room for new_size without changing the size the file records, let
   * writes reach it, and set *stale_end to where such bytes can end.
   * lib/ops/resize.c then zeros what [old size, *stale_end) shows
   * (image_clear_shown) and calls resize with new_size to commit it, or
   * with the old size to give the room up. */
  int (*resize_room)(struct vhd_image *img, uint64_t new_size, vhd_progress_fn progress,
                     void *opaque, uint64_t *stale_end);
  int (*compact)(struct vhd_image *img, vhd_progress_fn progress, void *opaque,
                 struct vhd_compact_result *result);
  int (*set_parent)(struct vhd_image *img, const struct parent_link *parent);
  /* After an open in collecting mode (d non-NULL), fix what the findings
   * allow; each change is reported with diag_info "repaired: ...". */
  int (*repair)(struct vhd_image *img, struct vhd_diag *d);
  /* Optional (NULL: the layer has no blocks): where block blk of this
   * layer lies in its file, for the operations that judge the file's
   * layout (vhd_get_layout). 1 with *host and *bytes (the block's whole
   * slot, a VHD sector bitmap included) when the layer stores the block,
   * 0 when it does not, -ERANGE (no message) past the last block. */
  int (*block_slot)(struct vhd_image *img, uint64_t blk, uint64_t *host, uint64_t *bytes);
  /* Optional, both or neither (NULL: compact never moves blocks): where
   * compact may put blocks (-ENOTSUP with no message: nowhere, the blocks
   * stay), and the moves of a plan made from it (pack_plan.h): each block's
   * whole slot copied and its table entry repointed, a commit (data durable
   * first, then the table) before every move marked commit_first and after
   * the last, then the released places given back and the file cut after
   * its last structure. Run after compact, under the same lock. */
  int (*pack_rules)(struct vhd_image *img, struct pack_rules *rules);
  int (*move_blocks)(struct vhd_image *img, const struct pack_plan *plan,
                     vhd_progress_fn progress, void *opaque);
  /* Optional (NULL: the format never has a vhdboot reserve): the end of
   * the last structure the open image references in its file. A reserve
   * record is trusted only when it lies past this (lib/reserve.h). */
  uint64_t (*structures_end)(struct vhd_image *img);
  /* Optional (NULL: the format has no id): give the image a new random
   * unique id, the one its children's parent links name (vhd_reset_id). */
  int (*reset_id)(struct vhd_image *img);
};

extern const struct vhd_driver vhd_driver_raw;
extern const struct vhd_driver vhd_driver_vhd;
extern const struct vhd_driver vhd_driver_vhdx;
extern const struct vhd_driver vhd_driver_vdi;   /* read only */
/* Hosted builds only (they need zlib). */
extern const struct vhd_driver vhd_driver_qcow2;
extern const struct vhd_driver vhd_driver_vmdk;

/* The drivers in probing order, NULL-terminated. */
extern const struct vhd_driver *const vhd_drivers[];
const struct vhd_driver *driver_for_format(enum vhd_format format);

#endif
