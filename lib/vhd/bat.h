/* SPDX-License-Identifier: BSD-3-Clause */
/* The block allocation table of dynamic and differencing VHDs: loading,
 * validating the layout it describes, and writing back changed sectors. */
#ifndef LIBVHD_VHD_BAT_H
#define LIBVHD_VHD_BAT_H

#include "diag.h"
#include "io.h"
#include "platform.h"

#define VHD_BAT_UNUSED 0xFFFFFFFFu

struct vhd_bat {
  uint32_t *entry;     /* sector numbers, host order; VHD_BAT_UNUSED = none */
  uint32_t count;      /* max_table_entries */
  uint64_t offset;     /* file offset of the table */
  uint8_t *dirty;      /* one flag per 512-byte sector of the table */
  bool any_dirty;
};

static inline uint64_t vhd_bat_bytes(uint32_t count) { return (uint64_t)count * 4; }
/* The table is padded with unused entries to a whole sector. */
static inline uint64_t vhd_bat_padded_bytes(uint32_t count)
{
  return (vhd_bat_bytes(count) + 511) & ~(uint64_t)511;
}

/* Read count entries at offset. The caller has checked that the table
 * lies inside the file, which bounds the allocation. */
int vhd_bat_load(vhd_io *io, uint64_t offset, uint32_t count, struct vhd_bat *bat);
/* An all-unused table in memory (name: the file, for messages). */
int vhd_bat_init_empty(const char *name, uint64_t offset, uint32_t count, struct vhd_bat *bat);
void vhd_bat_free(struct vhd_bat *bat);

/* Change an entry in memory; the table sector is written at the next
 * vhd_bat_write_dirty. */
void vhd_bat_set(struct vhd_bat *bat, uint32_t index, uint32_t value);
int vhd_bat_write_dirty(vhd_io *io, struct vhd_bat *bat);
/* The table in its on-disk form, padded to whole sectors; buf holds
 * vhd_bat_padded_bytes(count) bytes. */
void vhd_bat_encode(const struct vhd_bat *bat, uint8_t *buf);

/* Regions of the file that are not data blocks, for overlap checks. */
struct vhd_file_range {
  uint64_t start, end;   /* [start, end) */
  const char *what;      /* "the dynamic header", "the BAT", ... */
};

/* Check every used entry: the block ([sector bitmap][data], block_bytes
 * long) ends at or before limit, overlaps none of the meta extents and no
 * other block. Each bad entry is a corruption (diag.h); when a collector
 * lets the caller go on, the entry is cleared so the in-memory view only
 * holds sane blocks. path names the file in messages. */
int vhd_bat_validate(struct vhd_bat *bat, const char *path, uint64_t block_bytes,
                     const struct vhd_file_range *meta, size_t nmeta, uint64_t limit,
                     struct vhd_diag *d);

/* Sort keys in place, ascending (heap sort: no qsort in freestanding
 * builds, no recursion, no extra memory). */
void vhd_sort_u64(uint64_t *a, size_t n);

/* End of the last allocated block (0 when none). */
uint64_t vhd_bat_blocks_end(const struct vhd_bat *bat, uint64_t block_bytes);
/* Used entries among the first n. */
uint64_t vhd_bat_count_used(const struct vhd_bat *bat, uint32_t n);

#endif
