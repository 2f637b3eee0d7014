/* SPDX-License-Identifier: BSD-3-Clause */
/* One hosted sparse extent ("KDMV"): its header (or the footer a stream
 * keeps at its end), the grain directory, grain lookups and stream grains
 * (a marker, then a zlib stream). Nothing is cached: parallel readers
 * share no state. Messages name the extent's own file. */
#include "vmdk/vmdk.h"
#include "codec/inflate.h"
#include "error.h"
#include "util/arith.h"
#include "util/claims.h"
#include "util/endian.h"

#define FLAG_NEWLINE_TEST 0x1u
#define FLAG_ZEROED_GRAINS 0x4u
#define FLAG_COMPRESSED 0x10000u
#define FLAG_MARKERS 0x20000u
#define GD_AT_END UINT64_MAX
#define MARKER_FOOTER 3u
#define MARKER_HEADER 12u   /* u64 lba, u32 size */
/* Grains above 1 MiB exist in no real file (VMware and qemu write 64 KiB);
 * the bound keeps a read's buffers small. */
#define GRAIN_SECTORS_MAX 2048u
#define GTES_MAX 512u

static int bad(const struct vmdk_sparse *s, const char *what)
{
  return vhd_error(EINVAL, "%s: VMDK sparse header: %s", s->io->name, what);
}

/* A stream-optimized file may say its grain directory is at the end: the
 * real header is then the footer, between a footer marker and the
 * end-of-stream marker. */
static int read_footer(struct vmdk_sparse *s)
{
  uint8_t tail[3 * VMDK_SECTOR];
  if (s->file_size < 4 * VMDK_SECTOR)
    return bad(s, "gdOffset is GD_AT_END but the file is too short for a footer");
  int r = io_pread(s->io, tail, sizeof tail, s->file_size - sizeof tail);
  if (r < 0)
    return r;
  static const uint8_t zero[12];
  if (get_le64(tail) != 1 || get_le32(tail + 8) != 0 || get_le32(tail + 12) != MARKER_FOOTER ||
      memcmp(tail + VMDK_SECTOR, "KDMV", 4) != 0 || memcmp(tail + 2 * VMDK_SECTOR, zero, 12) != 0)
    return bad(s, "gdOffset is GD_AT_END but no footer marker, footer and end-of-stream "
               "marker end the file");
  memcpy(s->header, tail + VMDK_SECTOR, VMDK_SECTOR);
  return 0;
}

static int read_gd(struct vmdk_sparse *s, uint64_t gd_sector)
{
  uint64_t span = s->grain_sectors * s->gtes_per_gt;
  s->gd_count = s->capacity / span + (s->capacity % span != 0);
  s->gd_sector = gd_sector;
  uint64_t bytes = s->gd_count * 4;
  if (gd_sector > s->file_size / VMDK_SECTOR || bytes > s->file_size - gd_sector * VMDK_SECTOR)
    return bad(s, "the grain directory lies past the end of the file");
  s->gd = vhd_malloc((size_t)bytes + 1);
  if (!s->gd)
    return vhd_error(ENOMEM, "%s: out of memory for the grain directory", s->io->name);
  int r = bytes ? io_pread(s->io, s->gd, (size_t)bytes, gd_sector * VMDK_SECTOR) : 0;
  if (r < 0)
    return r;
  uint64_t gt_bytes = (uint64_t)s->gtes_per_gt * 4;
  for (uint64_t i = 0; i < s->gd_count; i++) {
    uint32_t t = get_le32((const uint8_t *)&s->gd[i]);
    if (t && ((uint64_t)t > s->file_size / VMDK_SECTOR ||
              gt_bytes > s->file_size - (uint64_t)t * VMDK_SECTOR))
      return vhd_error(EINVAL, "%s: VMDK grain directory entry %llu: grain table at sector %u "
                       "lies past the end of the file", s->io->name, (unsigned long long)i, t);
    s->gd[i] = t;
  }
  return 0;
}

