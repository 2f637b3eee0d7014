/* SPDX-License-Identifier: BSD-3-Clause */
/* ext2/3/4: an inode's blocks as extents, from its extent tree (ext4,
 * EXTENTS flag) or its block map (direct, single, double and triple
 * indirect blocks). Logical blocks no extent or pointer covers are holes;
 * ext4 unwritten (preallocated) extents are reported as such, since Linux
 * reads them as zeros whatever their blocks hold. Blocks past the file
 * size (preallocated with KEEP_SIZE) are left out.
 *
 * The tree is hostile: node headers are checked (magic, entries within
 * eh_max and the node, the depth one less than the parent's, at most 5),
 * entries must be sorted and inside the range their parent's index gives
 * them, and every block lies inside the volume. Work is bounded by the
 * volume: at most s_blocks_count tree blocks are read and at most that
 * many blocks owned, whatever the fields say. */
#include "fsmap_ext.h"
#include "util/endian.h"

#define EXTENT_MAGIC 0xf30a
#define EXTENT_MAX_DEPTH 5
#define EXTENT_INIT_MAX_LEN 32768u   /* longer: unwritten, length - 32768 */
#define LOGICAL_LIMIT (1ull << 32)   /* logical block numbers are 32-bit */
#define BLOCK_MAP_DIRECT 12

struct ext_walk {
  struct fsmap_volume *vol;
  const struct ext_state *st;
  uint32_t ino;
  uint64_t file_blocks;       /* ceil(size / block size): what is mapped */
  uint64_t next;              /* next logical block to emit (<= file_blocks) */
  uint64_t cursor;            /* end of the last extent seen: keeps them sorted */
  uint64_t owned;             /* blocks emitted: at most the volume's */
  uint64_t nodes;             /* tree or indirect blocks read: at most the volume's */
  uint8_t *levels;            /* one block buffer per tree level */
  struct fsmap_extents *out;
};

/* A block number a file may use: past the superblock, inside the volume. */
static bool ext_block_ok(const struct ext_state *st, uint64_t blk, uint64_t count)
{
  return blk > st->first_data_block && blk < st->blocks && count <= st->blocks - blk;
}

/* Appends [lblk, lblk + len) at physical block pblk, after a hole from
 * the last emitted block; clipped to the file size. */
static int ext_emit(struct ext_walk *w, uint64_t lblk, uint64_t len, uint64_t pblk,
                    enum fsmap_extent_state state)
{
  uint64_t bs = w->st->block_size;
  if (lblk >= w->file_blocks)
    return 0;
  if (len > w->file_blocks - lblk)
    len = w->file_blocks - lblk;
  int r;
  if (lblk > w->next && (r = fsmap_extents_add(w->vol, w->out, 0, (lblk - w->next) * bs,
                                                FSMAP_HOLE)) < 0)
    return r;
  w->owned += len;
  if (w->owned > w->st->blocks)
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u claims more blocks than the volume's "
                      "%llu", w->ino, (unsigned long long)w->st->blocks);
  w->next = lblk + len;
  return fsmap_extents_add(w->vol, w->out, pblk * bs, len * bs, state);
}

/* Reads a tree or indirect block into the buffer of its level. */
static int ext_read_node(struct ext_walk *w, uint64_t blk, unsigned level, uint8_t **node)
{
  /* Set before any return: gcc -O3 cannot see that fsmap_fail() is
   * negative and warned that callers might read *node unset. */
  *node = w->levels + (size_t)level * w->st->block_size;
  if (++w->nodes > w->st->blocks)
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u's block tree has more nodes than the "
                      "volume has blocks (a loop?)", w->ino);
  return fsmap_read(w->vol, blk * w->st->block_size, *node, w->st->block_size);
}

static int ext_extent_node(struct ext_walk *w, const uint8_t *node, size_t bytes,
                           unsigned level, int want_depth, uint64_t lo, uint64_t hi);

