/* SPDX-License-Identifier: BSD-3-Clause */
/* qcow2: probe, header and extension validation, the L1 table, identity
 * and the backing file. Read only: the format is a source to convert. */
#include "qcow2/qcow2.h"
#include "error.h"
#include "util/crc32.h"
#include "util/endian.h"
#include "util/strfmt.h"

#define QCOW2_MAGIC "QFI\xfb"
#define V2_HEADER_LEN 72u
#define V3_HEADER_MIN 104u
#define EXT_BACKING_FORMAT 0xE2792ACAu
/* QEMU's own bound on the L1 table (32 MiB): larger is no real image. */
#define L1_MAX_BYTES (32u << 20)

/* Incompatible feature bits (version 3). */
#define INCOMPAT_DIRTY      (1ull << 0)   /* refcounts stale: harmless for reading */
#define INCOMPAT_CORRUPT    (1ull << 1)
#define INCOMPAT_DATA_FILE  (1ull << 2)
#define INCOMPAT_COMPRESSION (1ull << 3)
#define INCOMPAT_EXTENDED_L2 (1ull << 4)

#define L1_RESERVED 0x7F000000000001FEull
#define TABLE_OFFSET_MASK 0x00FFFFFFFFFFFE00ull

static int qcow2_probe(vhd_io *io, uint64_t file_size)
{
  uint8_t h[8];
  if (file_size < V2_HEADER_LEN)
    return 0;
  int r = io_pread(io, h, sizeof h, 0);
  if (r < 0)
    return r;   /* the file cannot be read: no format can say what it is */
  if (memcmp(h, QCOW2_MAGIC, 4) != 0)
    return 0;
  uint32_t v = get_be32(h + 4);
  return v == 2 || v == 3 ? 10 : 0;   /* version 1 (qcow) stays foreign */
}

static int bad(struct vhd_image *img, const char *what)
{
  return vhd_error(EINVAL, "%s: qcow2 header: %s", img->path, what);
}

/* The incompatible features this reader cannot honour, refused by name. */
static int check_features(struct vhd_image *img, uint64_t incompat, unsigned compression)
{
  if (incompat & INCOMPAT_CORRUPT)
    return vhd_error(EINVAL, "%s: qcow2 image is marked corrupt (incompatible feature bit 1); "
                     "repair it with qemu-img check -r all first", img->path);
  if (incompat & INCOMPAT_DATA_FILE)
    return vhd_error(ENOTSUP, "%s: qcow2 image keeps its data in an external data file "
                     "(incompatible feature bit 2), which is not read; convert it with "
                     "qemu-img first", img->path);
  if ((incompat & INCOMPAT_COMPRESSION) && compression != 0)
    return vhd_error(ENOTSUP, "%s: qcow2 compression_type %u (zstd) is not read, only "
                     "deflate; recompress with qemu-img convert -c -o compression_type=zlib",
                     img->path, compression);
  if (!(incompat & INCOMPAT_COMPRESSION) && compression != 0)
    return vhd_error(EINVAL, "%s: qcow2 compression_type %u without incompatible feature "
                     "bit 3", img->path, compression);
  if (incompat & INCOMPAT_EXTENDED_L2)
    return vhd_error(ENOTSUP, "%s: qcow2 extended L2 entries (incompatible feature bit 4) "
                     "are not read", img->path);
  uint64_t unknown = incompat & ~(INCOMPAT_DIRTY | INCOMPAT_COMPRESSION | INCOMPAT_EXTENDED_L2 |
                                  INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE);
  if (unknown)
    return vhd_error(ENOTSUP, "%s: qcow2 incompatible_features 0x%llx has unknown bits",
                     img->path, (unsigned long long)unknown);
  return 0;
}

/* Header extensions between the header and end (the first cluster, or the
 * backing file name): only the backing format matters for reading. */
static int read_extensions(struct vhd_image *img, struct qcow2 *q, const uint8_t *c,
                           uint64_t pos, uint64_t end)
{
  while (pos + 8 <= end) {
    uint32_t type = get_be32(c + pos), len = get_be32(c + pos + 4);
    if (type == 0)
      return 0;
    if (len > end - pos - 8)
      return vhd_error(EINVAL, "%s: qcow2 header extension 0x%08x at %llu: length %u runs "
                       "past the header cluster", img->path, type, (unsigned long long)pos, len);
    if (type == EXT_BACKING_FORMAT) {
      if (len == 0 || len >= sizeof q->backing_format || memchr(c + pos + 8, 0, len))
        return vhd_error(EINVAL, "%s: qcow2 backing format extension: bad length %u",
                         img->path, len);
      memcpy(q->backing_format, c + pos + 8, len);
      q->backing_format[len] = 0;
    }
    pos += 8 + (((uint64_t)len + 7) & ~7ull);
  }
  return 0;
}

