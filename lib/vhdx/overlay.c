/* SPDX-License-Identifier: BSD-3-Clause */
/* Metadata reads. The spec lets nobody read a VHDX with a pending log
 * before replaying it, and a read-only opener must not write: so the log
 * is replayed into this overlay, a list of file ranges in replay order,
 * and every metadata read lays them over what the file holds. Payload
 * data never goes through the log, so data reads do not need it.
 *
 * The list is scanned linearly: a real log holds a few hundred sectors at
 * most, and an empty overlay (the usual case) costs nothing. */
#include "vhdx.h"
#include "error.h"
#include "util/array.h"

int vhdx_overlay_add(struct vhdx_overlay *o, uint64_t offset, uint64_t length,
                     const uint8_t *data)
{
  struct vhdx_overlay_rec *n = array_grow(o->rec, &o->cap, o->count, sizeof *n, 16);
  if (!n)
    return -ENOMEM;
  o->rec = n;
  uint8_t *copy = NULL;
  if (data) {
    copy = vhd_malloc((size_t)length);
    if (!copy)
      return -ENOMEM;
    memcpy(copy, data, (size_t)length);
  }
  o->rec[o->count++] = (struct vhdx_overlay_rec){ offset, length, copy };
  return 0;
}

void vhdx_overlay_apply(const struct vhdx_overlay *o, uint8_t *buf, size_t len, uint64_t off)
{
  uint64_t end = off + len;
  for (size_t i = 0; i < o->count; i++) {
    const struct vhdx_overlay_rec *r = &o->rec[i];
    uint64_t a = r->offset > off ? r->offset : off;
    uint64_t b = r->offset + r->length < end ? r->offset + r->length : end;
    if (a >= b)
      continue;
    if (r->data)
      memcpy(buf + (a - off), r->data + (a - r->offset), (size_t)(b - a));
    else
      memset(buf + (a - off), 0, (size_t)(b - a));
  }
}

void vhdx_overlay_free(struct vhdx_overlay *o)
{
  for (size_t i = 0; i < o->count; i++)
    vhd_free(o->rec[i].data);
  vhd_free(o->rec);
  memset(o, 0, sizeof *o);
}

/* Lay the pending (not yet logged) metadata sectors over buf. */
static void apply_pending(const struct vhdx *s, uint8_t *buf, size_t len, uint64_t off)
{
  /* First pending sector that can reach off. */
  size_t lo = 0, hi = s->npend;
  uint64_t from = off >= VHDX_SECTOR ? off - (VHDX_SECTOR - 1) : 0;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->pend[mid].offset < from)
      lo = mid + 1;
    else
      hi = mid;
  }
  uint64_t end = off + len;
  for (size_t i = lo; i < s->npend && s->pend[i].offset < end; i++) {
    const struct vhdx_pending *p = &s->pend[i];
    uint64_t a = p->offset > off ? p->offset : off;
    uint64_t b = p->offset + VHDX_SECTOR < end ? p->offset + VHDX_SECTOR : end;
    if (a < b)
      memcpy(buf + (a - off), p->data + (a - p->offset), (size_t)(b - a));
  }
}

int vhdx_meta_read(struct vhdx *s, void *buf, size_t len, uint64_t off)
{
  int r = io_pread(s->io, buf, len, off);
  if (r < 0)
    return r;
  if (s->overlay.count)
    vhdx_overlay_apply(&s->overlay, buf, len, off);
  if (s->npend)
    apply_pending(s, buf, len, off);
  return 0;
}
