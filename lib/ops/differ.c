/* SPDX-License-Identifier: BSD-3-Clause */
/* differ_walk: where two virtual disks read differently, found a piece at
 * a time with block status first, so holes are never read. */
#include <string.h>

#include "differ.h"
#include "error.h"
#include "image.h"
#include "util/arith.h"
#include "util/zero.h"

#define PIECE (1u << 20)

/* Whether a run starting at off reads as zeros, and how long it is
 * (at most max). */
static int zero_run(vhd_image *img, uint64_t off, uint64_t max, bool *zero, uint64_t *run)
{
  unsigned status;
  int r = vhd_block_status(img, off, max, &status, run, NULL);
  if (r < 0)
    return r;
  *zero = (status & VHD_STATUS_ZERO) != 0;
  return 0;
}

/* Read len bytes at off into buf, or zeros when the run reads as zeros. */
static int read_piece(vhd_image *img, bool zero, uint8_t *buf, uint32_t len, uint64_t off)
{
  if (zero) {
    memset(buf, 0, len);
    return 0;
  }
  return vhd_pread(img, buf, len, off);
}

/* The sectors of the piece where a and b differ, each maximal run handed
 * to fn. */
static int report_runs(const uint8_t *a, const uint8_t *b, uint32_t len, uint64_t off,
                       differ_fn fn, void *opaque)
{
  uint32_t pos = 0;
  while (pos < len) {
    uint32_t n = (uint32_t)min_u64(DIFFER_SECTOR, len - pos);
    if (memcmp(a + pos, b + pos, n) == 0) {
      pos += n;
      continue;
    }
    uint32_t start = pos;
    while (pos < len) {
      n = (uint32_t)min_u64(DIFFER_SECTOR, len - pos);
      if (memcmp(a + pos, b + pos, n) == 0)
        break;
      pos += n;
    }
    int r = fn(opaque, off + start, pos - start, a + start);
    if (r != 0)
      return r;
  }
  return 0;
}

int differ_walk(vhd_image *a, vhd_image *b, uint64_t size, differ_fn fn, void *opaque,
                vhd_progress_fn progress, void *progress_opaque)
{
  uint8_t *buf = vhd_aligned_alloc(4096, 2 * (size_t)PIECE);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory for the compare buffers", a->path);
  uint8_t *abuf = buf, *bbuf = buf + PIECE;
  int r = 0;
  for (uint64_t off = 0; off < size && r == 0;) {
    bool az, bz;
    uint64_t arun, brun;
    uint64_t max = min_u64(size - off, PIECE - off % PIECE);
    if ((r = zero_run(a, off, max, &az, &arun)) < 0 ||
        (r = zero_run(b, off, max, &bz, &brun)) < 0)
      break;
    uint32_t len = (uint32_t)min_u64(arun, brun);
    if (!(az && bz)) {
      if ((r = read_piece(a, az, abuf, len, off)) < 0 ||
          (r = read_piece(b, bz, bbuf, len, off)) < 0)
        break;
      r = report_runs(abuf, bbuf, len, off, fn, opaque);
    }
    off += len;
    if (r == 0 && progress && progress(progress_opaque, off, size))
      r = vhd_error(ECANCELED, "%s: cancelled", a->path);
  }
  vhd_aligned_free(buf);
  return r;
}

static int stop_at_first(void *opaque, uint64_t offset, uint32_t length, const uint8_t *data)
{
  (void)length;
  (void)data;
  *(uint64_t *)opaque = offset;
  return 1;
}

int differ_first(vhd_image *a, vhd_image *b, uint64_t size, uint64_t *found,
                 vhd_progress_fn progress, void *progress_opaque)
{
  *found = UINT64_MAX;
  int r = differ_walk(a, b, size, stop_at_first, found, progress, progress_opaque);
  return r < 0 ? r : 0;
}

int differ_first_nonzero(vhd_image *img, uint64_t offset, uint64_t length,
                         uint64_t *found)
{
  uint8_t *buf = vhd_aligned_alloc(4096, 2 * (size_t)PIECE);
  if (!buf)
    return vhd_error(ENOMEM, "%s: out of memory for the compare buffers", img->path);
  memset(buf + PIECE, 0, PIECE);
  *found = UINT64_MAX;
  int r = 0;
  for (uint64_t off = offset, end = offset + length; off < end && r == 0;) {
    bool zero;
    uint64_t run;
    if ((r = zero_run(img, off, min_u64(end - off, PIECE - off % PIECE), &zero, &run)) < 0)
      break;
    if (!zero && (r = vhd_pread(img, buf, (uint32_t)run, off)) == 0)
      r = report_runs(buf, buf + PIECE, (uint32_t)run, off, stop_at_first, found);
    off += run;
  }
  vhd_aligned_free(buf);
  return r < 0 ? r : 0;
}
