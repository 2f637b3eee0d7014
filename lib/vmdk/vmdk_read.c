/* VMDK sparse reads: guest offset -> grain directory -> grain table ->
 * grain, and stream grains (a marker, then a zlib stream). Nothing is
 * cached: parallel readers share no state. */
#include "vmdk/vmdk.h"
#include "codec/inflate.h"
#include "error.h"
#include "util/arith.h"
#include "util/endian.h"

#define MARKER_HEADER 12u   /* u64 lba, u32 size */

enum grain_kind { GRAIN_ABSENT, GRAIN_ZERO, GRAIN_DATA, GRAIN_COMPRESSED };

struct grain_run {
  enum grain_kind kind;
  uint64_t host;   /* DATA: file offset of the guest offset; COMPRESSED: of the marker */
  uint64_t len;
};

static int classify(struct vhd_image *img, const struct vmdk *v, uint32_t gte, uint64_t guest,
                    struct grain_run *run)
{
  if (gte == 0) {
    run->kind = GRAIN_ABSENT;
    return 0;
  }
  if (gte == 1 && v->zeroed_grains) {
    run->kind = GRAIN_ZERO;
    return 0;
  }
  uint64_t host = (uint64_t)gte * VMDK_SECTOR;
  if (host >= v->file_size)
    return vhd_error(EIO, "%s: VMDK grain for guest offset %llu at sector %u lies past the end "
                     "of the file", img->path, (unsigned long long)guest, gte);
  run->kind = v->compressed ? GRAIN_COMPRESSED : GRAIN_DATA;
  run->host = host;
  return 0;
}

static int lookup(struct vhd_image *img, uint64_t off, uint64_t len, struct grain_run *run)
{
  const struct vmdk *v = img->priv;
  uint64_t grain = off / v->grain_bytes, in_grain = off % v->grain_bytes;
  uint64_t gd_index = grain / v->gtes_per_gt, gt_index = grain % v->gtes_per_gt;
  uint64_t last = (off + len - 1) / v->grain_bytes;
  uint64_t count = min_u64(last - grain + 1, v->gtes_per_gt - gt_index);
  uint32_t gt = v->gd[gd_index];

  memset(run, 0, sizeof *run);
  if (gt == 0) {
    run->kind = GRAIN_ABSENT;
    run->len = min_u64(len, (v->gtes_per_gt - gt_index) * v->grain_bytes - in_grain);
    return 0;
  }
  uint8_t raw[512 * 4];
  int r = io_pread(img->io, raw, (size_t)count * 4,
                   (uint64_t)gt * VMDK_SECTOR + gt_index * 4);
  if (r < 0)
    return r;
  if ((r = classify(img, v, get_le32(raw), off, run)) < 0)
    return r;
  run->len = v->grain_bytes - in_grain;
  if (run->kind == GRAIN_DATA)
    run->host += in_grain;
  for (uint64_t i = 1; i < count && run->kind != GRAIN_COMPRESSED; i++) {
    struct grain_run next = {GRAIN_ABSENT, 0, 0};
    if ((r = classify(img, v, get_le32(raw + i * 4), (grain + i) * v->grain_bytes, &next)) < 0)
      return r;
    if (next.kind != run->kind || (next.kind == GRAIN_DATA && next.host != run->host + run->len))
      break;
    run->len += v->grain_bytes;
  }
  run->len = min_u64(run->len, len);
  return 0;
}

/* The grain whose marker is at run->host into grain (grain_bytes); the
 * stream goes through scratch (2 * grain_bytes: incompressible data
 * deflates a little larger than the grain). */
static int inflate_grain(struct vhd_image *img, const struct grain_run *run, uint64_t guest,
                         uint8_t *grain, uint8_t *scratch)
{
  const struct vmdk *v = img->priv;
  uint64_t number = guest / v->grain_bytes;
  uint8_t m[MARKER_HEADER];
  if (run->host > v->file_size - MARKER_HEADER)
    return vhd_error(EIO, "%s: VMDK grain marker at %llu runs past the end of the file",
                     img->path, (unsigned long long)run->host);
  int r = io_pread(img->io, m, sizeof m, run->host);
  if (r < 0)
    return r;
  uint64_t lba = get_le64(m);
  uint32_t size = get_le32(m + 8);
  if (lba != number * v->grain_sectors)
    return vhd_error(EIO, "%s: VMDK grain marker at %llu says sector %llu, the grain table "
                     "says %llu", img->path, (unsigned long long)run->host,
                     (unsigned long long)lba, (unsigned long long)(number * v->grain_sectors));
  if (size == 0 || size > 2 * v->grain_bytes ||
      size > v->file_size - run->host - MARKER_HEADER)
    return vhd_error(EIO, "%s: VMDK grain marker at %llu: compressed size %u is 0, larger "
                     "than twice the grain or past the end of the file", img->path,
                     (unsigned long long)run->host, size);
  if ((r = io_pread(img->io, scratch, size, run->host + MARKER_HEADER)) < 0)
    return r;
  size_t got;
  r = inflate_buffer(INFLATE_ZLIB, scratch, size, grain, (size_t)v->grain_bytes, &got);
  if (r == -ENOMEM)
    return vhd_error(ENOMEM, "%s: out of memory inflating a grain", img->path);
  if (r < 0)
    return vhd_error(EIO, "%s: VMDK grain at %llu does not inflate (not a zlib stream, or "
                     "larger than the grain)", img->path, (unsigned long long)run->host);
  /* The disk's last grain may inflate short. */
  memset(grain + got, 0, (size_t)(v->grain_bytes - got));
  return 0;
}

int vmdk_read(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
  const struct vmdk *v = img->priv;
  uint8_t *out = buf, *grain = NULL;
  int r = 0;
  while (len && r == 0) {
    struct grain_run run;
    if ((r = lookup(img, off, len, &run)) < 0)
      break;
    switch (run.kind) {
    case GRAIN_ABSENT:
      r = image_read_parent(img, out, (size_t)run.len, off);
      break;
    case GRAIN_ZERO:
      memset(out, 0, (size_t)run.len);
      break;
    case GRAIN_DATA:
      r = io_pread_upto(img->io, out, (size_t)run.len, run.host, v->file_size);
      break;
    case GRAIN_COMPRESSED:
      if (!grain && !(grain = vhd_malloc((size_t)v->grain_bytes * 3))) {
        r = vhd_error(ENOMEM, "%s: out of memory", img->path);
        break;
      }
      r = inflate_grain(img, &run, off, grain, grain + v->grain_bytes);
      if (r == 0)
        memcpy(out, grain + off % v->grain_bytes, (size_t)run.len);
      break;
    }
    out += run.len;
    off += run.len;
    len -= (size_t)run.len;
  }
  vhd_free(grain);
  return r;
}

int vmdk_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                      enum layer_state *state, uint64_t *run)
{
  struct grain_run g;
  int r = lookup(img, off, len, &g);
  if (r < 0)
    return r;
  *state = g.kind == GRAIN_ABSENT ? LAYER_ABSENT : g.kind == GRAIN_ZERO ? LAYER_ZERO : LAYER_DATA;
  *run = g.len;
  return 0;
}

int vmdk_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                     uint64_t *run)
{
  struct grain_run g;
  int r = lookup(img, off, len, &g);
  if (r < 0)
    return r;
  if (g.kind != GRAIN_DATA)
    return -ENOTSUP;   /* compressed: no place holds the bytes as read */
  *host = g.host;
  *run = g.len;
  return 0;
}
