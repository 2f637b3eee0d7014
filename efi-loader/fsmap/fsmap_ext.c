/* SPDX-License-Identifier: BSD-3-Clause */
/* ext2/ext3/ext4: the superblock, group descriptors (32- and 64-bit,
 * classic and meta_bg placement) and inodes; directories are in
 * fsmap_ext_dir.c, block mapping in fsmap_ext_map.c. Layouts follow the
 * Linux kernel's ext4 disk-layout documentation and e2fsprogs' ext2_fs.h.
 *
 * The kind reported is the rule blkid uses: ext4 when any feature beyond
 * ext3's is set (an incompat bit other than filetype, needs_recovery,
 * journal_dev and meta_bg, or a ro_compat bit other than sparse_super,
 * large_file and btree_dir), else ext3 with a journal, else ext2. */
#include "fsmap_ext.h"
#include "util/endian.h"

#define EXT_SB_OFFSET 1024
#define EXT_MAGIC 0xef53

#define COMPAT_HAS_JOURNAL 0x4u
#define COMPAT_SPARSE_SUPER2 0x200u

#define INCOMPAT_COMPRESSION 0x1u
#define INCOMPAT_FILETYPE 0x2u
#define INCOMPAT_RECOVER 0x4u
#define INCOMPAT_JOURNAL_DEV 0x8u
#define INCOMPAT_META_BG 0x10u
#define INCOMPAT_EXTENTS 0x40u
#define INCOMPAT_64BIT 0x80u
#define INCOMPAT_MMP 0x100u
#define INCOMPAT_FLEX_BG 0x200u
#define INCOMPAT_EA_INODE 0x400u
#define INCOMPAT_DIRDATA 0x1000u
#define INCOMPAT_CSUM_SEED 0x2000u
#define INCOMPAT_LARGEDIR 0x4000u
#define INCOMPAT_INLINE_DATA 0x8000u
#define INCOMPAT_ENCRYPT 0x10000u
#define INCOMPAT_CASEFOLD 0x20000u
/* Bits that change nothing for a reader that follows directory entries
 * to allocated inodes and refuses inline, encrypted and casefold-only
 * matches per inode. */
#define INCOMPAT_READABLE                                                              \
  (INCOMPAT_FILETYPE | INCOMPAT_META_BG | INCOMPAT_EXTENTS | INCOMPAT_64BIT |          \
   INCOMPAT_MMP | INCOMPAT_FLEX_BG | INCOMPAT_EA_INODE | INCOMPAT_CSUM_SEED |           \
   INCOMPAT_LARGEDIR | INCOMPAT_INLINE_DATA | INCOMPAT_ENCRYPT | INCOMPAT_CASEFOLD)
#define INCOMPAT_EXT3 (INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_JOURNAL_DEV | \
                       INCOMPAT_META_BG)

#define RO_COMPAT_SPARSE_SUPER 0x1u
#define RO_COMPAT_LARGE_FILE 0x2u
#define RO_COMPAT_BTREE_DIR 0x4u
#define RO_COMPAT_BIGALLOC 0x200u
#define RO_COMPAT_SHARED_BLOCKS 0x4000u
#define RO_COMPAT_KNOWN 0x1ffffu   /* up to orphan_present (0x10000) */
#define RO_COMPAT_EXT3 (RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR)

#define EXT_ROOT_INO 2

static uint32_t ext_lowest_bit(uint32_t v) { return v & (~v + 1); }

static enum fsmap_kind ext_kind(uint32_t compat, uint32_t incompat, uint32_t ro_compat)
{
  if ((incompat & ~INCOMPAT_EXT3) || (ro_compat & ~RO_COMPAT_EXT3))
    return FSMAP_EXT4;
  return (compat & COMPAT_HAS_JOURNAL) ? FSMAP_EXT3 : FSMAP_EXT2;
}

/* Features the module refuses although it knows them, and why (the line
 * the user sees). The loader may write the image's blocks in place: a
 * block shared with another file would make that unsafe. */
static const struct {
  bool ro_compat;
  uint32_t bit;
  const char *why;
} ext_refused[] = {
  {false, INCOMPAT_RECOVER,
   "the journal has not been replayed (needs_recovery is set: the file system was not "
   "unmounted cleanly), so its metadata may be stale; mount it once under Linux or run "
   "e2fsck on it"},
  {false, INCOMPAT_JOURNAL_DEV,
   "this is an external journal device (journal_dev), not a file system"},
  {false, INCOMPAT_COMPRESSION, "compression (incompat 0x1) is not supported"},
  {false, INCOMPAT_DIRDATA,
   "dirdata (Lustre directory entries, incompat 0x1000) is not supported"},
  {true, RO_COMPAT_BIGALLOC,
   "bigalloc (allocation in clusters of several blocks) is not supported"},
  {true, RO_COMPAT_SHARED_BLOCKS,
   "shared_blocks is set (files may share blocks, so writing one could change another)"},
};

