/* SPDX-License-Identifier: BSD-3-Clause */
/* mode=cow: the blocks written to the virtual disk, kept in memory. Reads
 * see them first; the image is never written; everything is lost at
 * reset. A hash table of block number -> block contents. */
#ifndef VHDBOOT_OVERLAY_H
#define VHDBOOT_OVERLAY_H

#include <stddef.h>
#include <stdint.h>

struct overlay;

int overlay_new(uint32_t block_size, struct overlay **out);
void overlay_free(struct overlay *ov);
/* The stored block, or NULL when it was never written. */
const uint8_t *overlay_get(const struct overlay *ov, uint64_t block);
/* Store (or replace) a block. -ENOMEM when memory runs out. */
int overlay_put(struct overlay *ov, uint64_t block, const uint8_t *data);
uint64_t overlay_blocks(const struct overlay *ov);

#endif
