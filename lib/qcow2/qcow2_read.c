/* SPDX-License-Identifier: BSD-3-Clause */
/* qcow2 reads: guest offset -> L1 -> L2 -> cluster, and the inflation of
 * compressed clusters. Every pointer is checked against the file where it
 * is used; nothing is cached, so parallel readers share no state. */
#include "qcow2/qcow2.h"
#include "codec/inflate.h"
#include "error.h"
#include "util/arith.h"
#include "util/claims.h"
#include "util/endian.h"

#define L2_COMPRESSED (1ull << 62)
#define L2_ZERO 1ull
#define L2_RESERVED 0x3F000000000001FEull   /* standard entries: bits 1-8, 56-61 */
#define HOST_MASK 0x00FFFFFFFFFFFE00ull
/* L2 entries read per lookup: bounds the stack, not the run. */
#define L2_BATCH 256u

/* One L2 entry, classified; len is left to the caller. */
static int classify(struct vhd_image *img, const struct qcow2 *q, uint64_t e, uint64_t guest,
                    struct qcow2_run *run)
{
  if (e & L2_COMPRESSED) {
    uint64_t host = e & ((1ull << q->csize_shift) - 1);
    uint64_t sectors = ((e >> q->csize_shift) & q->csize_mask) + 1;
    if (host >= q->file_size)
      return vhd_error(EIO, "%s: qcow2 compressed cluster for guest offset %llu lies at %llu, "
                       "past the end of the file", img->path, (unsigned long long)guest,
                       (unsigned long long)host);
    run->kind = QCOW2_COMPRESSED;
    run->host = host;
    run->csize = min_u64(sectors * 512 - host % 512, q->file_size - host);
    return 0;
  }
  if (e & L2_RESERVED)
    return vhd_error(EIO, "%s: qcow2 L2 entry for guest offset %llu (0x%016llx) has reserved "
                     "bits set", img->path, (unsigned long long)guest, (unsigned long long)e);
  if (e & L2_ZERO) {
    if (q->version < 3)
      return vhd_error(EIO, "%s: qcow2 version 2 L2 entry for guest offset %llu has the zero "
                       "flag, which only version 3 has", img->path, (unsigned long long)guest);
    run->kind = QCOW2_ZERO;
    return 0;
  }
  uint64_t host = e & HOST_MASK;
  if (host == 0) {
    run->kind = QCOW2_ABSENT;
    return 0;
  }
  if (host % q->cluster_size || host >= q->file_size)
    return vhd_error(EIO, "%s: qcow2 data cluster for guest offset %llu at %llu is unaligned "
                     "or past the end of the file", img->path, (unsigned long long)guest,
                     (unsigned long long)host);
  run->kind = QCOW2_DATA;
  run->host = host;
  return 0;
}

int qcow2_lookup(struct vhd_image *img, uint64_t off, uint64_t len, struct qcow2_run *run)
{
  const struct qcow2 *q = img->priv;
  uint64_t cs = q->cluster_size, cluster = off >> q->cluster_bits;
  uint64_t l1_index = cluster / q->l2_entries, l2_index = cluster % q->l2_entries;
  uint64_t in_cluster = off & (cs - 1);
  /* Clusters the request touches in this L2 table, at most a batch. */
  uint64_t last = (off + len - 1) >> q->cluster_bits;
  uint64_t count = min_u64(min_u64(last - cluster + 1, q->l2_entries - l2_index), L2_BATCH);
  uint64_t l2 = l1_index < q->l1_count ? q->l1[l1_index] : 0;

  memset(run, 0, sizeof *run);
  if (l2 == 0) {   /* the whole table's range is absent */
    run->kind = QCOW2_ABSENT;
    run->len = min_u64(len, (q->l2_entries - l2_index) * cs - in_cluster);
    return 0;
  }
  uint8_t raw[L2_BATCH * 8];
  int r = io_pread(img->io, raw, (size_t)count * 8, l2 + l2_index * 8);
  if (r < 0)
    return r;
  if ((r = classify(img, q, get_be64(raw), off, run)) < 0)
    return r;
  run->len = cs - in_cluster;
  if (run->kind == QCOW2_DATA)
    run->host += in_cluster;
  /* Extend over the next clusters of the same kind (data only when the
   * file holds them contiguously); a compressed cluster stands alone. */
  for (uint64_t i = 1; i < count && run->kind != QCOW2_COMPRESSED; i++) {
    struct qcow2_run next = { 0 };
    uint64_t guest = (cluster + i) << q->cluster_bits;
    if ((r = classify(img, q, get_be64(raw + i * 8), guest, &next)) < 0)
      return r;
    if (next.kind != run->kind ||
        (next.kind == QCOW2_DATA && next.host != run->host + run->len))
      break;
    run->len += cs;
  }
  run->len = min_u64(run->len, len);
  return 0;
}

/* The whole cluster at run (compressed) into cluster (cluster_size bytes);
 * scratch holds the stream (2 * cluster_size bytes, its largest size). */
static int inflate_cluster(struct vhd_image *img, const struct qcow2_run *run, uint64_t guest,
                           uint8_t *cluster, uint8_t *scratch)
{
  const struct qcow2 *q = img->priv;
  int r = io_pread(img->io, scratch, (size_t)run->csize, run->host);
  if (r < 0)
    return r;
  size_t got;
  r = inflate_buffer(INFLATE_RAW, scratch, (size_t)run->csize, cluster,
                     (size_t)q->cluster_size, &got);
  if (r == -ENOMEM)
    return vhd_error(ENOMEM, "%s: out of memory inflating a cluster", img->path);
  if (r < 0 || got != q->cluster_size)
    return vhd_error(EIO, "%s: qcow2 compressed cluster for guest offset %llu (at %llu) does "
                     "not inflate to one cluster", img->path,
                     (unsigned long long)(guest & ~(q->cluster_size - 1)),
                     (unsigned long long)run->host);
  return 0;
}

