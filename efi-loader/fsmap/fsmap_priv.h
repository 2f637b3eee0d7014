/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared between fsmap.c and the file system modules of the mapper. */
#ifndef VHDBOOT_FSMAP_PRIV_H
#define VHDBOOT_FSMAP_PRIV_H

#include "fsmap.h"
#include "platform.h"

/* Longest name either file system stores, in UTF-16 units. */
#define FSMAP_NAME_MAX 255

/* Set vol->error and return -errnum. */
int fsmap_fail(struct fsmap_volume *vol, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The FAT entry of cluster c, read through the cache window. */
int fsmap_fat_entry(struct fsmap_volume *vol, uint32_t c, uint32_t *next);

static inline bool fsmap_cluster_ok(const struct fsmap_volume *vol, uint32_t c)
{
  return c >= 2 && c - 2 < vol->clusters;
}

static inline uint64_t fsmap_cluster_offset(const struct fsmap_volume *vol, uint32_t c)
{
  return vol->heap_offset + (uint64_t)(c - 2) * vol->cluster_size;
}

/* Reads a directory one 32-byte entry at a time: the FAT12/16 root region,
 * a FAT chain, or (exFAT) a contiguous run of known length. */
struct dir_iter {
  struct fsmap_volume *vol;
  bool fixed;               /* FAT12/16 root region */
  bool contiguous;          /* exFAT NoFatChain */
  uint64_t offset;          /* next byte to read on the volume */
  uint64_t left_in_run;     /* bytes left before the next cluster lookup */
  uint64_t left_total;      /* fixed/contiguous: bytes left in the directory */
  uint32_t cluster;         /* current cluster (chains) */
  uint32_t steps;           /* clusters followed, bounded by vol->clusters */
  uint8_t buf[4096];
  uint32_t buf_len, buf_pos;
};

int dir_iter_start(struct dir_iter *it, struct fsmap_volume *vol,
                   const struct fsmap_file *dir);
/* 1 with entry filled, 0 at the physical end of the directory, <0 error. */
int dir_iter_next(struct dir_iter *it, uint8_t entry[32]);

/* Compare a UTF-16 name with a search key, ASCII letters case-folded. */
bool fsmap_name_equal(const uint16_t *a, size_t alen, const uint16_t *b, size_t blen);

/* Read bytes of the volume, bounds checked against its size; failures set
 * vol->error. */
int fsmap_read(struct fsmap_volume *vol, uint64_t off, void *buf, size_t len);

/* Append a run to an extent list (merging it with the last one when they
 * touch on the volume and share the state). */
int fsmap_extents_add(struct fsmap_volume *vol, struct fsmap_extents *e, uint64_t vol_off,
                      uint64_t len, enum fsmap_extent_state state);
/* Refuse a list in which two extents share volume bytes (a loop or a
 * crossed chain: writes through it would destroy data). Holes own none. */
int fsmap_extents_check_overlap(struct fsmap_volume *vol, const struct fsmap_extents *e);

/* Each module: mount (-ENOTSUP without a message when the volume is not
 * its file system), find a name in a directory (1 found, 0 not found,
 * <0 error), and for ext and NTFS map a file and free the module's state.
 * utf8/utf8_len is the path component as given, name/len the same in
 * UTF-16. */
int fsmap_fat_mount(struct fsmap_volume *vol, const uint8_t *boot);
int fsmap_fat_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                   const uint16_t *name, size_t len, struct fsmap_file *out);
int fsmap_exfat_mount(struct fsmap_volume *vol, const uint8_t *boot);
int fsmap_exfat_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                     const uint16_t *name, size_t len, struct fsmap_file *out);

int fsmap_ext_mount(struct fsmap_volume *vol);
int fsmap_ext_find(struct fsmap_volume *vol, const struct fsmap_file *dir, const char *utf8,
                   size_t utf8_len, struct fsmap_file *out);
int fsmap_ext_map(struct fsmap_volume *vol, const struct fsmap_file *f,
                  struct fsmap_extents *out);
void fsmap_ext_unmount(struct fsmap_volume *vol);

int fsmap_ntfs_mount(struct fsmap_volume *vol, const uint8_t *boot);
int fsmap_ntfs_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                    const uint16_t *name, size_t len, struct fsmap_file *out);
int fsmap_ntfs_map(struct fsmap_volume *vol, const struct fsmap_file *f,
                   struct fsmap_extents *out);
void fsmap_ntfs_unmount(struct fsmap_volume *vol);

#endif
