/* SPDX-License-Identifier: BSD-3-Clause */
/* NTFS MFT records, attribute records, attribute lists and run lists
 * (mapping pairs). Every length, offset and cluster number comes from a
 * volume a stranger may have prepared: each is checked against the record
 * or the volume before it is used. */
#include "fsmap_ntfs_priv.h"
#include "util/endian.h"

/* Fixups protect each 512-byte stride, whatever the sector size. */
#define NTFS_FIXUP_STRIDE 512u
/* No file needs a bigger attribute list (each entry names a piece of
 * ~hundreds of runs); the bound keeps a hostile size from costing memory. */
#define NTFS_LIST_MAX (1u << 20)

int ntfs_fixup(struct fsmap_volume *vol, uint8_t *buf, uint32_t size, const char *magic,
               const char *what, uint64_t number)
{
  if (memcmp(buf, magic, 4) != 0)
    return fsmap_fail(vol, EINVAL, "%s %llu: magic is 0x%08x, not \"%s\"", what,
                      (unsigned long long)number, get_le32(buf), magic);
  uint32_t usa = get_le16(buf + 4), count = get_le16(buf + 6);
  if (count != size / NTFS_FIXUP_STRIDE + 1 || usa < 8 || usa % 2 ||
      usa + 2 * count > NTFS_FIXUP_STRIDE - 2)
    return fsmap_fail(vol, EINVAL, "%s %llu: update sequence array (offset %u, %u entries) "
                      "does not fit a %u-byte record", what, (unsigned long long)number, usa,
                      count, size);
  for (uint32_t i = 1; i < count; i++) {
    uint8_t *end = buf + i * NTFS_FIXUP_STRIDE - 2;
    if (end[0] != buf[usa] || end[1] != buf[usa + 1])
      return fsmap_fail(vol, EINVAL, "%s %llu: sector %u does not end with the update "
                        "sequence number (a torn write)", what, (unsigned long long)number,
                        i - 1);
    end[0] = buf[usa + 2 * i];
    end[1] = buf[usa + 2 * i + 1];
  }
  return 0;
}

static int ntfs_record_check(struct fsmap_volume *vol, const uint8_t *rec, uint64_t n)
{
  const struct ntfs_state *st = vol->priv;
  unsigned long long nn = (unsigned long long)n;
  uint16_t usa = get_le16(rec + 4), first = get_le16(rec + 0x14), flags = get_le16(rec + 0x16);
  uint32_t used = get_le32(rec + 0x18), alloc = get_le32(rec + 0x1c);
  if (!(flags & NTFS_RECORD_IN_USE))
    return fsmap_fail(vol, EINVAL, "MFT record %llu is not in use", nn);
  if (alloc != st->record_size || used > alloc)
    return fsmap_fail(vol, EINVAL, "MFT record %llu: used size %u / allocated size %u do not "
                      "fit the volume's %u-byte records", nn, used, alloc, st->record_size);
  if (first < 0x18 || first % 8 || (uint32_t)first + 8 > used)
    return fsmap_fail(vol, EINVAL, "MFT record %llu: first attribute offset %u is outside "
                      "the record's used %u bytes", nn, first, used);
  /* NTFS 3.1 records (USA at 0x30) carry their own number. */
  if (usa >= 0x30 && get_le32(rec + 0x2c) != (uint32_t)n)
    return fsmap_fail(vol, EINVAL, "MFT record %llu says it is record %u", nn,
                      get_le32(rec + 0x2c));
  return 0;
}

int ntfs_read_record(struct fsmap_volume *vol, uint64_t n, uint8_t *buf)
{
  const struct ntfs_state *st = vol->priv;
  if (n >= st->mft_records)
    return fsmap_fail(vol, EINVAL, "MFT record %llu is past the end of the $MFT (%llu "
                      "records)", (unsigned long long)n, (unsigned long long)st->mft_records);
  int r = ntfs_stream_read(vol, &st->mft, n * st->record_size, buf, st->record_size, "$MFT");
  if (r == 0)
    r = ntfs_fixup(vol, buf, st->record_size, "FILE", "MFT record", n);
  if (r == 0)
    r = ntfs_record_check(vol, buf, n);
  return r;
}

