/* SPDX-License-Identifier: BSD-3-Clause */
/* Partial trims that add up. A file system trims what it frees, a few
 * KiB to a few MiB at a time, so a block is rarely trimmed whole in one
 * request; this log remembers, per block, which parts the trims of this
 * open covered, so that the driver can free the block once they cover it
 * all. Writes clear what they overwrite: a part written after its trim
 * holds data again.
 *
 * Bounded: at most TRIMS_MAX_BLOCKS blocks are followed at once (the
 * least recently trimmed is forgotten first), each with one bit per unit
 * of at least a logical sector, at most 8 KiB of bits a block. Forgetting
 * only means a block is not freed; it is never freed wrongly.
 *
 * Locking: add and forget run under the image's exclusive lock (discard);
 * trims_written runs under the shared lock too (parallel writes), so the
 * entries have their own mutex. */
#ifndef LIBVHD_TRIMS_H
#define LIBVHD_TRIMS_H

#include "image.h"

#define TRIMS_MAX_BLOCKS 64u

/* The log of img for blocks of block_size bytes, made on first use (the
 * image owns it; image_free frees it). NULL when out of memory. */
struct trim_log *trims_of(struct vhd_image *img, uint64_t block_size);
/* Record that [inblk, inblk+len) of block was trimmed. True when the
 * trims now cover the block's first `visible` bytes (the last block of a
 * disk may be cut short); the block is then forgotten. */
bool trims_add(struct trim_log *t, uint64_t block, uint64_t inblk, uint64_t len,
               uint64_t visible);
void trims_forget(struct trim_log *t, uint64_t block);
/* [off, off+len) of the virtual disk was written. */
void trims_written(struct trim_log *t, uint64_t off, uint64_t len);
void trims_destroy(struct trim_log *t);

/* Give back the host pages (4 KiB) that lie wholly inside [off, off+len)
 * of io's file; the bytes around them are left as they are. 0, or
 * -ENOTSUP when the host cannot punch, or -errno. Never writes. */
int trims_punch_pages(vhd_io *io, uint64_t off, uint64_t len);

#endif