static int parse_header(struct vmdk_sparse *s)
{
  uint8_t *h = s->header;
  if (memcmp(h, "KDMV", 4) != 0)
    return bad(s, "no KDMV magic");
  s->version = get_le32(h + 4);
  if (s->version < 1 || s->version > 3)
    return bad(s, "version is not 1, 2 or 3");
  uint64_t gd = get_le64(h + 56);
  if (gd == GD_AT_END) {
    int r = read_footer(s);
    if (r < 0)
      return r;
    gd = get_le64(h + 56);
    if (gd == GD_AT_END)
      return bad(s, "the footer's gdOffset is GD_AT_END too");
  }
  s->flags = get_le32(h + 8);
  if ((s->flags & FLAG_NEWLINE_TEST) && memcmp(h + 73, "\n \r\n", 4) != 0)
    return bad(s, "the newline test bytes are changed (the file went through a text-mode "
               "transfer)");
  s->capacity = get_le64(h + 12);
  s->grain_sectors = get_le64(h + 20);
  s->gtes_per_gt = get_le32(h + 44);
  s->descriptor_sector = get_le64(h + 28);
  s->descriptor_sectors = get_le64(h + 36);
  if (s->grain_sectors == 0 || s->grain_sectors > GRAIN_SECTORS_MAX ||
      (s->grain_sectors & (s->grain_sectors - 1)))
    return bad(s, "grainSize is not a power of 2 up to 2048 sectors");
  if (s->gtes_per_gt == 0 || s->gtes_per_gt > GTES_MAX)
    return bad(s, "numGTEsPerGT is not 1..512");
  if (s->capacity == 0 || s->capacity > (UINT64_MAX >> 10) / VMDK_SECTOR)
    return bad(s, "capacity is 0 or too large");
  s->grain_bytes = s->grain_sectors * VMDK_SECTOR;
  s->zeroed_grains = (s->flags & FLAG_ZEROED_GRAINS) != 0;
  s->compressed = (s->flags & FLAG_COMPRESSED) != 0;
  if (s->compressed && (get_le16(h + 77) != 1 || !(s->flags & FLAG_MARKERS)))
    return bad(s, "compressed grains need compressAlgorithm 1 (deflate) and markers");
  return read_gd(s, gd);
}

int vmdk_sparse_open(struct vmdk_sparse *s)
{
  int r = io_get_size(s->io, &s->file_size);
  if (r == 0 && s->file_size < VMDK_SECTOR)
    r = bad(s, "the file is shorter than the header");
  if (r == 0)
    r = io_pread(s->io, s->header, VMDK_SECTOR, 0);
  return r < 0 ? r : parse_header(s);
}

void vmdk_sparse_close(struct vmdk_sparse *s)
{
  vhd_free(s->gd);
  s->gd = NULL;
}

static int classify(const struct vmdk_sparse *s, uint32_t gte, uint64_t off,
                    struct vmdk_grain_run *run)
{
  if (gte == 0) {
    run->kind = VMDK_GRAIN_ABSENT;
    return 0;
  }
  if (gte == 1 && s->zeroed_grains) {
    run->kind = VMDK_GRAIN_ZERO;
    return 0;
  }
  uint64_t host = (uint64_t)gte * VMDK_SECTOR;
  if (host >= s->file_size)
    return vhd_error(EIO, "%s: VMDK grain for extent offset %llu at sector %u lies past the "
                     "end of the file", s->io->name, (unsigned long long)off, gte);
  run->kind = s->compressed ? VMDK_GRAIN_COMPRESSED : VMDK_GRAIN_DATA;
  run->host = host;
  return 0;
}

int vmdk_sparse_lookup(struct vhd_image *img, const struct vmdk_sparse *s, uint64_t off,
                       uint64_t len, struct vmdk_grain_run *run)
{
  (void)img;
  uint64_t grain = off / s->grain_bytes, in_grain = off % s->grain_bytes;
  uint64_t gd_index = grain / s->gtes_per_gt, gt_index = grain % s->gtes_per_gt;
  uint64_t last = (off + len - 1) / s->grain_bytes;
  uint64_t count = min_u64(last - grain + 1, s->gtes_per_gt - gt_index);
  uint32_t gt = gd_index < s->gd_count ? s->gd[gd_index] : 0;

  memset(run, 0, sizeof *run);
  if (gt == 0) {
    run->kind = VMDK_GRAIN_ABSENT;
    run->len = min_u64(len, (s->gtes_per_gt - gt_index) * s->grain_bytes - in_grain);
    return 0;
  }
  uint8_t raw[GTES_MAX * 4];
  int r = io_pread(s->io, raw, (size_t)count * 4, (uint64_t)gt * VMDK_SECTOR + gt_index * 4);
  if (r < 0)
    return r;
  if ((r = classify(s, get_le32(raw), off, run)) < 0)
    return r;
  run->len = s->grain_bytes - in_grain;
  if (run->kind == VMDK_GRAIN_DATA)
    run->host += in_grain;
  for (uint64_t i = 1; i < count && run->kind != VMDK_GRAIN_COMPRESSED; i++) {
    struct vmdk_grain_run next = {VMDK_GRAIN_ABSENT, 0, 0};
    if ((r = classify(s, get_le32(raw + i * 4), (grain + i) * s->grain_bytes, &next)) < 0)
      return r;
    if (next.kind != run->kind ||
        (next.kind == VMDK_GRAIN_DATA && next.host != run->host + run->len))
      break;
    run->len += s->grain_bytes;
  }
  run->len = min_u64(run->len, len);
  return 0;
}