int ntfs_attr_next(struct fsmap_volume *vol, const uint8_t *rec, uint64_t n, uint32_t *pos,
                   struct ntfs_attr *a)
{
  unsigned long long nn = (unsigned long long)n;
  uint32_t used = get_le32(rec + 0x18);
  if (*pos == 0)
    *pos = get_le16(rec + 0x14);
  if (*pos > used || used - *pos < 4)
    return fsmap_fail(vol, EINVAL, "MFT record %llu: the attributes run past the record's "
                      "used size (%u bytes) without an end marker", nn, used);
  const uint8_t *p = rec + *pos;
  uint32_t type = get_le32(p);
  if (type == NTFS_AT_END)
    return 0;
  uint32_t len = used - *pos < 8 ? 0 : get_le32(p + 4);
  if (len < 0x18 || len % 8 || len > used - *pos)
    return fsmap_fail(vol, EINVAL, "MFT record %llu: attribute 0x%x at offset %u has length "
                      "%u, which overruns the record's used size (%u bytes)", nn, type, *pos,
                      len, used);
  memset(a, 0, sizeof *a);
  a->type = type;
  a->length = len;
  a->record = n;
  a->nonresident = p[8] != 0;
  a->name_len = p[9];
  uint16_t name_off = get_le16(p + 10);
  a->flags = get_le16(p + 12);
  a->instance = get_le16(p + 14);
  if (p[8] > 1 || (a->name_len && (uint32_t)name_off + 2u * a->name_len > len))
    return fsmap_fail(vol, EINVAL, "MFT record %llu: attribute 0x%x at offset %u has a bad "
                      "form byte or a name outside it", nn, type, *pos);
  a->name = p + name_off;
  if (!a->nonresident) {
    a->value_len = get_le32(p + 0x10);
    uint16_t voff = get_le16(p + 0x14);
    if (voff > len || a->value_len > len - voff)
      return fsmap_fail(vol, EINVAL, "MFT record %llu: the value of resident attribute 0x%x "
                        "(%u bytes at %u) overruns the attribute's %u bytes", nn, type,
                        a->value_len, voff, len);
    a->value = p + voff;
  } else {
    uint16_t roff = len >= 0x40 ? get_le16(p + 0x20) : 0;
    if (len < 0x40 || roff < 0x40 || roff >= len)
      return fsmap_fail(vol, EINVAL, "MFT record %llu: non-resident attribute 0x%x of %u "
                        "bytes has its run list at offset %u", nn, type, len, roff);
    a->lowest_vcn = get_le64(p + 0x10);
    a->end_vcn = get_le64(p + 0x18) + 1;   /* an empty attribute's highest VCN is -1 */
    if (a->end_vcn > (1ull << 62) || a->lowest_vcn > a->end_vcn)
      return fsmap_fail(vol, EINVAL, "MFT record %llu: attribute 0x%x claims VCNs %llu to "
                        "%lld", nn, type, (unsigned long long)a->lowest_vcn,
                        (long long)get_le64(p + 0x18));
    a->runs = p + roff;
    a->runs_len = len - roff;
    a->alloc_size = get_le64(p + 0x28);
    a->data_size = get_le64(p + 0x30);
    a->init_size = get_le64(p + 0x38);
  }
  *pos += len;
  return 1;
}

static int ntfs_runs_push(struct fsmap_volume *vol, struct ntfs_runlist *rl, uint64_t vcn,
                          uint64_t lcn, uint64_t count, bool hole)
{
  if (hole && rl->count && rl->v[rl->count - 1].hole) {   /* keeps the list bounded */
    rl->v[rl->count - 1].count += count;
    return 0;
  }
  if (rl->count == rl->cap) {
    size_t cap = rl->cap ? rl->cap * 2 : 16;
    struct ntfs_run *v = vhd_realloc(rl->v, cap * sizeof *v);
    if (!v)
      return fsmap_fail(vol, ENOMEM, "out of memory for %zu runs", cap);
    rl->v = v;
    rl->cap = cap;
  }
  rl->v[rl->count++] = (struct ntfs_run){ vcn, lcn, count, hole };
  return 0;
}

