/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_measure: how large a file vhd_convert would make. Rather than a
 * second copy of each driver's layout rules, the image is made for real
 * by the driver's own create, on a backend that keeps only the pages that
 * are not zeros (a fixed image's data area is a length, not bytes), and
 * a few blocks are allocated to see what a block costs; the rest is counting
 * the output blocks the source's block status says hold data. */
#include <string.h>

#include "error.h"
#include "image.h"
#include "sized.h"
#include "util/arith.h"
#include "util/zero.h"

#define PAGE 4096u

/* The sizing backend: a file length and its non-zero pages, sorted. */
struct sparse {
  uint64_t size;
  uint64_t *index;   /* page numbers, ascending */
  uint8_t **pages;
  size_t count, cap;
};

/* Position of page n in s (or where it would go). */
static size_t find_page(const struct sparse *s, uint64_t n)
{
  size_t lo = 0, hi = s->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->index[mid] < n)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int add_page(struct sparse *s, size_t at, uint64_t n)
{
  if (s->count == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 64;
    uint64_t *index = vhd_realloc(s->index, cap * sizeof *index);
    if (index)
      s->index = index;
    uint8_t **pages = index ? vhd_realloc(s->pages, cap * sizeof *pages) : NULL;
    if (!pages)
      return -ENOMEM;
    s->pages = pages;
    s->cap = cap;
  }
  uint8_t *page = vhd_calloc(1, PAGE);
  if (!page)
    return -ENOMEM;
  memmove(s->index + at + 1, s->index + at, (s->count - at) * sizeof *s->index);
  memmove(s->pages + at + 1, s->pages + at, (s->count - at) * sizeof *s->pages);
  s->index[at] = n;
  s->pages[at] = page;
  s->count++;
  return 0;
}

static int sparse_pread(void *o, void *buf, size_t count, uint64_t offset)
{
  struct sparse *s = o;
  uint8_t *out = buf;
  while (count) {
    uint64_t n = offset / PAGE;
    uint32_t in = (uint32_t)(offset % PAGE), len = (uint32_t)min_u64(count, PAGE - in);
    size_t at = find_page(s, n);
    if (at < s->count && s->index[at] == n)
      memcpy(out, s->pages[at] + in, len);
    else
      memset(out, 0, len);
    out += len;
    offset += len;
    count -= len;
  }
  return 0;
}

static int sparse_pwrite(void *o, const void *buf, size_t count, uint64_t offset)
{
  struct sparse *s = o;
  const uint8_t *data = buf;
  s->size = max_u64(s->size, offset + count);
  while (count) {
    uint64_t n = offset / PAGE;
    uint32_t in = (uint32_t)(offset % PAGE), len = (uint32_t)min_u64(count, PAGE - in);
    size_t at = find_page(s, n);
    bool have = at < s->count && s->index[at] == n;
    if (!have && !buffer_is_zero(data, len)) {
      if (add_page(s, at, n) < 0)
        return -ENOMEM;
      have = true;
    }
    if (have)
      memcpy(s->pages[at] + in, data, len);
    data += len;
    offset += len;
    count -= len;
  }
  return 0;
}

static int sparse_get_size(void *o, uint64_t *size)
{
  *size = ((struct sparse *)o)->size;
  return 0;
}

static int sparse_set_size(void *o, uint64_t size)
{
  struct sparse *s = o;
  size_t keep = find_page(s, (size + PAGE - 1) / PAGE);
  for (size_t i = keep; i < s->count; i++)
    vhd_free(s->pages[i]);
  s->count = keep;
  if (size % PAGE && keep && s->index[keep - 1] == size / PAGE)
    memset(s->pages[keep - 1] + size % PAGE, 0, PAGE - size % PAGE);
  s->size = size;
  return 0;
}

static void sparse_close(void *o)
{
  struct sparse *s = o;
  for (size_t i = 0; i < s->count; i++)
    vhd_free(s->pages[i]);
  vhd_free(s->index);
  vhd_free(s->pages);
  vhd_free(s);
}

static const struct vhd_io_ops sparse_ops = {
  .pread = sparse_pread,
  .pwrite = sparse_pwrite,
  .get_size = sparse_get_size,
  .set_size = sparse_set_size,
  .close = sparse_close,
};

/* What the output's file costs: empty, and what its first block, each
 * block after it and its last block add (the first may cost more: a VHD
 * pads the first to a 4 KiB boundary from the end of its header; a
 * partial last block may cost less). */
struct costs {
  uint64_t empty, first, next, last;
  uint64_t block_size, blocks;
  bool fixed;   /* fixed or raw: the file is all there from the start */
};

/* The file's length after a byte is written into block b and flushed. */
static int grow_by_block(vhd_image *img, struct sparse *s, uint64_t b, uint64_t bs,
                         uint64_t *size)
{
  static const uint8_t one = 1;
  int r = vhd_pwrite(img, &one, 1, b * bs);
  if (r == 0)
    r = vhd_flush(img);
  *size = s->size;
  return r;
}

static int measure_costs(const char *name, const struct vhd_create_params *p,
                         struct costs *c)
{
  struct sparse *s = vhd_calloc(1, sizeof *s);
  if (!s)
    return vhd_error(ENOMEM, "%s: out of memory", name);
  vhd_io *io;
  int r = vhd_io_new(&sparse_ops, s, name, VHD_IO_RDWR, &io);
  if (r < 0) {
    sparse_close(s);
    return r;
  }
  vhd_image *img;
  if ((r = vhd_create_io(io, p, &img)) < 0)   /* closes io on failure */
    return r;
  struct vhd_info info;
  if ((r = vhd_flush(img)) < 0 || (r = vhd_get_info(img, &info)) < 0)
    goto out;
  *c = (struct costs){ .empty = s->size, .block_size = info.block_size,
                       .blocks = info.total_blocks, .fixed = info.type != VHD_TYPE_DYNAMIC };
  if (c->fixed || c->blocks == 0)
    goto out;
  uint64_t with_first, with_last;
  if ((r = grow_by_block(img, s, 0, c->block_size, &with_first)) < 0)
    goto out;
  c->first = with_first - c->empty;
  c->next = c->last = c->first;
  if (c->blocks > 2) {
    uint64_t with_second;
    if ((r = grow_by_block(img, s, 1, c->block_size, &with_second)) < 0)
      goto out;
    c->next = with_second - with_first;
    with_first = with_second;
  }
  if (c->blocks > 1 &&
      (r = grow_by_block(img, s, c->blocks - 1, c->block_size, &with_last)) == 0)
    c->last = with_last - with_first;
out:
  if (r < 0)
    vhd_error_prefix(name);
  vhd_close(img);
  return r;
}

/* How many of the output's blocks (of bs bytes) src's block status says
 * hold data, and whether the last one is among them. */
static int data_blocks(vhd_image *src, uint64_t bs, uint64_t blocks, uint64_t *count,
                       bool *last)
{
  *count = 0;
  *last = false;
  uint64_t next = 0;   /* first block not counted yet */
  for (uint64_t off = 0; off < src->virtual_size;) {
    unsigned status;
    uint64_t run;
    int r = vhd_block_status(src, off, src->virtual_size - off, &status, &run, NULL);
    if (r < 0)
      return r;
    if (!(status & VHD_STATUS_ZERO)) {
      uint64_t from = max_u64(off / bs, next), to = (off + run - 1) / bs + 1;
      if (from < to) {
        *count += to - from;
        next = to;
      }
      *last = *last || to == blocks;
    }
    off += run;
  }
  return 0;
}

int measure_image(vhd_image *src, const struct vhd_create_params *params,
                  struct vhd_measure_result *result)
{
  vhd_error_clear();
  const char *name = src ? src->path : "measure";
  struct vhd_create_params p = *params;
  if (p.type == VHD_TYPE_DIFFERENCING || p.parent)
    return vhd_error(EINVAL, "%s: only standalone outputs can be measured", name);
  if (p.size == 0 && src)
    p.size = src->virtual_size;
  if (p.size == 0)
    return vhd_error(EINVAL, src ? "%s: the source is empty (0 bytes) and an image cannot "
                     "have a virtual size of 0" : "%s: give a source image or a size to "
                     "measure", name);
  if (src && p.size < src->virtual_size)
    return vhd_error(EINVAL, "%s: the size %llu is smaller than the source's %llu", name,
                     (unsigned long long)p.size, (unsigned long long)src->virtual_size);
  p.flags &= ~VHD_CREATE_OVERWRITE;
  struct costs c = { 0 };
  int r = measure_costs(name, &p, &c);
  if (r < 0)
    return r;
  if (c.fixed) {   /* raw too: its length, as qemu-img measure says */
    *result = (struct vhd_measure_result){ .required = c.empty, .fully_allocated = c.empty };
    return 0;
  }
  uint64_t count = 0;
  bool last = false;
  if (src && (r = data_blocks(src, c.block_size, c.blocks, &count, &last)) < 0)
    return r;
  /* Blocks go in file order: the first one, then the others at the
   * cost of the next, the last one at its own (c.last <= c.next). */
  result->fully_allocated = c.empty + c.first;
  if (c.blocks > 1)
    result->fully_allocated += (c.blocks - 2) * c.next + c.last;
  result->required = c.empty;
  if (count)
    result->required += c.first + (count - 1) * c.next - (last ? c.next - c.last : 0);
  return 0;
}
