/* SPDX-License-Identifier: BSD-3-Clause */
/* The parts of the mapper shared by its modules: recognising the volume,
 * the FAT cache and directory iteration (FAT and exFAT), path walking and
 * extent lists. */
#include "fsmap_priv.h"
#include "util/endian.h"
#include "util/strfmt.h"
#include "util/utf16.h"

#define FAT_CACHE_BYTES 65536u

/* Normalised FAT entry values (see fsmap_fat_entry). */
#define ENTRY_EOC 0xffffffffu
#define ENTRY_BAD 0xfffffff7u

int fsmap_fail(struct fsmap_volume *vol, int errnum, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vhd_vsnprintf(vol->error, sizeof vol->error, fmt, ap);
  va_end(ap);
  return -errnum;
}

const char *fsmap_kind_name(enum fsmap_kind kind)
{
  switch (kind) {
  case FSMAP_FAT12: return "FAT12";
  case FSMAP_FAT16: return "FAT16";
  case FSMAP_FAT32: return "FAT32";
  case FSMAP_EXFAT: return "exFAT";
  case FSMAP_EXT2: return "ext2";
  case FSMAP_EXT3: return "ext3";
  case FSMAP_EXT4: return "ext4";
  case FSMAP_NTFS: return "NTFS";
  }
  return "?";
}

int fsmap_read(struct fsmap_volume *vol, uint64_t off, void *buf, size_t len)
{
  if (off > vol->size || len > vol->size - off)
    return fsmap_fail(vol, EINVAL, "read of %zu bytes at offset %llu is past the end of the "
                      "volume (%llu bytes)", len, (unsigned long long)off,
                      (unsigned long long)vol->size);
  int r = vol->read(vol->ctx, off, buf, len);
  if (r < 0)
    return fsmap_fail(vol, -r, "cannot read %zu bytes at volume offset %llu", len,
                      (unsigned long long)off);
  return 0;
}

int fsmap_mount(struct fsmap_volume *vol, fsmap_read_fn read, void *ctx,
                uint64_t volume_size)
{
  memset(vol, 0, sizeof *vol);
  vol->read = read;
  vol->ctx = ctx;
  vol->size = volume_size;
  uint8_t boot[512];
  if (volume_size < sizeof boot)
    return -ENOTSUP;
  int r = fsmap_read(vol, 0, boot, sizeof boot);
  if (r < 0)
    return r;
  if (memcmp(boot + 3, "EXFAT   ", 8) == 0)
    r = fsmap_exfat_mount(vol, boot);
  else if (memcmp(boot + 3, "NTFS    ", 8) == 0)
    r = fsmap_ntfs_mount(vol, boot);
  else if ((r = fsmap_ext_mount(vol)) == -ENOTSUP)
    r = fsmap_fat_mount(vol, boot);
  if (r < 0)
    return r;
  if (vol->kind != FSMAP_FAT12 && vol->kind != FSMAP_FAT16 && vol->kind != FSMAP_FAT32 &&
      vol->kind != FSMAP_EXFAT)
    return 0;
  vol->fat_cache = vhd_malloc(FAT_CACHE_BYTES);
  if (!vol->fat_cache)
    return fsmap_fail(vol, ENOMEM, "out of memory");
  return 0;
}

static bool is_ext(enum fsmap_kind k)
{
  return k == FSMAP_EXT2 || k == FSMAP_EXT3 || k == FSMAP_EXT4;
}

void fsmap_unmount(struct fsmap_volume *vol)
{
  if (is_ext(vol->kind))
    fsmap_ext_unmount(vol);
  else if (vol->kind == FSMAP_NTFS)
    fsmap_ntfs_unmount(vol);
  vol->priv = NULL;
  vhd_free(vol->fat_cache);
  vol->fat_cache = NULL;
  vol->fat_cache_len = 0;
}

void fsmap_invalidate(struct fsmap_volume *vol)
{
  vol->fat_cache_len = 0;
}