static int read_backing_name(struct vhd_image *img, struct qcow2 *q, const uint8_t *c,
                             uint64_t off, uint32_t len, uint64_t header_end)
{
  if (off == 0)
    return 0;
  if (len == 0 || len > QCOW2_BACKING_NAME_MAX)
    return vhd_error(EINVAL, "%s: qcow2 backing_file_size %u is not 1..%u", img->path, len,
                     QCOW2_BACKING_NAME_MAX);
  if (off < header_end || off > q->cluster_size || len > q->cluster_size - off ||
      off + len > q->file_size)
    return vhd_error(EINVAL, "%s: qcow2 backing_file_offset %llu (+%u) lies outside the "
                     "header cluster", img->path, (unsigned long long)off, len);
  if (memchr(c + off, 0, len))
    return vhd_error(EINVAL, "%s: qcow2 backing file name holds a NUL byte", img->path);
  q->backing = vhd_malloc(len + 1);
  if (!q->backing)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  memcpy(q->backing, c + off, len);
  q->backing[len] = 0;
  return 0;
}

/* The L1 table: it must lie in the file and cover the virtual size. Only
 * the entries the size needs are kept (the rest can never be reached). */
static int read_l1(struct vhd_image *img, struct qcow2 *q, uint64_t l1_off, uint32_t l1_size)
{
  uint64_t span = q->cluster_size * q->l2_entries;   /* bytes one L2 table maps */
  uint64_t need = img->virtual_size / span + (img->virtual_size % span != 0);
  if (l1_size < need)
    return vhd_error(EINVAL, "%s: qcow2 l1_size %u is too small for size %llu (needs %llu)",
                     img->path, l1_size, (unsigned long long)img->virtual_size,
                     (unsigned long long)need);
  if ((uint64_t)l1_size * 8 > L1_MAX_BYTES)
    return vhd_error(EINVAL, "%s: qcow2 l1_size %u is larger than any real image's",
                     img->path, l1_size);
  if (need == 0)
    return 0;
  if (l1_off % q->cluster_size || l1_off == 0 || l1_off > q->file_size ||
      need * 8 > q->file_size - l1_off)
    return vhd_error(EINVAL, "%s: qcow2 l1_table_offset %llu is unaligned or the table runs "
                     "past the end of the file", img->path, (unsigned long long)l1_off);
  q->l1 = vhd_malloc((size_t)need * 8);
  if (!q->l1)
    return vhd_error(ENOMEM, "%s: out of memory for the L1 table", img->path);
  int r = io_pread(img->io, q->l1, (size_t)need * 8, l1_off);
  if (r < 0)
    return r;
  q->l1_count = need;
  q->l1_offset = l1_off;
  for (uint64_t i = 0; i < need; i++) {
    uint64_t e = get_be64((const uint8_t *)&q->l1[i]);
    uint64_t l2 = e & TABLE_OFFSET_MASK;
    if (e & L1_RESERVED)
      return vhd_error(EINVAL, "%s: qcow2 L1 entry %llu (0x%016llx) has reserved bits set",
                       img->path, (unsigned long long)i, (unsigned long long)e);
    if (l2 && (l2 % q->cluster_size || l2 > q->file_size ||
               q->cluster_size > q->file_size - l2))
      return vhd_error(EINVAL, "%s: qcow2 L1 entry %llu: L2 table at %llu is unaligned or "
                       "past the end of the file", img->path, (unsigned long long)i,
                       (unsigned long long)l2);
    q->l1[i] = l2;
  }
  return 0;
}

static int parse_header(struct vhd_image *img, struct qcow2 *q, const uint8_t *c, size_t n)
{
  q->version = get_be32(c + 4);
  if (q->version != 2 && q->version != 3)
    return bad(img, "version is not 2 or 3");
  q->cluster_bits = get_be32(c + 20);
  if (q->cluster_bits < 9 || q->cluster_bits > 21)
    return bad(img, "cluster_bits is not 9..21");
  q->cluster_size = 1ull << q->cluster_bits;
  q->l2_entries = q->cluster_size / 8;
  q->csize_shift = 62 - (q->cluster_bits - 8);
  q->csize_mask = (1ull << (q->cluster_bits - 8)) - 1;

  uint64_t header_end = V2_HEADER_LEN, incompat = 0;
  unsigned compression = 0;
  if (q->version == 3) {
    if (n < V3_HEADER_MIN)
      return bad(img, "the file is shorter than a version 3 header");
    header_end = get_be32(c + 100);
    if (header_end < V3_HEADER_MIN || header_end % 8 || header_end > n)
      return bad(img, "header_length is not a multiple of 8 from 104 up to the cluster size");
    incompat = get_be64(c + 72);
    compression = header_end > 104 ? c[104] : 0;
  }
  int r = check_features(img, incompat, compression);
  if (r < 0)
    return r;
  if (get_be32(c + 32) != 0)
    return vhd_error(ENOTSUP, "%s: qcow2 image is encrypted (crypt_method %u), which is not "
                     "read; decrypt it with qemu-img convert first", img->path,
                     get_be32(c + 32));

  img->virtual_size = get_be64(c + 24);
  if (img->virtual_size % 512 || img->virtual_size > (1ull << 62))
    return bad(img, "size is not a multiple of 512 below 2^62");

  uint64_t backing_off = get_be64(c + 8);
  uint64_t ext_end = n;
  if (backing_off && backing_off < ext_end)
    ext_end = backing_off;
  if ((r = read_extensions(img, q, c, header_end, ext_end)) < 0)
    return r;
  if ((r = read_backing_name(img, q, c, backing_off, get_be32(c + 16), header_end)) < 0)
    return r;
  return read_l1(img, q, get_be64(c + 40), get_be32(c + 36));
}

