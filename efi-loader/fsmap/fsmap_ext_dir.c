/* SPDX-License-Identifier: BSD-3-Clause */
/* ext2/3/4 directories: names looked up byte for byte (ext names are
 * case-sensitive raw bytes).
 *
 * A directory is scanned block by block, whatever its kind: the blocks of
 * a hashed (htree) directory that hold its index parse as entry chains
 * with no live names (".", ".." and entries of inode 0), so a linear scan
 * finds exactly the names the hash would, without trusting the hash.
 * Entries of inode 0 (free slots, index blocks, the metadata_csum tail)
 * are skipped, every rec_len is checked against its block.
 *
 * Small directories on an inline_data volume keep their entries in the
 * inode: after the parent's inode number in i_block, and in the value of
 * the in-inode extended attribute "system.data". */
#include "fsmap_ext.h"
#include "util/endian.h"

#define XATTR_MAGIC 0xea020000u
#define XATTR_INDEX_SYSTEM 7
#define XATTR_ENTRY_HEAD 16   /* name_len, index, value_offs, value_inum, size, hash */

static uint32_t ext_rec_len(const struct ext_state *st, uint16_t v)
{
  if (st->block_size < 65536)
    return v;
  /* 64 KiB blocks: the length does not fit 16 bits and is folded. */
  if (v == 65535 || v == 0)
    return 65536;
  return (v & 0xfffcu) | ((uint32_t)(v & 3) << 16);
}

/* Looks for name in a chain of entries filling buf[0, bytes); at is the
 * chain's offset in the directory, for messages. *found: the inode
 * number, 0 when absent. */
static int ext_scan_entries(struct fsmap_volume *vol, const struct ext_inode *dir,
                            const uint8_t *buf, uint32_t bytes, uint64_t at, const char *name,
                            size_t len, uint32_t *found)
{
  const struct ext_state *st = vol->priv;
  uint32_t pos = 0;
  *found = 0;
  while (pos < bytes) {
    uint32_t rec_len = bytes - pos < 8 ? 0 : ext_rec_len(st, get_le16(buf + pos + 4));
    uint32_t name_len = bytes - pos < 8 ? 0 : buf[pos + 6];
    if (rec_len < 8 + name_len || rec_len % 4 || rec_len > bytes - pos)
      return fsmap_fail(vol, EINVAL, "ext: directory inode %u: the entry at byte %llu has "
                        "rec_len %u for a %u-byte name; it does not fit its %u-byte block",
                        dir->ino, (unsigned long long)(at + pos), rec_len, name_len, bytes);
    uint32_t ino = get_le32(buf + pos);
    if (ino != 0 && name_len == len && memcmp(buf + pos + 8, name, len) == 0) {
      *found = ino;
      return 0;
    }
    pos += rec_len;
  }
  return 0;
}

static int ext_block_dir_lookup(struct fsmap_volume *vol, const struct ext_inode *dir,
                                const char *name, size_t len, uint32_t *found)
{
  const struct ext_state *st = vol->priv;
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  int r = ext_map_inode(vol, dir, &e);
  *found = 0;
  for (size_t i = 0; r == 0 && i < e.count && !*found; i++) {
    if (e.v[i].state != FSMAP_DATA)   /* reads as zeros: no entries */
      continue;
    for (uint64_t at = 0; r == 0 && at < e.v[i].length && !*found; at += st->block_size) {
      r = fsmap_read(vol, e.v[i].volume_offset + at, st->block, st->block_size);
      if (r == 0)
        r = ext_scan_entries(vol, dir, st->block, st->block_size, e.v[i].file_offset + at,
                             name, len, found);
    }
  }
  fsmap_extents_free(&e);
  return r;
}

/* The value of the in-inode attribute system.data: *value NULL when the
 * inode has none. raw is the whole inode. */
