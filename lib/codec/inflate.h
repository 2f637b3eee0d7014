/* SPDX-License-Identifier: BSD-3-Clause */
/* Decompression for the read-only foreign drivers, with zlib (hosted
 * builds only: the freestanding core has no zlib, so the drivers that
 * need it are hosted too, see lib/CMakeLists.txt). */
#ifndef LIBVHD_CODEC_INFLATE_H
#define LIBVHD_CODEC_INFLATE_H

#include <stddef.h>

/* The framing of a deflate stream, as zlib's windowBits selects it. */
enum inflate_framing {
  INFLATE_RAW,    /* bare RFC 1951 (qcow2 clusters) */
  INFLATE_ZLIB,   /* RFC 1950 header and Adler-32 trailer (VMDK grains) */
};

/* Inflate in[0..in_len) into out, at most out_cap bytes: 0 with *produced
 * set when the stream ended or out filled up (the input may run on past
 * the stream's end: callers read an upper bound), -EIO when the data is not
 * a valid stream, -ENOMEM when zlib cannot start. No message: the caller
 * names the file and the structure. */
int inflate_buffer(enum inflate_framing framing, const void *in, size_t in_len, void *out,
                   size_t out_cap, size_t *produced);

#endif
