/* Shared between the FAT and exFAT halves of the mapper. */
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

int fsmap_fat_mount(struct fsmap_volume *vol, const uint8_t *boot);
int fsmap_fat_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                   const uint16_t *name, size_t len, struct fsmap_file *out);
int fsmap_exfat_mount(struct fsmap_volume *vol, const uint8_t *boot);
int fsmap_exfat_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                     const uint16_t *name, size_t len, struct fsmap_file *out);

#endif