static void qcow2_close(struct vhd_image *img)
{
  struct qcow2 *q = img->priv;
  if (!q)
    return;
  vhd_free(q->l1);
  vhd_free(q->backing);
  vhd_free(q);
  img->priv = NULL;
}

/* qcow2 stores no identity; this stands in for one where the chain layer
 * tells layers apart (loops): the header cluster and where the file ends. */
static void set_fingerprint(struct qcow2 *q, const uint8_t *c, size_t n)
{
  put_be32(q->fingerprint, crc32_of(c, n));
  put_be64(q->fingerprint + 4, q->file_size);
  put_be32(q->fingerprint + 12, (uint32_t)q->l1_count);
}

static int qcow2_open(struct vhd_image *img, struct vhd_diag *d)
{
  (void)d;
  if (img->flags & VHD_OPEN_RDWR)
    return vhd_error(EROFS, "%s: qcow2 is a read-only format here: convert it (vhdtool "
                     "convert) to VHD or VHDX to write", img->path);
  struct qcow2 *q = vhd_calloc(1, sizeof *q);
  if (!q)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  img->priv = q;
  int r = io_get_size(img->io, &q->file_size);
  if (r < 0)
    return r;
  /* The header, its extensions and the backing name lie in cluster 0;
   * the cluster size is not known yet, so read the largest one's worth
   * the file has (2 MiB at most). */
  size_t n = (size_t)(q->file_size < (2u << 20) ? q->file_size : (2u << 20));
  if (n < V2_HEADER_LEN)
    return bad(img, "the file is shorter than a qcow2 header");
  uint8_t *c = vhd_malloc(n);
  if (!c)
    return vhd_error(ENOMEM, "%s: out of memory", img->path);
  r = io_pread(img->io, c, n, 0);
  if (r == 0 && memcmp(c, QCOW2_MAGIC, 4) != 0)
    r = bad(img, "no QFI\\xfb magic");
  if (r == 0) {
    q->cluster_bits = get_be32(c + 20);
    if (q->cluster_bits >= 9 && q->cluster_bits <= 21 && n > (1ull << q->cluster_bits))
      n = (size_t)1 << q->cluster_bits;
    r = parse_header(img, q, c, n);
  }
  if (r == 0)
    set_fingerprint(q, c, n);
  vhd_free(c);
  if (r < 0)
    return r;
  img->sector_size = 512;
  img->type = q->backing ? VHD_TYPE_DIFFERENCING : VHD_TYPE_DYNAMIC;
  return 0;
}

static void qcow2_info(struct vhd_image *img, struct vhd_info *info)
{
  struct qcow2 *q = img->priv;
  info->block_size = (uint32_t)q->cluster_size;
  info->total_blocks = img->virtual_size / q->cluster_size +
                       (img->virtual_size % q->cluster_size != 0);
  info->allocated_blocks = qcow2_allocated_clusters(img);
  info->physical_sector_size = 512;
  vhd_snprintf(info->creator, sizeof info->creator, "qcow2 version %u", q->version);
  memcpy(info->id, q->fingerprint, sizeof info->id);
}

static int qcow2_parent_candidates(struct vhd_image *img, struct parent_candidates *c)
{
  struct qcow2 *q = img->priv;
  return parent_candidates_one(img, c, q->backing, "backing_file");
}

/* qcow2 names its backing file and, at most, its format: nothing to check
 * but that format. */
static int qcow2_parent_matches(struct vhd_image *img, struct vhd_image *candidate)
{
  struct qcow2 *q = img->priv;
  const char *got = vhd_format_name(candidate->drv->format);
  if (q->backing_format[0] && got && strcmp(q->backing_format, got) != 0)
    return vhd_error(EINVAL, "%s: its backing file %s is %s, but the backing format "
                     "extension says %s", img->path, candidate->path, got, q->backing_format);
  return 0;
}

const struct vhd_driver vhd_driver_qcow2 = {
  .name = "qcow2",
  .format = VHD_FORMAT_QCOW2,
  .probe = qcow2_probe,
  .open = qcow2_open,
  .close = qcow2_close,
  .read = qcow2_read,
  .block_status = qcow2_block_status,
  .host_extent = qcow2_host_extent,
  .info = qcow2_info,
  .parent_candidates = qcow2_parent_candidates,
  .parent_matches = qcow2_parent_matches,
  .check = qcow2_check,
  .parent_by_name_only = true,
};
