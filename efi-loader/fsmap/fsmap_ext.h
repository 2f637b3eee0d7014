/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the files of the ext2/3/4 module: fsmap_ext.c (superblock,
 * group descriptors, inodes), fsmap_ext_dir.c (directories) and
 * fsmap_ext_map.c (extent trees and the old block maps). */
#ifndef VHDBOOT_FSMAP_EXT_H
#define VHDBOOT_FSMAP_EXT_H

#include "fsmap_priv.h"

/* The superblock fields the module uses, checked at mount (vol->priv). */
struct ext_state {
  uint32_t block_size;
  uint64_t blocks;            /* s_blocks_count: block numbers are below it */
  uint32_t first_data_block;  /* 1 with 1 KiB blocks, else 0 */
  uint32_t blocks_per_group;
  uint32_t inodes_per_group;
  uint32_t inodes_count;
  uint32_t inode_size;
  uint32_t desc_size;         /* 32, or s_desc_size with 64bit */
  uint32_t groups;
  uint32_t compat, incompat, ro_compat;
  uint32_t first_meta_bg;
  uint32_t backup_bgs[2];     /* sparse_super2 */
  uint8_t *block;             /* one block: directory scans */
};

/* What the module needs of an inode. */
struct ext_inode {
  uint32_t ino;
  uint64_t offset;            /* of the inode on the volume */
  uint16_t mode;
  uint32_t flags;
  uint64_t size;
  uint8_t i_block[60];        /* extent root or block map */
};

#define EXT_MODE_TYPE 0xf000
#define EXT_MODE_DIR 0x4000
#define EXT_MODE_REG 0x8000
#define EXT_MODE_LNK 0xa000

#define EXT_FL_COMPR 0x4u
#define EXT_FL_ENCRYPT 0x800u
#define EXT_FL_EXTENTS 0x80000u
#define EXT_FL_VERITY 0x100000u
#define EXT_FL_INLINE_DATA 0x10000000u
#define EXT_FL_CASEFOLD 0x40000000u

/* Reads inode ino (1..s_inodes_count) through its group's descriptor;
 * an unused inode (i_mode 0) is an error. */
int ext_read_inode(struct fsmap_volume *vol, uint64_t ino, struct ext_inode *in);
/* Refuses inodes whose bytes are not plain blocks of the volume (inline
 * data, encrypted, compressed). */
int ext_check_blocks_readable(struct fsmap_volume *vol, const struct ext_inode *in);

/* Extents covering [0, ceil(size / block size)) of the inode: its blocks,
 * unwritten extents and holes. Every block inside the volume, no block
 * twice. */
int ext_map_inode(struct fsmap_volume *vol, const struct ext_inode *in,
                  struct fsmap_extents *out);

#endif