/* One byte of the FAT through the cache window. */
static int fat_bytes(struct fsmap_volume *vol, uint64_t off, uint8_t *out, unsigned n)
{
  for (unsigned i = 0; i < n; i++, off++) {
    if (off >= vol->fat_bytes)
      return fsmap_fail(vol, EINVAL, "FAT entry at byte %llu is past the end of the FAT",
                        (unsigned long long)off);
    if (off < vol->fat_cache_start || off >= vol->fat_cache_start + vol->fat_cache_len) {
      uint64_t start = off - off % FAT_CACHE_BYTES;
      uint64_t len = vol->fat_bytes - start < FAT_CACHE_BYTES ? vol->fat_bytes - start
                                                              : FAT_CACHE_BYTES;
      vol->fat_cache_len = 0;
      int r = fsmap_read(vol, vol->fat_offset + start, vol->fat_cache, (size_t)len);
      if (r < 0)
        return r;
      vol->fat_cache_start = start;
      vol->fat_cache_len = (uint32_t)len;
    }
    out[i] = vol->fat_cache[off - vol->fat_cache_start];
  }
  return 0;
}

int fsmap_fat_entry(struct fsmap_volume *vol, uint32_t c, uint32_t *next)
{
  uint8_t b[4];
  uint32_t v;
  int r;
  switch (vol->kind) {
  case FSMAP_FAT12:
    r = fat_bytes(vol, (uint64_t)c + c / 2, b, 2);
    v = get_le16(b);
    v = (c & 1) ? v >> 4 : v & 0xfff;
    *next = v >= 0xff8 ? ENTRY_EOC : v == 0xff7 ? ENTRY_BAD : v;
    break;
  case FSMAP_FAT16:
    r = fat_bytes(vol, (uint64_t)c * 2, b, 2);
    v = get_le16(b);
    *next = v >= 0xfff8 ? ENTRY_EOC : v == 0xfff7 ? ENTRY_BAD : v;
    break;
  case FSMAP_FAT32:
    r = fat_bytes(vol, (uint64_t)c * 4, b, 4);
    v = get_le32(b) & 0x0fffffff;
    *next = v >= 0x0ffffff8 ? ENTRY_EOC : v == 0x0ffffff7 ? ENTRY_BAD : v;
    break;
  default:
    r = fat_bytes(vol, (uint64_t)c * 4, b, 4);
    v = get_le32(b);
    *next = v >= 0xfffffff8 ? ENTRY_EOC : v;
    break;
  }
  return r;
}

/* The cluster after c in a chain: 0 at the end of the chain. */
static int chain_next(struct fsmap_volume *vol, uint32_t c, uint32_t *next)
{
  /* Set on every path: gcc -O3 cannot see that fsmap_fail() is negative
   * and warned that callers might read *next unset. */
  *next = 0;
  uint32_t v;
  int r = fsmap_fat_entry(vol, c, &v);
  if (r < 0)
    return r;
  if (v == ENTRY_EOC) {
    *next = 0;
    return 0;
  }
  if (!fsmap_cluster_ok(vol, v))
    return fsmap_fail(vol, EINVAL, "FAT entry of cluster %u is 0x%x, which is neither a "
                      "cluster nor the end of a chain", c, v);
  *next = v;
  return 0;
}

int dir_iter_start(struct dir_iter *it, struct fsmap_volume *vol, const struct fsmap_file *dir)
{
  memset(it, 0, sizeof *it);
  it->vol = vol;
  if (dir->first_cluster == 0) {
    /* The FAT12/16 root region; on FAT32/exFAT an empty directory. */
    it->fixed = true;
    if (vol->kind == FSMAP_FAT12 || vol->kind == FSMAP_FAT16) {
      it->offset = vol->root_offset;
      it->left_total = vol->root_bytes;
    }
    it->left_in_run = (uint64_t)-1;
    return 0;
  }
  if (!fsmap_cluster_ok(vol, dir->first_cluster))
    return fsmap_fail(vol, EINVAL, "directory starts at cluster %u, outside the volume's "
                      "%u clusters", dir->first_cluster, vol->clusters);
  it->cluster = dir->first_cluster;
  it->offset = fsmap_cluster_offset(vol, it->cluster);
  it->left_in_run = vol->cluster_size;
  if (dir->contiguous) {
    uint64_t room = (uint64_t)(vol->clusters - (dir->first_cluster - 2)) * vol->cluster_size;
    if (dir->size > room)
      return fsmap_fail(vol, EINVAL, "directory of %llu bytes at cluster %u runs past the "
                        "end of the cluster heap", (unsigned long long)dir->size,
                        dir->first_cluster);
    it->contiguous = true;
    it->left_total = dir->size - dir->size % 32;
  }
  return 0;
}