/* n bytes little-endian, unsigned or sign-extended from the top byte. */
static uint64_t ntfs_le_bytes(const uint8_t *p, unsigned n, bool is_signed)
{
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  if (is_signed && n && n < 8 && (p[n - 1] & 0x80))
    v |= ~0ull << (8 * n);
  return v;
}

int ntfs_runs_decode(struct fsmap_volume *vol, const struct ntfs_attr *a,
                     struct ntfs_runlist *rl)
{
  const struct ntfs_state *st = vol->priv;
  unsigned long long nn = (unsigned long long)a->record;
  if (a->lowest_vcn != rl->next_vcn)
    return fsmap_fail(vol, EINVAL, "MFT record %llu: a piece of attribute 0x%x starts at VCN "
                      "%llu, expected %llu (pieces repeated, missing or out of order)", nn,
                      a->type, (unsigned long long)a->lowest_vcn,
                      (unsigned long long)rl->next_vcn);
  uint64_t vcn = a->lowest_vcn;
  int64_t lcn = 0;   /* each piece starts from LCN 0 */
  uint32_t at = 0;
  for (;;) {
    if (at >= a->runs_len)
      return fsmap_fail(vol, EINVAL, "MFT record %llu: the run list of attribute 0x%x has "
                        "no end marker", nn, a->type);
    uint8_t h = a->runs[at];
    if (h == 0)
      break;
    unsigned lsize = h & 15, osize = h >> 4;
    if (lsize == 0 || lsize > 8 || osize > 8 || 1 + lsize + osize > a->runs_len - at)
      return fsmap_fail(vol, EINVAL, "MFT record %llu: bad run header 0x%02x at byte %u of "
                        "the run list of attribute 0x%x", nn, h, at, a->type);
    uint64_t count = ntfs_le_bytes(a->runs + at + 1, lsize, false);
    if (count == 0 || count > (1ull << 62) - vcn)
      return fsmap_fail(vol, EINVAL, "MFT record %llu: run at VCN %llu of attribute 0x%x has "
                        "length %llu", nn, (unsigned long long)vcn, a->type,
                        (unsigned long long)count);
    int r;
    if (osize) {
      int64_t delta = (int64_t)ntfs_le_bytes(a->runs + at + 1 + lsize, osize, true);
      int64_t limit = (int64_t)st->clusters;
      int64_t next = delta > limit || delta < -limit ? -1 : lcn + delta;
      if (next < 0 || (uint64_t)next >= st->clusters || count > st->clusters - (uint64_t)next)
        return fsmap_fail(vol, EINVAL, "MFT record %llu: run at VCN %llu of attribute 0x%x "
                          "(%llu clusters, LCN %lld moved by %lld) lies outside the volume's %llu "
                          "clusters", nn, (unsigned long long)vcn, a->type,
                          (unsigned long long)count, (long long)lcn, (long long)delta,
                          (unsigned long long)st->clusters);
      lcn = next;
      rl->data_clusters += count;
      if (rl->data_clusters > st->clusters)
        return fsmap_fail(vol, EINVAL, "MFT record %llu: attribute 0x%x has more clusters "
                          "than the volume", nn, a->type);
      r = ntfs_runs_push(vol, rl, vcn, (uint64_t)lcn, count, false);
    } else {
      r = ntfs_runs_push(vol, rl, vcn, 0, count, true);   /* a hole keeps the LCN */
    }
    if (r < 0)
      return r;
    vcn += count;
    at += 1 + lsize + osize;
  }
  if (vcn != a->end_vcn)
    return fsmap_fail(vol, EINVAL, "MFT record %llu: the run list of attribute 0x%x covers "
                      "VCNs %llu to %llu but its header says up to %llu", nn, a->type,
                      (unsigned long long)a->lowest_vcn, (unsigned long long)vcn,
                      (unsigned long long)a->end_vcn);
  rl->next_vcn = vcn;
  return 0;
}