static int ext_inline_value(struct fsmap_volume *vol, const struct ext_inode *dir,
                            const uint8_t *raw, uint32_t size, const uint8_t **value,
                            uint32_t *value_len)
{
  *value = NULL;
  *value_len = 0;
  if (size <= 128 + 2)
    return 0;
  uint32_t start = 128 + get_le16(raw + 0x80);   /* after i_extra_isize */
  if (start % 4 || start > size - 4 || get_le32(raw + start) != XATTR_MAGIC)
    return 0;
  uint32_t first = start + 4;
  for (uint32_t e = first; e <= size - 4 && get_le32(raw + e) != 0;) {
    uint32_t name_len = raw[e];
    uint32_t entry_len = (XATTR_ENTRY_HEAD + name_len + 3) & ~3u;
    if (entry_len > size - e)
      return fsmap_fail(vol, EINVAL, "ext: inode %u: in-inode extended attribute at byte %u "
                        "runs past the inode", dir->ino, e);
    uint32_t value_offs = get_le16(raw + e + 2);
    uint32_t value_size = get_le32(raw + e + 8);
    if (raw[e + 1] == XATTR_INDEX_SYSTEM && name_len == 4 &&
        memcmp(raw + e + XATTR_ENTRY_HEAD, "data", 4) == 0) {
      if (get_le32(raw + e + 4) != 0 || value_offs > size - first ||
          value_size > size - first - value_offs)
        return fsmap_fail(vol, EINVAL, "ext: inode %u: the inline data attribute "
                          "(system.data, %u bytes at %u) does not fit the inode", dir->ino,
                          value_size, value_offs);
      *value = raw + first + value_offs;
      *value_len = value_size;
      return 0;
    }
    e += entry_len;
  }
  return 0;
}

static int ext_inline_dir_lookup(struct fsmap_volume *vol, const struct ext_inode *dir,
                                 const char *name, size_t len, uint32_t *found)
{
  const struct ext_state *st = vol->priv;
  /* i_block: the parent's inode number, then entries. */
  int r = ext_scan_entries(vol, dir, dir->i_block + 4, sizeof dir->i_block - 4, 4, name, len,
                           found);
  if (r < 0 || *found)
    return r;
  r = fsmap_read(vol, dir->offset, st->block, st->inode_size);
  if (r < 0)
    return r;
  const uint8_t *value;
  uint32_t value_len;
  r = ext_inline_value(vol, dir, st->block, st->inode_size, &value, &value_len);
  if (r < 0 || !value)
    return r;
  return ext_scan_entries(vol, dir, value, value_len, sizeof dir->i_block, name, len, found);
}

int fsmap_ext_find(struct fsmap_volume *vol, const struct fsmap_file *dir, const char *utf8,
                   size_t utf8_len, struct fsmap_file *out)
{
  struct ext_inode in;
  int r = ext_read_inode(vol, dir->id, &in);
  if (r < 0)
    return r;
  if ((in.mode & EXT_MODE_TYPE) != EXT_MODE_DIR)
    return fsmap_fail(vol, EINVAL, "ext: inode %u is not a directory (i_mode 0x%x)", in.ino,
                      in.mode);
  if (in.flags & EXT_FL_ENCRYPT)
    return fsmap_fail(vol, ENOTSUP, "ext: directory inode %u is encrypted", in.ino);
  if (utf8_len > FSMAP_NAME_MAX)
    return 0;
  uint32_t ino;
  if (in.flags & EXT_FL_INLINE_DATA)
    r = ext_inline_dir_lookup(vol, &in, utf8, utf8_len, &ino);
  else if ((r = ext_check_blocks_readable(vol, &in)) == 0)
    r = ext_block_dir_lookup(vol, &in, utf8, utf8_len, &ino);
  if (r < 0)
    return r;
  if (ino == 0) {
    if (in.flags & EXT_FL_CASEFOLD)
      return fsmap_fail(vol, ENOENT, "ext: \"%.*s\" not found in directory inode %u, which "
                        "is case-insensitive (casefold); the loader matches names exactly, "
                        "so write the name as it is stored", (int)utf8_len, utf8, in.ino);
    return 0;
  }
  struct ext_inode child;
  if ((r = ext_read_inode(vol, ino, &child)) < 0)
    return r;
  memset(out, 0, sizeof *out);
  out->size = child.size;
  out->valid_size = child.size;
  out->directory = (child.mode & EXT_MODE_TYPE) == EXT_MODE_DIR;
  out->id = ino;
  return 1;
}