int dir_iter_next(struct dir_iter *it, uint8_t entry[32])
{
  struct fsmap_volume *vol = it->vol;
  if (it->buf_pos >= it->buf_len) {
    bool bounded = it->fixed || it->contiguous;
    if (bounded && it->left_total == 0)
      return 0;
    if (it->left_in_run == 0) {
      if (it->contiguous) {
        it->cluster++;
      } else {
        uint32_t next;
        int r = chain_next(vol, it->cluster, &next);
        if (r < 0)
          return r;
        if (next == 0)
          return 0;
        if (++it->steps > vol->clusters)
          return fsmap_fail(vol, EINVAL, "directory cluster chain loops");
        it->cluster = next;
      }
      it->offset = fsmap_cluster_offset(vol, it->cluster);
      it->left_in_run = vol->cluster_size;
    }
    uint64_t n = sizeof it->buf;
    if (n > it->left_in_run)
      n = it->left_in_run;
    if (bounded && n > it->left_total)
      n = it->left_total;
    int r = fsmap_read(vol, it->offset, it->buf, (size_t)n);
    if (r < 0)
      return r;
    it->offset += n;
    it->left_in_run -= n;
    if (bounded)
      it->left_total -= n;
    it->buf_len = (uint32_t)n;
    it->buf_pos = 0;
  }
  memcpy(entry, it->buf + it->buf_pos, 32);
  it->buf_pos += 32;
  return 1;
}

static uint16_t fold(uint16_t c)
{
  return c >= 'a' && c <= 'z' ? (uint16_t)(c - 'a' + 'A') : c;
}

bool fsmap_name_equal(const uint16_t *a, size_t alen, const uint16_t *b, size_t blen)
{
  if (alen != blen)
    return false;
  for (size_t i = 0; i < alen; i++)
    if (fold(a[i]) != fold(b[i]))
      return false;
  return true;
}

int fsmap_lookup(struct fsmap_volume *vol, const char *path, struct fsmap_file *out)
{
  struct fsmap_file cur;
  memset(&cur, 0, sizeof cur);
  cur.directory = true;
  if (vol->kind == FSMAP_FAT32 || vol->kind == FSMAP_EXFAT)
    cur.first_cluster = vol->root_cluster;
  cur.id = vol->root_id;

  char done[512] = "";   /* the path walked so far, for messages */
  const char *p = path;
  while (*p) {
    while (*p == '/' || *p == '\\')
      p++;
    if (!*p)
      break;
    size_t n = 0;
    while (p[n] && p[n] != '/' && p[n] != '\\')
      n++;
    char comp[FSMAP_NAME_MAX * 4 + 1];
    if (n >= sizeof comp)
      return fsmap_fail(vol, ENOENT, "name too long in %s", path);
    memcpy(comp, p, n);
    comp[n] = '\0';
    p += n;

    uint8_t wire[FSMAP_NAME_MAX * 2];
    int bytes = utf8_to_utf16(comp, wire, sizeof wire, false);
    if (bytes <= 0)
      return fsmap_fail(vol, ENOENT, "cannot use the name \"%s\" (not UTF-8, or longer than "
                        "%d characters)", comp, FSMAP_NAME_MAX);
    uint16_t name[FSMAP_NAME_MAX];
    size_t len = (size_t)bytes / 2;
    for (size_t i = 0; i < len; i++)
      name[i] = get_le16(wire + 2 * i);

    if (!cur.directory)
      return fsmap_fail(vol, ENOENT, "%s is a file, not a directory", done);
    struct fsmap_file next;
    int r = vol->kind == FSMAP_EXFAT ? fsmap_exfat_find(vol, &cur, name, len, &next)
            : vol->kind == FSMAP_NTFS ? fsmap_ntfs_find(vol, &cur, name, len, &next)
            : is_ext(vol->kind)       ? fsmap_ext_find(vol, &cur, comp, n, &next)
                                      : fsmap_fat_find(vol, &cur, name, len, &next);
    size_t used = strlen(done);
    vhd_snprintf(done + used, sizeof done - used, "\\%s", comp);
    if (r == 0)
      return fsmap_fail(vol, ENOENT, "%s not found", done);
    if (r < 0)
      return r;
    cur = next;
  }
  *out = cur;
  return 0;
}