void ntfs_runs_free(struct ntfs_runlist *rl)
{
  vhd_free(rl->v);
  memset(rl, 0, sizeof *rl);
}

int ntfs_stream_read(struct fsmap_volume *vol, const struct ntfs_runlist *rl, uint64_t off,
                     void *buf, size_t len, const char *what)
{
  uint64_t cs = vol->cluster_size;
  uint8_t *out = buf;
  while (len) {
    uint64_t vcn = off / cs;
    if (vcn >= rl->next_vcn)
      return fsmap_fail(vol, EINVAL, "%s: byte %llu is past the end of its run list", what,
                        (unsigned long long)off);
    size_t lo = 0, hi = rl->count;   /* the last run starting at or before vcn */
    while (hi - lo > 1) {
      size_t mid = lo + (hi - lo) / 2;
      if (rl->v[mid].vcn <= vcn)
        lo = mid;
      else
        hi = mid;
    }
    const struct ntfs_run *run = &rl->v[lo];
    if (run->hole)
      return fsmap_fail(vol, EINVAL, "%s: byte %llu lies in a sparse run", what,
                        (unsigned long long)off);
    uint64_t in_run = (run->vcn + run->count - vcn) * cs - off % cs;
    size_t n = in_run < len ? (size_t)in_run : len;
    int r = fsmap_read(vol, (run->lcn + (vcn - run->vcn)) * cs + off % cs, out, n);
    if (r < 0)
      return r;
    out += n;
    off += n;
    len -= n;
  }
  return 0;
}

static bool ntfs_name_is(const uint8_t *utf16le, uint8_t len, const uint16_t *name,
                         uint8_t name_len)
{
  if (len != name_len)
    return false;
  for (uint8_t i = 0; i < len; i++)
    if (get_le16(utf16le + 2 * i) != name[i])
      return false;
  return true;
}

/* The attribute of type/name with the given instance in record rec. */
static int ntfs_find_instance(struct fsmap_volume *vol, const uint8_t *rec, uint64_t n,
                              uint32_t type, const uint16_t *name, uint8_t name_len,
                              uint16_t instance, struct ntfs_attr *a)
{
  uint32_t pos = 0;
  int r;
  while ((r = ntfs_attr_next(vol, rec, n, &pos, a)) == 1)
    if (a->type == type && a->instance == instance &&
        ntfs_name_is(a->name, a->name_len, name, name_len))
      return 1;
  return r;
}

/* Walks the $ATTRIBUTE_LIST value of base record n. Extension records'
 * own lists are never followed, so lists cannot loop; repeated entries
 * are caught by the callers (pieces must follow each other). */
