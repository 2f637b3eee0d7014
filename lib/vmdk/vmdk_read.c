/* SPDX-License-Identifier: BSD-3-Clause */
/* VMDK reads: the extent holding the offset (the descriptor's order), then
 * that extent's own mapping. */
#include "vmdk/vmdk.h"
#include "error.h"
#include "util/arith.h"

/* The extent holding guest offset off (inside the disk). */
static const struct vmdk_extent *extent_at(const struct vmdk *v, uint64_t off)
{
  unsigned lo = 0, hi = v->count;
  while (hi - lo > 1) {
    unsigned mid = lo + (hi - lo) / 2;
    if (v->extents[mid].start <= off)
      lo = mid;
    else
      hi = mid;
  }
  return &v->extents[lo];
}

/* What [off, off+len) starts with: one kind, in one extent. */
struct piece {
  const struct vmdk_extent *e;
  struct vmdk_grain_run run;   /* host: in e's file */
};

static int lookup(struct vhd_image *img, uint64_t off, uint64_t len, struct piece *p)
{
  const struct vmdk *v = img->priv;
  p->e = extent_at(v, off);
  uint64_t in = off - p->e->start;
  len = min_u64(len, p->e->len - in);
  memset(&p->run, 0, sizeof p->run);
  p->run.len = len;
  switch (p->e->kind) {
  case VMDK_EXTENT_ZERO:
    p->run.kind = VMDK_GRAIN_ZERO;
    return 0;
  case VMDK_EXTENT_FLAT:
    p->run.kind = VMDK_GRAIN_DATA;
    p->run.host = p->e->flat_offset + in;
    return 0;
  case VMDK_EXTENT_SPARSE:
    break;
  }
  return vmdk_sparse_lookup(img, &p->e->sparse, in, len, &p->run);
}

int vmdk_read(struct vhd_image *img, void *buf, size_t len, uint64_t off)
{
  uint8_t *out = buf, *grain = NULL;
  uint64_t grain_cap = 0;
  int r = 0;
  while (len && r == 0) {
    struct piece p;
    if ((r = lookup(img, off, len, &p)) < 0)
      break;
    const struct vmdk_sparse *s = &p.e->sparse;
    size_t n = (size_t)p.run.len;
    switch (p.run.kind) {
    case VMDK_GRAIN_ABSENT:
      r = image_read_parent(img, out, n, off);
      break;
    case VMDK_GRAIN_ZERO:
      memset(out, 0, n);
      break;
    case VMDK_GRAIN_DATA: {
      vhd_io *io = p.e->kind == VMDK_EXTENT_FLAT ? p.e->io : s->io;
      uint64_t end = p.e->kind == VMDK_EXTENT_FLAT ? p.e->flat_size : s->file_size;
      r = io_pread_upto(io, out, n, p.run.host, end);
      break;
    }
    case VMDK_GRAIN_COMPRESSED:
      if (grain_cap < s->grain_bytes) {   /* extents may differ in grain size */
        vhd_free(grain);
        grain_cap = s->grain_bytes;
        if (!(grain = vhd_malloc((size_t)grain_cap * 3))) {
          r = vhd_error(ENOMEM, "%s: out of memory", img->path);
          break;
        }
      }
      r = vmdk_sparse_inflate(img, s, &p.run, off - p.e->start, grain, grain + s->grain_bytes);
      if (r == 0)
        memcpy(out, grain + (off - p.e->start) % s->grain_bytes, n);
      break;
    }
    out += n;
    off += n;
    len -= n;
  }
  vhd_free(grain);
  return r;
}

int vmdk_block_status(struct vhd_image *img, uint64_t off, uint64_t len,
                      enum layer_state *state, uint64_t *run)
{
  struct piece p;
  int r = lookup(img, off, len, &p);
  if (r < 0)
    return r;
  *state = p.run.kind == VMDK_GRAIN_ABSENT ? LAYER_ABSENT :
           p.run.kind == VMDK_GRAIN_ZERO ? LAYER_ZERO : LAYER_DATA;
  *run = p.run.len;
  return 0;
}

/* Offsets only in the image's own file (a monolithic sparse VMDK): an
 * offset in another extent file would say nothing true about this one. */
int vmdk_host_extent(struct vhd_image *img, uint64_t off, uint64_t len, uint64_t *host,
                     uint64_t *run)
{
  struct piece p;
  int r = lookup(img, off, len, &p);
  if (r < 0)
    return r;
  if (p.run.kind != VMDK_GRAIN_DATA || p.e->kind != VMDK_EXTENT_SPARSE || p.e->sparse.io != img->io)
    return -ENOTSUP;
  *host = p.run.host;
  *run = p.run.len;
  return 0;
}

uint64_t vmdk_allocated_grains(struct vhd_image *img)
{
  uint64_t count = 0;
  for (uint64_t off = 0; off < img->virtual_size;) {
    struct piece p;
    if (lookup(img, off, img->virtual_size - off, &p) < 0)
      break;   /* info shows what could be counted; check reports the entry */
    if (p.e->kind == VMDK_EXTENT_SPARSE && p.run.kind >= VMDK_GRAIN_DATA)
      count += (p.run.len + p.e->sparse.grain_bytes - 1) / p.e->sparse.grain_bytes;
    off += p.run.len;
  }
  vhd_error_clear();
  return count;
}