int vmdk_sparse_inflate(struct vhd_image *img, const struct vmdk_sparse *s,
                        const struct vmdk_grain_run *run, uint64_t off, uint8_t *grain,
                        uint8_t *scratch)
{
  const char *name = s->io->name;
  uint64_t number = off / s->grain_bytes;
  uint8_t m[MARKER_HEADER];
  if (run->host > s->file_size - MARKER_HEADER)
    return vhd_error(EIO, "%s: VMDK grain marker at %llu runs past the end of the file",
                     name, (unsigned long long)run->host);
  int r = io_pread(s->io, m, sizeof m, run->host);
  if (r < 0)
    return r;
  uint64_t lba = get_le64(m);
  uint32_t size = get_le32(m + 8);
  if (lba != number * s->grain_sectors)
    return vhd_error(EIO, "%s: VMDK grain marker at %llu says sector %llu, the grain table "
                     "says %llu", name, (unsigned long long)run->host,
                     (unsigned long long)lba, (unsigned long long)(number * s->grain_sectors));
  if (size == 0 || size > 2 * s->grain_bytes || size > s->file_size - run->host - MARKER_HEADER)
    return vhd_error(EIO, "%s: VMDK grain marker at %llu: compressed size %u is 0, larger "
                     "than twice the grain or past the end of the file", name,
                     (unsigned long long)run->host, size);
  if ((r = io_pread(s->io, scratch, size, run->host + MARKER_HEADER)) < 0)
    return r;
  size_t got;
  r = inflate_buffer(INFLATE_ZLIB, scratch, size, grain, (size_t)s->grain_bytes, &got);
  if (r == -ENOMEM)
    return vhd_error(ENOMEM, "%s: out of memory inflating a grain", img->path);
  if (r < 0)
    return vhd_error(EIO, "%s: VMDK grain at %llu does not inflate (not a zlib stream, or "
                     "larger than the grain)", name, (unsigned long long)run->host);
  /* The disk's last grain may inflate short. */
  memset(grain + got, 0, (size_t)(s->grain_bytes - got));
  return 0;
}

/* A grain's place in the file for the overlap check: the grain, or its
 * marker and stream. */
static int grain_extent(const struct vmdk_sparse *s, const struct vmdk_grain_run *run,
                        uint64_t *len)
{
  *len = s->grain_bytes;
  if (run->kind != VMDK_GRAIN_COMPRESSED)
    return 0;
  uint8_t m[MARKER_HEADER];
  if (run->host > s->file_size - MARKER_HEADER)
    return vhd_error(EIO, "%s: VMDK grain marker at %llu runs past the end of the file",
                     s->io->name, (unsigned long long)run->host);
  int r = io_pread(s->io, m, sizeof m, run->host);
  *len = MARKER_HEADER + (uint64_t)get_le32(m + 8);
  return r;
}

int vmdk_sparse_check(struct vhd_image *img, const struct vmdk_sparse *s, struct vhd_diag *d)
{
  struct claims used;
  int r = claims_init(&used, s->file_size, 9);
  if (r == -E2BIG) {
    diag_info(d, "%s: too many sectors to check for overlaps", s->io->name);
    return 0;
  }
  uint64_t gt_bytes = (uint64_t)s->gtes_per_gt * 4;
  uint8_t *gt = r == 0 ? vhd_malloc((size_t)gt_bytes) : NULL;
  if (!gt) {
    claims_free(&used);
    return vhd_error(ENOMEM, "%s: out of memory checking", img->path);
  }
  claims_take(&used, 0, VMDK_SECTOR);
  if (!claims_take(&used, s->descriptor_sector * VMDK_SECTOR,
                   s->descriptor_sectors * VMDK_SECTOR) ||
      !claims_take(&used, s->gd_sector * VMDK_SECTOR, s->gd_count * 4))
    diag_corrupt(d, "%s: VMDK descriptor or grain directory overlaps the header or each other",
                 s->io->name);
  for (uint64_t i = 0; i < s->gd_count && r == 0; i++) {
    if (!s->gd[i])
      continue;
    if (!claims_take(&used, (uint64_t)s->gd[i] * VMDK_SECTOR, gt_bytes))
      diag_corrupt(d, "%s: VMDK grain table %llu at sector %u overlaps another structure",
                   s->io->name, (unsigned long long)i, s->gd[i]);
    if ((r = io_pread(s->io, gt, (size_t)gt_bytes, (uint64_t)s->gd[i] * VMDK_SECTOR)) < 0)
      break;
    for (uint64_t j = 0; j < s->gtes_per_gt; j++) {
      uint64_t off = (i * s->gtes_per_gt + j) * s->grain_bytes, len;
      if (off >= s->capacity * VMDK_SECTOR)
        break;
      struct vmdk_grain_run run = {VMDK_GRAIN_ABSENT, 0, 0};
      if (classify(s, get_le32(gt + j * 4), off, &run) < 0 ||
          (run.kind >= VMDK_GRAIN_DATA && grain_extent(s, &run, &len) < 0)) {
        if ((r = diag_corrupt(d, "%s", vhd_last_error())) < 0)
          break;
        continue;
      }
      if (run.kind >= VMDK_GRAIN_DATA && !claims_take(&used, run.host, len))
        diag_corrupt(d, "%s: VMDK grain of extent offset %llu at %llu overlaps another "
                     "structure", s->io->name, (unsigned long long)off,
                     (unsigned long long)run.host);
    }
  }
  claims_free(&used);
  vhd_free(gt);
  return r;
}