static int ntfs_walk_list(struct fsmap_volume *vol, uint64_t n, const uint8_t *base,
                          const uint8_t *list, uint32_t list_len, uint32_t type,
                          const uint16_t *name, uint8_t name_len, ntfs_attr_fn fn, void *arg)
{
  const struct ntfs_state *st = vol->priv;
  unsigned long long nn = (unsigned long long)n;
  uint8_t *ext = NULL;
  uint64_t ext_n = 0;
  int calls = 0, r = 0;
  for (uint32_t at = 0; at < list_len && r == 0;) {
    const uint8_t *e = list + at;
    uint32_t elen = list_len - at < 0x1a ? 0 : get_le16(e + 4);
    if (elen < 0x1a || elen > list_len - at || (e[6] && e[7] + 2u * e[6] > elen)) {
      r = fsmap_fail(vol, EINVAL, "MFT record %llu: attribute list entry at byte %u (length "
                     "%u) overruns the list's %u bytes", nn, at, elen, list_len);
      break;
    }
    at += elen;
    if (get_le32(e) != type || !ntfs_name_is(e + e[7], e[6], name, name_len))
      continue;
    uint64_t ref = get_le64(e + 0x10), rn = NTFS_REF_RECORD(ref);
    const uint8_t *rec = base;
    if (rn != n) {
      if (!ext && !(ext = vhd_malloc(st->record_size))) {
        r = fsmap_fail(vol, ENOMEM, "out of memory");
        break;
      }
      if (ext_n != rn) {
        ext_n = 0;
        if ((r = ntfs_read_record(vol, rn, ext)) < 0)
          break;
        uint64_t owner = NTFS_REF_RECORD(get_le64(ext + 0x20));
        if (owner != n || (NTFS_REF_SEQUENCE(ref) &&
                           NTFS_REF_SEQUENCE(ref) != get_le16(ext + 0x10))) {
          r = fsmap_fail(vol, EINVAL, "MFT record %llu: its attribute list names record %llu, "
                         "which belongs to record %llu or is stale", nn,
                         (unsigned long long)rn, (unsigned long long)owner);
          break;
        }
        ext_n = rn;
      }
      rec = ext;
    }
    struct ntfs_attr a;
    r = ntfs_find_instance(vol, rec, rn, type, name, name_len, get_le16(e + 0x18), &a);
    if (r == 0)
      r = fsmap_fail(vol, EINVAL, "MFT record %llu: its attribute list names attribute 0x%x "
                     "instance %u in record %llu, which does not hold it", nn, type,
                     get_le16(e + 0x18), (unsigned long long)rn);
    if (r < 0)
      break;
    if (a.nonresident && a.lowest_vcn != get_le64(e + 8))
      r = fsmap_fail(vol, EINVAL, "MFT record %llu: attribute list and record %llu disagree "
                     "on the first VCN of attribute 0x%x", nn, (unsigned long long)rn, type);
    else if ((r = fn(vol, &a, arg)) == 0)
      calls++;
  }
  vhd_free(ext);
  return r < 0 ? r : calls;
}

/* The bytes of a non-resident $ATTRIBUTE_LIST (a single piece). */
static int ntfs_load_list(struct fsmap_volume *vol, const struct ntfs_attr *a, uint8_t **out,
                          uint32_t *len)
{
  unsigned long long nn = (unsigned long long)a->record;
  if (a->lowest_vcn != 0 || a->data_size > NTFS_LIST_MAX || a->init_size != a->data_size)
    return fsmap_fail(vol, EINVAL, "MFT record %llu: non-resident attribute list of %llu "
                      "bytes (first VCN %llu) is not one plausible piece", nn,
                      (unsigned long long)a->data_size, (unsigned long long)a->lowest_vcn);
  struct ntfs_runlist rl;
  memset(&rl, 0, sizeof rl);
  int r = ntfs_runs_decode(vol, a, &rl);
  uint8_t *buf = NULL;
  if (r == 0 && !(buf = vhd_malloc(a->data_size ? (size_t)a->data_size : 1)))
    r = fsmap_fail(vol, ENOMEM, "out of memory");
  if (r == 0)
    r = ntfs_stream_read(vol, &rl, 0, buf, (size_t)a->data_size, "attribute list");
  ntfs_runs_free(&rl);
  if (r < 0) {
    vhd_free(buf);
    return r;
  }
  *out = buf;
  *len = (uint32_t)a->data_size;
  return 0;
}

