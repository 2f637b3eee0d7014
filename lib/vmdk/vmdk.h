/* SPDX-License-Identifier: BSD-3-Clause */
/* VMDK, read only: a disk of extents, each a hosted sparse extent
 * ("KDMV", monolithicSparse and streamOptimized files, the pieces of
 * twoGbMaxExtentSparse), a flat extent (raw bytes at an offset) or a zero
 * extent, listed by a text descriptor (embedded in a monolithic sparse
 * file, or a small file of its own). Layout facts:
 * shared/reference/vmdk-vdi-qcow2.md section 2 (from VMware's Virtual Disk
 * Format 1.1 and 5.0 notes). Hosted only: stream grains need zlib. */
#ifndef LIBVHD_VMDK_H
#define LIBVHD_VMDK_H

#include "driver.h"

#define VMDK_SECTOR 512u
#define VMDK_NAME_MAX 1024u
#define VMDK_EXTENTS_MAX 4096u    /* 8 TiB of 2 GiB pieces */
#define VMDK_DESCRIPTOR_MAX (64u * 1024)

/* One hosted sparse extent file. */
struct vmdk_sparse {
  vhd_io *io;
  unsigned version;
  uint32_t flags;
  uint64_t capacity;         /* sectors */
  uint64_t grain_sectors;
  uint64_t grain_bytes;
  uint32_t gtes_per_gt;
  uint32_t *gd;              /* GT sector of each GD entry (host order) */
  uint64_t gd_count;
  uint64_t gd_sector;
  uint64_t file_size;
  bool compressed;           /* grains are markers + zlib streams */
  bool zeroed_grains;        /* GTE 1 means zeros */
  uint64_t descriptor_sector, descriptor_sectors;
  uint8_t header[VMDK_SECTOR];   /* as used (the footer when the GD is at the end) */
};

enum vmdk_extent_kind { VMDK_EXTENT_SPARSE, VMDK_EXTENT_FLAT, VMDK_EXTENT_ZERO };

struct vmdk_extent {
  enum vmdk_extent_kind kind;
  uint64_t start, len;       /* guest bytes */
  vhd_io *io;                /* FLAT; owned unless it is the image's own */
  uint64_t flat_offset;      /* FLAT: bytes into io */
  uint64_t flat_size;        /* FLAT: io's size */
  struct vmdk_sparse sparse; /* SPARSE */
  bool owns_io;
};

struct vmdk {
  struct vmdk_extent *extents;
  unsigned count;
  bool descriptor_file;      /* a text descriptor (not a monolithic file) */
  bool stream;
  uint32_t cid, parent_cid;
  char *parent_hint;         /* NULL without a parent */
  uint8_t fingerprint[16];
};

/* One extent line of a descriptor. */
struct vmdk_extent_line {
  enum vmdk_extent_kind kind;
  uint64_t sectors;
  uint64_t offset;           /* FLAT: sectors into the file */
  char name[VMDK_NAME_MAX];
};

/* vmdk_descriptor.c: parse descriptor text (n bytes, stops at a NUL);
 * each extent line goes to add(ctx, line) in order. */
int vmdk_parse_descriptor(struct vhd_image *img, struct vmdk *v, const char *text, size_t n,
                          char *create_type, size_t type_cap,
                          int (*add)(void *ctx, const struct vmdk_extent_line *line), void *ctx);

/* vmdk_sparse.c */
/* s->io set: read and check the header and the grain directory. */
int vmdk_sparse_open(struct vmdk_sparse *s);
void vmdk_sparse_close(struct vmdk_sparse *s);
/* check's pass over one sparse extent: bad grain table entries and
 * structures (header, descriptor, grain directory and tables, grains)
 * sharing a sector. */
int vmdk_sparse_check(struct vhd_image *img, const struct vmdk_sparse *s, struct vhd_diag *d);

enum vmdk_grain_kind { VMDK_GRAIN_ABSENT, VMDK_GRAIN_ZERO, VMDK_GRAIN_DATA,
                       VMDK_GRAIN_COMPRESSED };
struct vmdk_grain_run {
  enum vmdk_grain_kind kind;
  uint64_t host;   /* DATA: file offset of the offset; COMPRESSED: of the marker */
  uint64_t len;
};
/* off: bytes into the extent; len > 0, inside it. */
int vmdk_sparse_lookup(struct vhd_image *img, const struct vmdk_sparse *s, uint64_t off,
                       uint64_t len, struct vmdk_grain_run *run);
/* The whole grain holding off into grain (grain_bytes), through scratch
 * (2 * grain_bytes). */
int vmdk_sparse_inflate(struct vhd_image *img, const struct vmdk_sparse *s,
                        const struct vmdk_grain_run *run, uint64_t off, uint8_t *grain,
                        uint8_t *scratch);

/* Grains the sparse extents store, for info. */
uint64_t vmdk_allocated_grains(struct vhd_image *img);
int vmdk_read(struct vhd_image *img, void *buf, size_t len, uint64_t off);
int vmdk_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                      enum layer_state *state, uint64_t *run);
int vmdk_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                     uint64_t *run);

#endif