/* Every incompat bit must be understood; unknown ro_compat bits are
 * refused too, since the loader may write. The errors are EINVAL, not
 * ENOTSUP: the volume is ext, and the user must hear why it cannot be
 * used (ENOTSUP from a mount means "not this file system", silently). */
static int ext_check_features(struct fsmap_volume *vol, uint32_t incompat, uint32_t ro_compat)
{
  for (size_t i = 0; i < sizeof ext_refused / sizeof ext_refused[0]; i++)
    if ((ext_refused[i].ro_compat ? ro_compat : incompat) & ext_refused[i].bit)
      return fsmap_fail(vol, EINVAL, "ext superblock: %s", ext_refused[i].why);
  uint32_t unknown = incompat & ~INCOMPAT_READABLE;
  uint32_t unknown_ro = ro_compat & ~RO_COMPAT_KNOWN;
  if (unknown || unknown_ro)
    return fsmap_fail(vol, EINVAL, "ext superblock: unknown %s feature bit 0x%x "
                      "(s_feature_%s 0x%x)", unknown ? "incompatible" : "read-only-compatible",
                      ext_lowest_bit(unknown ? unknown : unknown_ro),
                      unknown ? "incompat" : "ro_compat", unknown ? incompat : ro_compat);
  return 0;
}

static bool ext_power_of(uint32_t v, uint32_t base)
{
  while (v > 1 && v % base == 0)
    v /= base;
  return v == 1;
}

/* Does group g hold a superblock backup (and, with meta_bg, push its
 * descriptor block one block further)? e2fsprogs' rule. */
static bool ext_group_has_super(const struct ext_state *st, uint32_t g)
{
  if (g == 0)
    return true;
  if (st->compat & COMPAT_SPARSE_SUPER2)
    return g == st->backup_bgs[0] || g == st->backup_bgs[1];
  if (g == 1 || !(st->ro_compat & RO_COMPAT_SPARSE_SUPER))
    return true;
  if (!(g & 1))
    return false;
  return ext_power_of(g, 3) || ext_power_of(g, 5) || ext_power_of(g, 7);
}

/* Byte offset of group g's descriptor. */
static int ext_desc_offset(struct fsmap_volume *vol, const struct ext_state *st, uint32_t g,
                           uint64_t *off)
{
  uint32_t per_block = st->block_size / st->desc_size;
  uint64_t index = g / per_block;
  uint64_t blk;
  if (!(st->incompat & INCOMPAT_META_BG) || index < st->first_meta_bg) {
    blk = st->first_data_block + 1 + index;
  } else {
    /* meta_bg: each meta-group's descriptor block sits in its first group. */
    uint64_t first = index * per_block;
    blk = st->first_data_block + first * st->blocks_per_group +
          (ext_group_has_super(st, (uint32_t)first) ? 1 : 0);
  }
  if (blk >= st->blocks)
    return fsmap_fail(vol, EINVAL, "ext: the descriptor of block group %u would be at block "
                      "%llu, past the volume's %llu blocks", g, (unsigned long long)blk,
                      (unsigned long long)st->blocks);
  *off = blk * st->block_size + (uint64_t)(g % per_block) * st->desc_size;
  return 0;
}

