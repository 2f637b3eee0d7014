/* SPDX-License-Identifier: BSD-3-Clause */
/* NTFS directories: the $I30 file name index ($INDEX_ROOT, and for large
 * directories the INDX blocks of $INDEX_ALLOCATION that $BITMAP marks in
 * use).
 *
 * Lookups walk every in-use node instead of descending the B+ tree: the
 * tree is ordered by the volume's $UpCase table, and a walk needs no
 * collation to be right (a descent with ASCII-only folding could turn the
 * wrong way at a non-ASCII name). Its cost is one read of the directory,
 * bounded by the index's size, which is bounded by the volume. */
#include "fsmap_ntfs_priv.h"
#include "util/endian.h"

#define NTFS_NAMESPACE_DOS 2
#define NTFS_ENTRY_LAST 0x0002u
#define NTFS_INDEX_LARGE 0x01u
#define NTFS_INDEX_BLOCK_MAX 65536u

static const uint16_t ntfs_i30[4] = { '$', 'I', '3', '0' };

/* The best entry seen so far: an exact-case name ends the search; a name
 * equal up to ASCII case, and then a DOS 8.3 name, are kept in case
 * nothing better follows (POSIX names may differ only in case). */
enum { NTFS_MATCH_NONE, NTFS_MATCH_DOS, NTFS_MATCH_FOLDED, NTFS_MATCH_EXACT };
struct ntfs_search {
  const uint16_t *name;
  size_t len;
  uint64_t ref;
  int quality;
};

/* The entries of one index node whose header is at byte hdr of node
 * (size bytes). */
static int ntfs_scan_node(struct fsmap_volume *vol, const uint8_t *node, uint32_t size,
                          uint32_t hdr, uint64_t dir, struct ntfs_search *s)
{
  unsigned long long dn = (unsigned long long)dir;
  uint32_t first = size - hdr >= 16 ? get_le32(node + hdr) : 0;
  uint32_t in_use = size - hdr >= 16 ? get_le32(node + hdr + 4) : 0;
  if (first < 16 || first % 8 || first > in_use || in_use > size - hdr)
    return fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index node header (entries "
                      "at %u, %u bytes in use) does not fit its %u bytes", dn, first, in_use,
                      size - hdr);
  uint32_t at = hdr + first, end = hdr + in_use;
  for (;;) {
    if (end - at < 16)
      return fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index entries run past "
                        "the node's %u bytes without a last entry", dn, in_use);
    const uint8_t *e = node + at;
    uint32_t elen = get_le16(e + 8), klen = get_le16(e + 10);
    if (elen < 16 || elen % 8 || elen > end - at)
      return fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index entry at byte %u "
                        "has length %u, outside its node", dn, at, elen);
    if (get_le16(e + 12) & NTFS_ENTRY_LAST)
      return 0;
    const uint8_t *key = e + 16;
    if (klen < 0x42 || klen > elen - 16 || 0x42u + 2u * key[0x40] > klen)
      return fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index entry at byte %u "
                        "has a malformed file name key (%u bytes)", dn, at, klen);
    uint8_t nlen = key[0x40];
    uint16_t name[FSMAP_NAME_MAX];
    for (uint8_t i = 0; i < nlen; i++)
      name[i] = get_le16(key + 0x42 + 2 * i);
    if (fsmap_name_equal(name, nlen, s->name, s->len)) {
      int q = key[0x41] == NTFS_NAMESPACE_DOS ? NTFS_MATCH_DOS
              : memcmp(name, s->name, 2u * nlen) == 0 ? NTFS_MATCH_EXACT
                                                     : NTFS_MATCH_FOLDED;
      if (q > s->quality) {
        s->quality = q;
        s->ref = get_le64(e);
      }
      if (q == NTFS_MATCH_EXACT)
        return 1;
    }
    at += elen;
  }
}

/* Bit i of a directory's $BITMAP: from the resident value, or read 512
 * bytes at a time (a large directory's bitmap is never held whole). */
struct ntfs_bitmap {
  const struct ntfs_stream *s;
  uint8_t window[512];
  uint64_t start;           /* bitmap byte at window[0] */
  bool loaded;
};