/* An extent tree leaf entry: ee_block, ee_len, ee_start_hi, ee_start_lo. */
static int ext_extent_leaf(struct ext_walk *w, const uint8_t *e, uint64_t lo, uint64_t hi)
{
  uint64_t lblk = get_le32(e);
  uint32_t raw_len = get_le16(e + 4);
  uint64_t pblk = (uint64_t)get_le16(e + 6) << 32 | get_le32(e + 8);
  bool unwritten = raw_len > EXTENT_INIT_MAX_LEN;
  uint64_t len = unwritten ? raw_len - EXTENT_INIT_MAX_LEN : raw_len;
  if (len == 0)
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent at logical block %llu has "
                      "length 0", w->ino, (unsigned long long)lblk);
  if (lblk < lo || lblk < w->cursor || len > hi - lblk || lblk + len > hi)
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent of logical blocks %llu..%llu "
                      "overlaps another or lies outside its index range %llu..%llu", w->ino,
                      (unsigned long long)lblk, (unsigned long long)(lblk + len - 1),
                      (unsigned long long)lo, (unsigned long long)(hi - 1));
  if (!ext_block_ok(w->st, pblk, len))
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent of %llu blocks at block %llu "
                      "lies outside the volume (blocks %u..%llu)", w->ino,
                      (unsigned long long)len, (unsigned long long)pblk,
                      w->st->first_data_block + 1, (unsigned long long)(w->st->blocks - 1));
  w->cursor = lblk + len;
  return ext_emit(w, lblk, len, pblk, unwritten ? FSMAP_UNWRITTEN : FSMAP_DATA);
}

/* An index entry: ei_block, ei_leaf_lo, ei_leaf_hi; the child covers
 * logical blocks [ei_block, child_hi). */
static int ext_extent_index(struct ext_walk *w, const uint8_t *e, unsigned level, int depth,
                            uint64_t child_hi)
{
  uint64_t lblk = get_le32(e);
  uint64_t child = (uint64_t)get_le16(e + 8) << 32 | get_le32(e + 4);
  if (!ext_block_ok(w->st, child, 1))
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent index for logical block %llu "
                      "points at block %llu, outside the volume", w->ino,
                      (unsigned long long)lblk, (unsigned long long)child);
  uint8_t *node;
  int r = ext_read_node(w, child, level, &node);
  if (r < 0)
    return r;
  return ext_extent_node(w, node, w->st->block_size, level + 1, depth - 1, lblk, child_hi);
}

/* One node (the root in i_block or a tree block) covering logical blocks
 * [lo, hi). want_depth < 0: the root, whose depth sets the tree's. */
static int ext_extent_node(struct ext_walk *w, const uint8_t *node, size_t bytes,
                           unsigned level, int want_depth, uint64_t lo, uint64_t hi)
{
  unsigned magic = get_le16(node), entries = get_le16(node + 2), max = get_le16(node + 4);
  int depth = get_le16(node + 6);
  if (magic != EXTENT_MAGIC)
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent node at level %u has magic "
                      "0x%04x (eh_magic, expected 0xf30a)", w->ino, level, magic);
  if (entries > max || 12 + (size_t)max * 12 > bytes)
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent node at level %u has %u "
                      "entries of at most %u (eh_entries/eh_max) in %zu bytes", w->ino, level,
                      entries, max, bytes);
  if (depth > EXTENT_MAX_DEPTH || (want_depth >= 0 && depth != want_depth))
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent node at level %u has depth %d "
                      "(eh_depth), expected %d (at most %d)", w->ino, level, depth,
                      want_depth < 0 ? depth : want_depth, EXTENT_MAX_DEPTH);
  if (depth > 0 && entries == 0)
    return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent index node at level %u is "
                      "empty", w->ino, level);
  const uint8_t *e = node + 12;
  for (unsigned i = 0; i < entries; i++, e += 12) {
    int r;
    if (depth == 0) {
      r = ext_extent_leaf(w, e, lo, hi);
    } else {
      uint64_t start = get_le32(e);
      uint64_t end = i + 1 < entries ? get_le32(e + 12) : hi;
      if (start < lo || end <= start || end > hi)
        return fsmap_fail(w->vol, EINVAL, "ext: inode %u: extent index entries at level %u "
                          "are not sorted or leave their range %llu..%llu (ei_block %llu)",
                          w->ino, level, (unsigned long long)lo, (unsigned long long)(hi - 1),
                          (unsigned long long)start);
      if (start >= w->file_blocks)   /* only preallocation past the end follows */
        break;
      r = ext_extent_index(w, e, level, depth, end);
    }
    if (r < 0)
      return r;
  }
  return 0;
}