int ext_read_inode(struct fsmap_volume *vol, uint64_t ino, struct ext_inode *in)
{
  const struct ext_state *st = vol->priv;
  if (ino < 1 || ino > st->inodes_count)
    return fsmap_fail(vol, EINVAL, "ext: inode number %llu is outside 1..%u "
                      "(s_inodes_count)", (unsigned long long)ino, st->inodes_count);
  uint32_t g = (uint32_t)((ino - 1) / st->inodes_per_group);
  uint32_t index = (uint32_t)((ino - 1) % st->inodes_per_group);
  uint64_t off = 0;
  int r = ext_desc_offset(vol, st, g, &off);
  if (r < 0)
    return r;
  uint8_t desc[64];
  r = fsmap_read(vol, off, desc, st->desc_size >= 64 ? 64 : 32);
  if (r < 0)
    return r;
  uint64_t table = get_le32(desc + 0x08);
  if (st->desc_size >= 64)
    table |= (uint64_t)get_le32(desc + 0x28) << 32;
  uint64_t end = (uint64_t)(index + 1) * st->inode_size;
  if (table <= st->first_data_block || table >= st->blocks ||
      (end + st->block_size - 1) / st->block_size > st->blocks - table)
    return fsmap_fail(vol, EINVAL, "ext: block group %u's inode table (bg_inode_table) at "
                      "block %llu does not fit the volume's %llu blocks", g,
                      (unsigned long long)table, (unsigned long long)st->blocks);
  uint8_t raw[128];
  in->offset = table * st->block_size + (uint64_t)index * st->inode_size;
  r = fsmap_read(vol, in->offset, raw, sizeof raw);
  if (r < 0)
    return r;
  in->ino = (uint32_t)ino;
  in->mode = get_le16(raw + 0x00);
  in->size = get_le32(raw + 0x04) | (uint64_t)get_le32(raw + 0x6c) << 32;
  in->flags = get_le32(raw + 0x20);
  memcpy(in->i_block, raw + 0x28, sizeof in->i_block);
  if (in->mode == 0)
    return fsmap_fail(vol, EINVAL, "ext: inode %llu is not in use (i_mode 0) but a "
                      "directory entry names it", (unsigned long long)ino);
  return 0;
}

int ext_check_blocks_readable(struct fsmap_volume *vol, const struct ext_inode *in)
{
  if (in->flags & EXT_FL_INLINE_DATA)
    return fsmap_fail(vol, ENOTSUP, "ext: inode %u keeps its data inside the inode "
                      "(inline_data): it has no blocks to map", in->ino);
  if (in->flags & EXT_FL_ENCRYPT)
    return fsmap_fail(vol, ENOTSUP, "ext: inode %u is encrypted", in->ino);
  if (in->flags & EXT_FL_COMPR)
    return fsmap_fail(vol, ENOTSUP, "ext: inode %u is compressed", in->ino);
  return 0;
}

void fsmap_ext_unmount(struct fsmap_volume *vol)
{
  struct ext_state *st = vol->priv;
  if (!st)
    return;
  vhd_free(st->block);
  vhd_free(st);
  vol->priv = NULL;
}

/* Reads the superblock's geometry into st; messages name the field. */
static int ext_parse_superblock(struct fsmap_volume *vol, const uint8_t *sb,
                                struct ext_state *st)
{
  uint32_t log_bs = get_le32(sb + 0x18);
  uint32_t rev = get_le32(sb + 0x4c);
  st->block_size = 1024u << log_bs;
  st->compat = get_le32(sb + 0x5c);
  st->incompat = rev ? get_le32(sb + 0x60) : 0;
  st->ro_compat = rev ? get_le32(sb + 0x64) : 0;
  int r = ext_check_features(vol, st->incompat, st->ro_compat);
  if (r < 0)
    return r;
  st->blocks = get_le32(sb + 0x04);
  if (st->incompat & INCOMPAT_64BIT)
    st->blocks |= (uint64_t)get_le32(sb + 0x150) << 32;
  st->first_data_block = get_le32(sb + 0x14);
  st->blocks_per_group = get_le32(sb + 0x20);
  st->inodes_per_group = get_le32(sb + 0x28);
  st->inodes_count = get_le32(sb + 0x00);
  st->inode_size = rev ? get_le16(sb + 0x58) : 128;
  st->desc_size = (st->incompat & INCOMPAT_64BIT) ? get_le16(sb + 0xfe) : 32;
  st->first_meta_bg = get_le32(sb + 0x104);
  st->backup_bgs[0] = get_le32(sb + 0x24c);
  st->backup_bgs[1] = get_le32(sb + 0x250);
  uint32_t bs = st->block_size;