int ntfs_for_each_attr(struct fsmap_volume *vol, uint64_t n, uint32_t type,
                       const uint16_t *name, uint8_t name_len, ntfs_attr_fn fn, void *arg)
{
  const struct ntfs_state *st = vol->priv;
  uint8_t *base = vhd_malloc(st->record_size);
  if (!base)
    return fsmap_fail(vol, ENOMEM, "out of memory");
  int r = ntfs_read_record(vol, n, base);
  if (r == 0 && get_le64(base + 0x20) != 0)
    r = fsmap_fail(vol, EINVAL, "MFT record %llu is an extension of record %llu, not a file",
                   (unsigned long long)n,
                   (unsigned long long)NTFS_REF_RECORD(get_le64(base + 0x20)));
  struct ntfs_attr a, list;
  bool has_list = false;
  uint32_t pos = 0;
  while (r == 0 && (r = ntfs_attr_next(vol, base, n, &pos, &a)) == 1) {
    r = 0;
    if (a.type == NTFS_AT_ATTRIBUTE_LIST && !has_list) {
      list = a;
      has_list = true;
    }
  }
  int calls = 0;
  if (r == 0 && has_list) {
    uint8_t *owned = NULL;
    const uint8_t *bytes = list.value;
    uint32_t len = list.value_len;
    if (list.nonresident)
      r = ntfs_load_list(vol, &list, &owned, &len);
    if (r == 0)
      bytes = owned ? owned : bytes;
    if (r == 0)
      r = ntfs_walk_list(vol, n, base, bytes, len, type, name, name_len, fn, arg);
    vhd_free(owned);
    calls = r;
  } else if (r == 0) {
    pos = 0;
    while ((r = ntfs_attr_next(vol, base, n, &pos, &a)) == 1) {
      if (a.type != type || !ntfs_name_is(a.name, a.name_len, name, name_len))
        continue;
      if ((r = fn(vol, &a, arg)) < 0)
        break;
      calls++;
    }
  }
  vhd_free(base);
  return r < 0 ? r : calls;
}

static int ntfs_stream_piece(struct fsmap_volume *vol, const struct ntfs_attr *a, void *arg)
{
  struct ntfs_stream *s = arg;
  if (s->found && (s->resident || !a->nonresident))
    return fsmap_fail(vol, EINVAL, "MFT record %llu: attribute 0x%x is stored twice, or "
                      "both resident and not", (unsigned long long)a->record, a->type);
  s->flags |= a->flags;
  if (!s->found) {
    s->found = true;
    s->resident = !a->nonresident;
    if (s->resident) {
      s->alloc_size = s->data_size = s->init_size = a->value_len;
      s->value = vhd_malloc(a->value_len ? a->value_len : 1);
      if (!s->value)
        return fsmap_fail(vol, ENOMEM, "out of memory");
      memcpy(s->value, a->value, a->value_len);
      return 0;
    }
    s->alloc_size = a->alloc_size;
    s->data_size = a->data_size;
    s->init_size = a->init_size;
  }
  return ntfs_runs_decode(vol, a, &s->runs);
}

int ntfs_stream_load(struct fsmap_volume *vol, uint64_t n, uint32_t type,
                     const uint16_t *name, uint8_t name_len, struct ntfs_stream *s)
{
  memset(s, 0, sizeof *s);
  int r = ntfs_for_each_attr(vol, n, type, name, name_len, ntfs_stream_piece, s);
  if (r < 0)
    return r;
  if (s->found && (s->init_size > s->data_size || s->data_size > s->alloc_size))
    return fsmap_fail(vol, EINVAL, "MFT record %llu: attribute 0x%x has initialized size "
                      "%llu, data size %llu, allocated size %llu (each must be at most the "
                      "next)", (unsigned long long)n, type, (unsigned long long)s->init_size,
                      (unsigned long long)s->data_size, (unsigned long long)s->alloc_size);
  return 0;
}

void ntfs_stream_free(struct ntfs_stream *s)
{
  ntfs_runs_free(&s->runs);
  vhd_free(s->value);
  memset(s, 0, sizeof *s);
}

static int ntfs_count_cb(struct fsmap_volume *vol, const struct ntfs_attr *a, void *arg)
{
  (void)vol, (void)a, (void)arg;
  return 0;
}

int ntfs_refuse_reparse(struct fsmap_volume *vol, uint64_t n)
{
  int r = ntfs_for_each_attr(vol, n, NTFS_AT_REPARSE_POINT, NULL, 0, ntfs_count_cb, NULL);
  if (r > 0)
    return fsmap_fail(vol, ENOTSUP, "MFT record %llu is a reparse point (a symbolic link, a "
                      "junction, or a file Windows compressed with WOF), which the loader "
                      "does not follow", (unsigned long long)n);
  return r;
}
