/* SPDX-License-Identifier: BSD-3-Clause */
/* Decompression with zlib: one call per compressed cluster or grain. */
#include "codec/inflate.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

int inflate_buffer(enum inflate_framing framing, const void *in, size_t in_len, void *out,
                   size_t out_cap, size_t *produced)
{
  z_stream s;
  memset(&s, 0, sizeof s);
  *produced = 0;
  if (in_len > UINT_MAX || out_cap > UINT_MAX)
    return -EIO;
  /* -15 / 15: the largest window, which also reads streams made with a
   * smaller one (qemu writes qcow2 clusters with -12). */
  if (inflateInit2(&s, framing == INFLATE_RAW ? -15 : 15) != Z_OK)
    return -ENOMEM;
  s.next_in = (Bytef *)(uintptr_t)in;
  s.avail_in = (uInt)in_len;
  s.next_out = out;
  s.avail_out = (uInt)out_cap;
  int z = inflate(&s, Z_FINISH);
  *produced = out_cap - s.avail_out;
  inflateEnd(&s);
  /* Z_BUF_ERROR with a full buffer: the output is complete and the input
   * holds more (the next cluster's bytes, or padding). */
  if (z == Z_STREAM_END || (z == Z_BUF_ERROR && s.avail_out == 0))
    return 0;
  return -EIO;
}