  if (st->first_data_block != (bs == 1024 ? 1u : 0u))
    return fsmap_fail(vol, EINVAL, "ext superblock: s_first_data_block is %u; with %u-byte "
                      "blocks it must be %u", st->first_data_block, bs, bs == 1024 ? 1 : 0);
  if (st->blocks <= (uint64_t)st->first_data_block + 2)
    return fsmap_fail(vol, EINVAL, "ext superblock: s_blocks_count is %llu",
                      (unsigned long long)st->blocks);
  if (st->blocks > vol->size / bs)
    return fsmap_fail(vol, EINVAL, "ext superblock: the file system (%llu blocks of %u "
                      "bytes) is larger than its partition (%llu bytes): truncated?",
                      (unsigned long long)st->blocks, bs, (unsigned long long)vol->size);
  if (st->blocks_per_group == 0 || st->blocks_per_group > 8 * bs)
    return fsmap_fail(vol, EINVAL, "ext superblock: s_blocks_per_group is %u (1..%u)",
                      st->blocks_per_group, 8 * bs);
  if (st->inodes_per_group == 0 || st->inodes_per_group > 8 * bs)
    return fsmap_fail(vol, EINVAL, "ext superblock: s_inodes_per_group is %u (1..%u)",
                      st->inodes_per_group, 8 * bs);
  if (st->inode_size < 128 || st->inode_size > bs || (st->inode_size & (st->inode_size - 1)))
    return fsmap_fail(vol, EINVAL, "ext superblock: s_inode_size is %u (a power of two, "
                      "128..%u)", st->inode_size, bs);
  if (st->desc_size < 32 || st->desc_size > 1024 || st->desc_size > bs ||
      (st->desc_size & (st->desc_size - 1)) ||
      ((st->incompat & INCOMPAT_64BIT) && st->desc_size < 64))
    return fsmap_fail(vol, EINVAL, "ext superblock: group descriptor size s_desc_size is %u",
                      st->desc_size);
  uint64_t groups = (st->blocks - st->first_data_block + st->blocks_per_group - 1) /
                    st->blocks_per_group;
  if (groups > 0xffffffffu / st->inodes_per_group + 1)
    return fsmap_fail(vol, EINVAL, "ext superblock: %llu block groups are too many",
                      (unsigned long long)groups);
  st->groups = (uint32_t)groups;
  if (st->inodes_count < EXT_ROOT_INO ||
      st->inodes_count > (uint64_t)st->groups * st->inodes_per_group)
    return fsmap_fail(vol, EINVAL, "ext superblock: s_inodes_count is %u but %u groups hold "
                      "%llu inodes", st->inodes_count, st->groups,
                      (unsigned long long)st->groups * st->inodes_per_group);
  return 0;
}

int fsmap_ext_mount(struct fsmap_volume *vol)
{
  uint8_t sb[1024];
  if (vol->size < EXT_SB_OFFSET + sizeof sb)
    return -ENOTSUP;
  int r = fsmap_read(vol, EXT_SB_OFFSET, sb, sizeof sb);
  if (r < 0)
    return r;
  /* A FAT volume can hold 0xEF53 here by chance (a FAT entry): ext claims
   * the volume only when two fields with few valid values agree too. */
  if (get_le16(sb + 0x38) != EXT_MAGIC || get_le32(sb + 0x18) > 6 || get_le32(sb + 0x4c) > 1)
    return -ENOTSUP;

  struct ext_state *st = vhd_calloc(1, sizeof *st);
  if (!st)
    return fsmap_fail(vol, ENOMEM, "out of memory");
  vol->priv = st;
  r = ext_parse_superblock(vol, sb, st);
  if (r == 0 && !(st->block = vhd_malloc(st->block_size)))
    r = fsmap_fail(vol, ENOMEM, "out of memory");
  struct ext_inode root;
  if (r == 0 && (r = ext_read_inode(vol, EXT_ROOT_INO, &root)) == 0 &&
      (root.mode & EXT_MODE_TYPE) != EXT_MODE_DIR)
    r = fsmap_fail(vol, EINVAL, "ext: the root inode (2) is not a directory (i_mode 0x%x)",
                   root.mode);
  if (r < 0) {
    fsmap_ext_unmount(vol);
    return r;
  }
  vol->kind = ext_kind(st->compat, st->incompat, st->ro_compat);
  vol->sector_size = 512;
  vol->cluster_size = st->block_size;
  vol->root_id = EXT_ROOT_INO;
  return 0;
}

int fsmap_ext_map(struct fsmap_volume *vol, const struct fsmap_file *f,
                  struct fsmap_extents *out)
{
  struct ext_inode in;
  int r = ext_read_inode(vol, f->id, &in);
  if (r < 0)
    return r;
  uint32_t type = in.mode & EXT_MODE_TYPE;
  if (type != EXT_MODE_REG && type != EXT_MODE_DIR)
    return fsmap_fail(vol, ENOTSUP, "ext: inode %u is not a regular file (i_mode 0x%x%s)",
                      in.ino, in.mode, type == EXT_MODE_LNK ? ", a symbolic link" : "");
  if ((r = ext_check_blocks_readable(vol, &in)) < 0)
    return r;
  if (in.flags & EXT_FL_VERITY)
    return fsmap_fail(vol, ENOTSUP, "ext: inode %u is protected by fs-verity: its blocks "
                      "must not change", in.ino);
  return ext_map_inode(vol, &in, out);
}