int fsmap_extents_add(struct fsmap_volume *vol, struct fsmap_extents *e, uint64_t vol_off,
                      uint64_t len, enum fsmap_extent_state state)
{
  if (state == FSMAP_HOLE)
    vol_off = 0;
  if (e->count) {
    struct fsmap_extent *last = &e->v[e->count - 1];
    if (last->state == state &&
        (state == FSMAP_HOLE || last->volume_offset + last->length == vol_off)) {
      last->length += len;
      e->mapped += len;
      return 0;
    }
  }
  if (e->count == e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 16;
    struct fsmap_extent *v = vhd_realloc(e->v, cap * sizeof *v);
    if (!v)
      return fsmap_fail(vol, ENOMEM, "out of memory for %zu extents", cap);
    e->v = v;
    e->cap = cap;
  }
  e->v[e->count].file_offset = e->mapped;
  e->v[e->count].volume_offset = vol_off;
  e->v[e->count].length = len;
  e->v[e->count].state = state;
  e->count++;
  e->mapped += len;
  return 0;
}

/* Sorts a copy by volume offset and compares neighbours. */
int fsmap_extents_check_overlap(struct fsmap_volume *vol, const struct fsmap_extents *e)
{
  if (e->count < 2)
    return 0;
  struct fsmap_extent *s = vhd_malloc(e->count * sizeof *s);
  if (!s)
    return fsmap_fail(vol, ENOMEM, "out of memory for %zu extents", e->count);
  size_t n = 0;
  for (size_t i = 0; i < e->count; i++)
    if (e->v[i].state != FSMAP_HOLE)
      s[n++] = e->v[i];
  for (size_t gap = n / 2; gap; gap /= 2)   /* Shell sort: no recursion, no libc */
    for (size_t i = gap; i < n; i++)
      for (size_t j = i; j >= gap && s[j - gap].volume_offset > s[j].volume_offset; j -= gap) {
        struct fsmap_extent t = s[j];
        s[j] = s[j - gap];
        s[j - gap] = t;
      }
  int r = 0;
  for (size_t i = 1; i < n && r == 0; i++)
    if (s[i - 1].volume_offset + s[i - 1].length > s[i].volume_offset)
      r = fsmap_fail(vol, EINVAL, "the file's extents use the bytes at volume offset %llu "
                     "twice", (unsigned long long)s[i].volume_offset);
  vhd_free(s);
  return r;
}

int fsmap_map(struct fsmap_volume *vol, const struct fsmap_file *f, struct fsmap_extents *out)
{
  out->count = 0;
  out->mapped = 0;
  if (is_ext(vol->kind))
    return fsmap_ext_map(vol, f, out);
  if (vol->kind == FSMAP_NTFS)
    return fsmap_ntfs_map(vol, f, out);
  if (f->size == 0)
    return 0;
  uint64_t cs = vol->cluster_size;
  uint64_t need = (f->size + cs - 1) / cs;
  if (!fsmap_cluster_ok(vol, f->first_cluster) || need > vol->clusters)
    return fsmap_fail(vol, EINVAL, "file of %llu bytes starting at cluster %u does not fit "
                      "the volume's %u clusters", (unsigned long long)f->size,
                      f->first_cluster, vol->clusters);
  if (f->contiguous) {
    if (need > (uint64_t)vol->clusters - (f->first_cluster - 2))
      return fsmap_fail(vol, EINVAL, "contiguous file of %llu bytes at cluster %u runs past "
                        "the end of the cluster heap", (unsigned long long)f->size,
                        f->first_cluster);
    return fsmap_extents_add(vol, out, fsmap_cluster_offset(vol, f->first_cluster), need * cs,
                             FSMAP_DATA);
  }
  uint32_t c = f->first_cluster;
  for (uint64_t i = 0; i < need; i++) {
    int r = fsmap_extents_add(vol, out, fsmap_cluster_offset(vol, c), cs, FSMAP_DATA);
    if (r < 0)
      return r;
    if (i + 1 == need)
      break;
    uint32_t next;
    r = chain_next(vol, c, &next);
    if (r < 0)
      return r;
    if (next == 0)
      return fsmap_fail(vol, EINVAL, "the cluster chain ends after %llu clusters but the "
                        "file size (%llu bytes) needs %llu", (unsigned long long)(i + 1),
                        (unsigned long long)f->size, (unsigned long long)need);
    c = next;
  }
  return fsmap_extents_check_overlap(vol, out);
}

void fsmap_extents_free(struct fsmap_extents *e)
{
  vhd_free(e->v);
  memset(e, 0, sizeof *e);
}

ptrdiff_t fsmap_extents_find(const struct fsmap_extents *e, uint64_t off)
{
  if (off >= e->mapped || e->count == 0)
    return -1;
  size_t lo = 0, hi = e->count;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (e->v[mid].file_offset <= off)
      lo = mid;
    else
      hi = mid;
  }
  return (ptrdiff_t)lo;
}