static int ntfs_bitmap_bit(struct fsmap_volume *vol, struct ntfs_bitmap *b, uint64_t i,
                           bool *set)
{
  uint64_t byte = i / 8;
  const uint8_t *p;
  if (b->s->resident) {
    p = b->s->value + byte;
  } else {
    if (!b->loaded || byte < b->start || byte - b->start >= sizeof b->window) {
      uint64_t start = byte - byte % sizeof b->window;
      uint64_t len = start >= b->s->init_size ? 0 : b->s->init_size - start;
      memset(b->window, 0, sizeof b->window);   /* past the initialized size: zeros */
      int r = ntfs_stream_read(vol, &b->s->runs, start, b->window,
                               len < sizeof b->window ? (size_t)len : sizeof b->window,
                               "index bitmap");
      if (r < 0)
        return r;
      b->start = start;
      b->loaded = true;
    }
    p = b->window + (byte - b->start);
  }
  *set = (*p >> (i % 8)) & 1;
  return 0;
}

/* A directory's index allocation or bitmap: present, and when non-resident
 * plain clusters with no holes (so its size is bounded by the volume). */
static bool ntfs_index_stream_ok(const struct ntfs_stream *s, uint64_t cs)
{
  if (!s->found || (s->flags & (NTFS_ATTR_COMPRESSED | NTFS_ATTR_ENCRYPTED | NTFS_ATTR_SPARSE)))
    return false;
  if (s->resident)
    return true;
  return s->runs.data_clusters == s->runs.next_vcn && s->data_size <= s->runs.next_vcn * cs;
}

/* Walks the in-use INDX blocks of a large directory. */
static int ntfs_scan_blocks(struct fsmap_volume *vol, uint64_t dir, uint32_t block_size,
                            struct ntfs_search *s)
{
  unsigned long long dn = (unsigned long long)dir;
  uint64_t cs = vol->cluster_size;
  struct ntfs_stream alloc, bitmap;
  uint8_t *block = NULL;
  int r = ntfs_stream_load(vol, dir, NTFS_AT_INDEX_ALLOCATION, ntfs_i30, 4, &alloc);
  if (r == 0)
    r = ntfs_stream_load(vol, dir, NTFS_AT_BITMAP, ntfs_i30, 4, &bitmap);
  else
    memset(&bitmap, 0, sizeof bitmap);
  if (r == 0 && (alloc.resident || !ntfs_index_stream_ok(&alloc, cs) ||
                 !ntfs_index_stream_ok(&bitmap, cs)))
    r = fsmap_fail(vol, EINVAL, "directory (MFT record %llu) is a large index without a "
                   "usable $INDEX_ALLOCATION or $BITMAP", dn);
  uint64_t blocks = alloc.data_size / block_size;
  if (r == 0 && alloc.data_size % block_size)
    r = fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index allocation of %llu bytes "
                   "is not a whole number of %u-byte blocks", dn,
                   (unsigned long long)alloc.data_size, block_size);
  if (r == 0 && bitmap.data_size < (blocks + 7) / 8)
    r = fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index bitmap of %llu bytes "
                   "does not cover %llu blocks", dn, (unsigned long long)bitmap.data_size,
                   (unsigned long long)blocks);
  if (r == 0 && !(block = vhd_malloc(block_size)))
    r = fsmap_fail(vol, ENOMEM, "out of memory");
  struct ntfs_bitmap bits = { .s = &bitmap };
  /* Block VCNs count clusters, or 512-byte units when blocks are smaller. */
  uint64_t unit = block_size >= cs ? cs : 512;
  for (uint64_t i = 0; r == 0 && i < blocks; i++) {
    bool used;
    if ((r = ntfs_bitmap_bit(vol, &bits, i, &used)) < 0 || !used)
      continue;   /* free blocks may hold stale entries */
    r = ntfs_stream_read(vol, &alloc.runs, i * block_size, block, block_size,
                         "index allocation");
    if (r == 0)
      r = ntfs_fixup(vol, block, block_size, "INDX", "index block", i);
    if (r == 0 && get_le64(block + 0x10) != i * block_size / unit)
      r = fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index block %llu says it "
                     "is at VCN %llu", dn, (unsigned long long)i,
                     (unsigned long long)get_le64(block + 0x10));
    if (r == 0)
      r = ntfs_scan_node(vol, block, block_size, 0x18, dir, s);
    if (r == 1)
      break;
  }
  vhd_free(block);
  ntfs_stream_free(&alloc);
  ntfs_stream_free(&bitmap);
  return r < 0 ? r : 0;
}