int qcow2_read(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
  const struct qcow2 *q = img->priv;
  uint8_t *out = buf, *cluster = NULL;
  int r = 0;
  while (len && r == 0) {
    struct qcow2_run run;
    if ((r = qcow2_lookup(img, off, len, &run)) < 0)
      break;
    switch (run.kind) {
    case QCOW2_ABSENT:
      r = image_read_parent(img, out, (size_t)run.len, off);
      break;
    case QCOW2_ZERO:
      memset(out, 0, (size_t)run.len);
      break;
    case QCOW2_DATA:
      r = io_pread_upto(img->io, out, (size_t)run.len, run.host, q->file_size);
      break;
    case QCOW2_COMPRESSED:
      if (!cluster && !(cluster = vhd_malloc((size_t)q->cluster_size * 3))) {
        r = vhd_error(ENOMEM, "%s: out of memory", img->path);
        break;
      }
      r = inflate_cluster(img, &run, off, cluster, cluster + q->cluster_size);
      if (r == 0)
        memcpy(out, cluster + (off & (q->cluster_size - 1)), (size_t)run.len);
      break;
    }
    out += run.len;
    off += run.len;
    len -= (size_t)run.len;
  }
  vhd_free(cluster);
  return r;
}

int qcow2_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                       enum layer_state *state, uint64_t *run)
{
  struct qcow2_run q;
  int r = qcow2_lookup(img, off, len, &q);
  if (r < 0)
    return r;
  *state = q.kind == QCOW2_ABSENT ? LAYER_ABSENT : q.kind == QCOW2_ZERO ? LAYER_ZERO : LAYER_DATA;
  *run = q.len;
  return 0;
}

int qcow2_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                      uint64_t *run)
{
  struct qcow2_run q;
  int r = qcow2_lookup(img, off, len, &q);
  if (r < 0)
    return r;
  if (q.kind != QCOW2_DATA)
    return -ENOTSUP;   /* compressed: no place holds the bytes as read */
  *host = q.host;
  *run = q.len;
  return 0;
}

/* vhd_check's extra pass: every L2 entry of the active view (each bad one
 * is a finding, the rest still checked), and no L2 table or data cluster
 * sharing a cluster with another structure. Refcounts and internal
 * snapshots are not read, as for reading. */
int qcow2_check(struct vhd_image *img, struct vhd_diag *d)
{
  const struct qcow2 *q = img->priv;
  struct claims used;
  int r = claims_init(&used, q->file_size, q->cluster_bits);
  uint8_t *table = r == -ENOMEM ? NULL : vhd_malloc((size_t)q->cluster_size);
  if (!table) {
    claims_free(&used);
    return vhd_error(ENOMEM, "%s: out of memory checking", img->path);
  }
  bool overlaps = r == 0;
  if (!overlaps)
    diag_info(d, "%s: too many clusters to check for overlaps", img->path);
  else if (!claims_take(&used, 0, q->cluster_size) ||   /* the header cluster */
           !claims_take(&used, q->l1_offset, q->l1_count * 8))
    diag_corrupt(d, "%s: qcow2 L1 table at %llu shares a cluster with the header", img->path,
                 (unsigned long long)q->l1_offset);
  r = 0;
  for (uint64_t i = 0; i < q->l1_count && r == 0; i++) {
    uint64_t l2 = q->l1[i];
    if (!l2)
      continue;
    if (overlaps && !claims_take(&used, l2, q->cluster_size))
      diag_corrupt(d, "%s: qcow2 L2 table of L1 entry %llu at %llu shares its cluster with "
                   "another structure", img->path, (unsigned long long)i, (unsigned long long)l2);
    if ((r = io_pread(img->io, table, (size_t)q->cluster_size, l2)) < 0)
      break;
    for (uint64_t j = 0; j < q->l2_entries; j++) {
      uint64_t guest = ((i * q->l2_entries + j) << q->cluster_bits);
      if (guest >= img->virtual_size)
        break;
      struct qcow2_run run;
      memset(&run, 0, sizeof run);
      if (classify(img, q, get_be64(table + j * 8), guest, &run) < 0) {
        r = diag_corrupt(d, "%s", vhd_last_error());
        if (r < 0)
          break;
        continue;
      }
      if (run.kind == QCOW2_DATA && overlaps && !claims_take(&used, run.host, q->cluster_size))
        diag_corrupt(d, "%s: qcow2 data cluster of guest offset %llu at %llu shares its "
                     "cluster with another structure", img->path, (unsigned long long)guest,
                     (unsigned long long)run.host);
    }
  }
  claims_free(&used);
  vhd_free(table);
  return r;
}

uint64_t qcow2_allocated_clusters(struct vhd_image *img)
{
  const struct qcow2 *q = img->priv;
  uint64_t count = 0;
  for (uint64_t off = 0; off < img->virtual_size;) {
    struct qcow2_run run;
    if (qcow2_lookup(img, off, img->virtual_size - off, &run) < 0)
      break;   /* info shows what could be counted; check reports the entry */
    if (run.kind == QCOW2_DATA || run.kind == QCOW2_COMPRESSED)
      count += (run.len + q->cluster_size - 1) >> q->cluster_bits;
    off += run.len;
  }
  vhd_error_clear();
  return count;
}
