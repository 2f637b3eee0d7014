/* SPDX-License-Identifier: BSD-3-Clause */
/* Growable arrays: one rule for growing, shared by every list the library
 * keeps (free slots, the log overlay, pending bitmap sectors, BAT spans). */
#ifndef LIBVHD_ARRAY_H
#define LIBVHD_ARRAY_H

#include <stddef.h>

/* items (cap elements of elem bytes allocated, count used) with room for
 * one more: itself while there is room, else reallocated with the
 * capacity doubled (starting at first) and *cap updated. NULL when out of
 * memory; items and *cap are then unchanged. */
void *array_grow(void *items, size_t *cap, size_t count, size_t elem, size_t first);

#endif