/* The sizes of an attribute's first piece (or of its resident value):
 * a lookup needs no run list. */
static int ntfs_first_piece_sizes(struct fsmap_volume *vol, const struct ntfs_attr *a,
                                  void *arg)
{
  struct fsmap_file *out = arg;
  if (!a->nonresident) {
    out->size = out->valid_size = a->value_len;
  } else if (a->lowest_vcn == 0) {
    if (a->init_size > a->data_size)
      return fsmap_fail(vol, EINVAL, "MFT record %llu: initialized size %llu is past the "
                        "data size %llu", (unsigned long long)a->record,
                        (unsigned long long)a->init_size, (unsigned long long)a->data_size);
    out->size = a->data_size;
    out->valid_size = a->init_size;
  }
  return 0;
}

/* Fills out from the MFT record a directory entry's reference names. */
static int ntfs_file_info(struct fsmap_volume *vol, uint64_t ref, struct fsmap_file *out)
{
  const struct ntfs_state *st = vol->priv;
  uint64_t n = NTFS_REF_RECORD(ref);
  uint8_t *rec = vhd_malloc(st->record_size);
  if (!rec)
    return fsmap_fail(vol, ENOMEM, "out of memory");
  int r = ntfs_read_record(vol, n, rec);
  uint16_t seq = get_le16(rec + 0x10);
  bool is_dir = r == 0 && (get_le16(rec + 0x16) & NTFS_RECORD_DIRECTORY);
  vhd_free(rec);
  if (r < 0)
    return r;
  if (NTFS_REF_SEQUENCE(ref) && NTFS_REF_SEQUENCE(ref) != seq)
    return fsmap_fail(vol, EINVAL, "directory entry for MFT record %llu is stale (sequence "
                      "%u, the record has %u)", (unsigned long long)n, NTFS_REF_SEQUENCE(ref),
                      seq);
  memset(out, 0, sizeof *out);
  out->id = n;
  out->directory = is_dir;
  if (is_dir)
    return 1;
  r = ntfs_for_each_attr(vol, n, NTFS_AT_DATA, NULL, 0, ntfs_first_piece_sizes, out);
  return r < 0 ? r : 1;
}

int fsmap_ntfs_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                    const uint16_t *name, size_t len, struct fsmap_file *out)
{
  unsigned long long dn = (unsigned long long)dir->id;
  int r = ntfs_refuse_reparse(vol, dir->id);
  if (r < 0)
    return r;
  struct ntfs_stream root;
  struct ntfs_search s = { name, len, 0, NTFS_MATCH_NONE };
  r = ntfs_stream_load(vol, dir->id, NTFS_AT_INDEX_ROOT, ntfs_i30, 4, &root);
  if (r == 0 && (!root.found || !root.resident))
    r = fsmap_fail(vol, EINVAL, "MFT record %llu has no resident $I30 index root: not a "
                   "directory", dn);
  const uint8_t *v = root.value;
  uint32_t vlen = (uint32_t)root.data_size;
  if (r == 0 && (vlen < 0x20 || get_le32(v) != 0x30))
    r = fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index root of %u bytes does "
                   "not index file names", dn, vlen);
  uint32_t block_size = r == 0 ? get_le32(v + 8) : 0;
  if (r == 0)
    r = ntfs_scan_node(vol, v, vlen, 0x10, dir->id, &s);
  if (r == 0 && (v[0x10 + 0x0c] & NTFS_INDEX_LARGE)) {
    if (block_size < 512 || block_size > NTFS_INDEX_BLOCK_MAX ||
        (block_size & (block_size - 1)))
      r = fsmap_fail(vol, EINVAL, "directory (MFT record %llu): index block size %u", dn,
                     block_size);
    else
      r = ntfs_scan_blocks(vol, dir->id, block_size, &s);
  }
  ntfs_stream_free(&root);
  if (r < 0)
    return r;
  if (s.quality == NTFS_MATCH_NONE)
    return 0;
  return ntfs_file_info(vol, s.ref, out);
}