/* A block of pointers at height level (1: to data blocks, 2: to single
 * indirect blocks, 3: to double), its first pointer for logical block
 * first. */
static int ext_indirect(struct ext_walk *w, uint64_t blk, unsigned level, uint64_t first)
{
  uint64_t per = w->st->block_size / 4;
  uint64_t span = 1;
  for (unsigned i = 1; i < level; i++)
    span *= per;
  uint8_t *node;
  int r = ext_read_node(w, blk, level - 1, &node);
  if (r < 0)
    return r;
  for (uint64_t i = 0; i < per && first + i * span < w->file_blocks; i++) {
    uint64_t ptr = get_le32(node + 4 * i);
    uint64_t lblk = first + i * span;
    if (ptr == 0)   /* a hole */
      continue;
    if (!ext_block_ok(w->st, ptr, 1))
      return fsmap_fail(w->vol, EINVAL, "ext: inode %u: block pointer for logical block %llu "
                        "(level %u) is %llu, outside the volume", w->ino,
                        (unsigned long long)lblk, level, (unsigned long long)ptr);
    r = level == 1 ? ext_emit(w, lblk, 1, ptr, FSMAP_DATA) : ext_indirect(w, ptr, level - 1, lblk);
    if (r < 0)
      return r;
  }
  return 0;
}

static int ext_block_map(struct ext_walk *w, const uint8_t *i_block)
{
  uint64_t per = w->st->block_size / 4;
  uint64_t lblk = 0;
  for (unsigned i = 0; i < 15 && lblk < w->file_blocks; i++) {
    unsigned level = i < BLOCK_MAP_DIRECT ? 0 : i - BLOCK_MAP_DIRECT + 1;
    uint64_t span = 1;
    for (unsigned k = 0; k < level; k++)
      span *= per;
    uint64_t ptr = get_le32(i_block + 4 * i);
    if (ptr != 0) {
      if (!ext_block_ok(w->st, ptr, 1))
        return fsmap_fail(w->vol, EINVAL, "ext: inode %u: i_block[%u] is %llu, outside the "
                          "volume", w->ino, i, (unsigned long long)ptr);
      int r = level == 0 ? ext_emit(w, lblk, 1, ptr, FSMAP_DATA)
                         : ext_indirect(w, ptr, level, lblk);
      if (r < 0)
        return r;
    }
    lblk += span;
  }
  return 0;
}

int ext_map_inode(struct fsmap_volume *vol, const struct ext_inode *in,
                  struct fsmap_extents *out)
{
  const struct ext_state *st = vol->priv;
  uint64_t bs = st->block_size;
  struct ext_walk w;
  memset(&w, 0, sizeof w);
  w.vol = vol;
  w.st = st;
  w.ino = in->ino;
  w.out = out;
  w.file_blocks = in->size / bs + (in->size % bs != 0);
  if (w.file_blocks == 0)
    return 0;
  if (w.file_blocks > LOGICAL_LIMIT)
    return fsmap_fail(vol, EINVAL, "ext: inode %u: i_size %llu is beyond the largest ext "
                      "file (2^32 blocks)", in->ino, (unsigned long long)in->size);
  w.levels = vhd_malloc((size_t)bs * EXTENT_MAX_DEPTH);
  if (!w.levels)
    return fsmap_fail(vol, ENOMEM, "out of memory");
  int r = (in->flags & EXT_FL_EXTENTS)
              ? ext_extent_node(&w, in->i_block, sizeof in->i_block, 0, -1, 0, LOGICAL_LIMIT)
              : ext_block_map(&w, in->i_block);
  vhd_free(w.levels);
  /* Trailing blocks no extent reaches: a hole up to the size. */
  if (r == 0 && w.next < w.file_blocks)
    r = fsmap_extents_add(vol, out, 0, (w.file_blocks - w.next) * bs, FSMAP_HOLE);
  if (r == 0)
    r = fsmap_extents_check_overlap(vol, out);
  return r;
}
