/* SPDX-License-Identifier: BSD-3-Clause */
/* Where a file lives on a FAT12/16/32, exFAT, ext2/3/4 or NTFS volume.
 *
 * A small read-only reader over a "read bytes of the volume" callback: it
 * recognises the file system, walks a path (long names included) and turns
 * the file's clusters or blocks into extents (file offset -> volume
 * offset). The UEFI
 * loader maps its image files with it before it installs the virtual disk,
 * so that it can later serve the disk from the host's block device without
 * calling the firmware's file system driver (see docs/efi-loader.md).
 *
 * It is plain C over lib/platform.h, so the host unit tests
 * (tests/unit/test_efi_extents.c) compile the very same files. Every field
 * read from the volume is checked before use: cluster numbers inside the
 * heap, chains that end where the file size says, no loops, directory
 * walks bounded by the volume's cluster count.
 *
 * Names match without regard to ASCII case (a-z = A-Z) on FAT, exFAT and
 * NTFS, other characters exactly; ext names match byte for byte. FAT long
 * names (LFN entries with a valid checksum) and 8.3 names both match;
 * exFAT names are always long; NTFS names are looked up in the Win32 (or
 * POSIX) namespace.
 *
 * NTFS DOS (8.3) names match only when no long name does.
 *
 * One module a file system family: fsmap_fat.c, fsmap_exfat.c, ext
 * (fsmap_ext.c, fsmap_ext_dir.c, fsmap_ext_map.c) and NTFS (fsmap_ntfs.c,
 * fsmap_ntfs_attr.c, fsmap_ntfs_index.c); fsmap.c dispatches and owns the
 * shared parts (path walking, extent lists).
 */
#ifndef VHDBOOT_FSMAP_H
#define VHDBOOT_FSMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read len bytes at byte offset off of the volume. 0 or -errno. */
typedef int (*fsmap_read_fn)(void *ctx, uint64_t off, void *buf, size_t len);

/* The values are the hand-off record's "host file system" byte
 * (docs/efi-handoff.md): keep them. */
enum fsmap_kind {
  FSMAP_EXT2 = 2,
  FSMAP_EXT3 = 3,
  FSMAP_EXT4 = 4,
  FSMAP_NTFS = 7,
  FSMAP_FAT12 = 12,
  FSMAP_FAT16 = 16,
  FSMAP_FAT32 = 32,
  FSMAP_EXFAT = 64,
};

struct fsmap_volume {
  fsmap_read_fn read;
  void *ctx;
  uint64_t size;            /* bytes of the volume */
  enum fsmap_kind kind;
  uint32_t sector_size;
  uint32_t cluster_size;    /* the allocation unit: FAT/exFAT/NTFS cluster,
                               ext block */
  uint64_t fat_offset;      /* byte offset of the (first) FAT */
  uint64_t fat_bytes;       /* bytes of one FAT */
  uint64_t heap_offset;     /* byte offset of cluster 2 */
  uint32_t clusters;        /* valid cluster numbers are 2 .. clusters + 1 */
  uint32_t root_cluster;    /* FAT32 and exFAT */
  uint64_t root_offset;     /* FAT12/16: the fixed root directory */
  uint32_t root_bytes;
  uint8_t *fat_cache;       /* a window of the FAT, read on demand */
  uint64_t fat_cache_start;
  uint32_t fat_cache_len;
  uint64_t root_id;         /* ext: root inode (2); NTFS: root MFT record (5) */
  /* Why writing through the extents is unsafe although reading is not
   * ("" when it is safe): an NTFS volume marked dirty or hibernated
   * (Windows Fast Startup) may hold metadata changes only its log or the
   * hibernated system knows of, which would be replayed over our writes. */
  char unclean[96];
  void *priv;               /* ext/NTFS state, owned by their module */
  char error[256];          /* why the last call failed */
};

struct fsmap_file {
  uint64_t size;            /* bytes; exFAT: DataLength */
  uint64_t valid_size;      /* exFAT ValidDataLength, NTFS valid data
                               length: bytes past it read as zeros and are
                               not written; FAT and ext: = size */
  uint32_t first_cluster;   /* FAT/exFAT; 0: no clusters (empty file,
                               FAT12/16 root) */
  bool contiguous;          /* exFAT NoFatChain: no FAT chain to follow */
  bool directory;
  uint64_t id;              /* ext: inode number; NTFS: MFT record number */
};

/* What an extent of the file holds. Only DATA extents may be written
 * through the volume: an ext4 unwritten (preallocated) extent stays
 * unwritten in the file system's eyes whatever is written to its blocks,
 * so Linux would read zeros where the data went; a hole has no blocks. */
enum fsmap_extent_state {
  FSMAP_DATA = 0,
  FSMAP_UNWRITTEN = 1,      /* blocks allocated, reads as zeros */
  FSMAP_HOLE = 2,           /* no blocks (volume_offset 0), reads as zeros */
};

struct fsmap_extent {
  uint64_t file_offset;
  uint64_t volume_offset;
  uint64_t length;
  enum fsmap_extent_state state;
};

/* Sorted by file offset, adjacent and non-overlapping in file space: they
 * cover [0, mapped) of the file. Runs that are contiguous on the volume
 * and in the same state are merged. */
struct fsmap_extents {
  struct fsmap_extent *v;
  size_t count;
  size_t cap;
  uint64_t mapped;
};

/* Recognise the file system. -ENOTSUP (no message) when the volume is
 * none of the above; -EINVAL with vol->error when it claims to be one
 * but its boot sector is inconsistent; -EIO etc. from read. */
int fsmap_mount(struct fsmap_volume *vol, fsmap_read_fn read, void *ctx,
                uint64_t volume_size);
void fsmap_unmount(struct fsmap_volume *vol);
/* Forget cached FAT contents: call after someone else changed the volume
 * (the loader grows an image through the firmware's driver). */
void fsmap_invalidate(struct fsmap_volume *vol);
const char *fsmap_kind_name(enum fsmap_kind kind);

/* Find path ('/' or '\' separated, UTF-8, relative to the root; empty
 * components are skipped, "." and ".." are not interpreted). -ENOENT with
 * vol->error naming the missing component; -EINVAL for corruption. */
int fsmap_lookup(struct fsmap_volume *vol, const char *path, struct fsmap_file *out);

/* Extents of every cluster or block the file owns: at least
 * ceil(size / cluster_size) of them, so out->mapped >= f->size. Files
 * the loader must not treat as plain block runs (NTFS compressed,
 * encrypted, sparse or resident data) are refused with -ENOTSUP and a
 * message. out must be zeroed or freed. */
int fsmap_map(struct fsmap_volume *vol, const struct fsmap_file *f,
              struct fsmap_extents *out);
void fsmap_extents_free(struct fsmap_extents *e);

/* Index of the extent that holds file offset off; -1 when off >= mapped. */
ptrdiff_t fsmap_extents_find(const struct fsmap_extents *e, uint64_t off);

#endif
