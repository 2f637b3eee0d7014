/* SPDX-License-Identifier: BSD-3-Clause */
/* The fuzz harnesses' sparse input form, shared by fuzz_open and
 * fuzz_chain: "VHDFUZZS", a u64 LE file size, then records of u64 LE
 * offset, u32 LE length and that many bytes; the rest of the file reads as
 * zeros. fuzz/sparsify.py writes it. Lets a VHDX (structures at 1 MiB
 * multiples) fit in a small input. */
#ifndef FUZZ_SPARSE_IO_H
#define FUZZ_SPARSE_IO_H

#include <stdint.h>
#include <string.h>

#include "vhd.h"

#define SPARSE_MAGIC "VHDFUZZS"
#define SPARSE_MAX_RECORDS 4096

struct record {
  uint64_t offset;
  uint32_t length;
  const uint8_t *data;
};

struct sparse {
  uint64_t size;
  unsigned count;
  struct record rec[SPARSE_MAX_RECORDS];
};

static inline uint64_t get_le(const uint8_t *p, unsigned n)
{
  uint64_t v = 0;
  for (unsigned i = n; i-- > 0; )
    v = v << 8 | p[i];
  return v;
}

/* Parse the sparse form; 0 when the input is not (a valid) one. */
static inline int sparse_parse(const uint8_t *data, size_t size, struct sparse *s)
{
  if (size < 16 || memcmp(data, SPARSE_MAGIC, 8) != 0)
    return 0;
  s->size = get_le(data + 8, 8);
  s->count = 0;
  size_t pos = 16;
  while (pos + 12 <= size && s->count < SPARSE_MAX_RECORDS) {
    struct record *r = &s->rec[s->count];
    r->offset = get_le(data + pos, 8);
    r->length = (uint32_t)get_le(data + pos + 8, 4);
    pos += 12;
    if (r->length > size - pos)
      r->length = (uint32_t)(size - pos);
    r->data = data + pos;
    pos += r->length;
    /* Keep records inside the declared file. */
    if (r->offset >= s->size)
      continue;
    if (r->length > s->size - r->offset)
      r->length = (uint32_t)(s->size - r->offset);
    s->count++;
  }
  return 1;
}

static inline int sparse_pread(void *opaque, void *buf, size_t count, uint64_t offset)
{
  struct sparse *s = opaque;
  memset(buf, 0, count);
  if (offset >= s->size)
    return 0;
  uint64_t end = offset + count;
  for (unsigned i = 0; i < s->count; i++) {
    const struct record *r = &s->rec[i];
    uint64_t rs = r->offset, re = r->offset + r->length;
    uint64_t lo = rs > offset ? rs : offset, hi = re < end ? re : end;
    if (lo < hi)
      memcpy((uint8_t *)buf + (lo - offset), r->data + (lo - rs), (size_t)(hi - lo));
  }
  return 0;
}

static inline int sparse_get_size(void *opaque, uint64_t *size)
{
  *size = ((struct sparse *)opaque)->size;
  return 0;
}

static inline void sparse_close(void *opaque) { (void)opaque; }

static const struct vhd_io_ops sparse_ops = {
  .pread = sparse_pread,
  .get_size = sparse_get_size,
  .close = sparse_close,
};

#endif
