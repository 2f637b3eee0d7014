/* SPDX-License-Identifier: BSD-3-Clause */
/* Which units of a file structures have claimed, for the checks that find
 * two structures (tables, clusters, grains, blocks) in one place. One bit
 * per unit of 2^shift bytes; bounded so a check's memory stays small. */
#ifndef LIBVHD_UTIL_CLAIMS_H
#define LIBVHD_UTIL_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLAIMS_UNITS_MAX (1ull << 27)   /* a 16 MiB map */

struct claims {
  uint8_t *used;
  uint64_t units;
  unsigned shift;
};

/* For bytes [0, size) in units of 2^shift: 0, -ENOMEM, or -E2BIG (no
 * message for either) when more than CLAIMS_UNITS_MAX units would be needed. */
int claims_init(struct claims *c, uint64_t size, unsigned shift);
/* Claim the units [off, off+len) touches: false when one was claimed
 * before (all are claimed either way). Units past size are ignored. */
bool claims_take(struct claims *c, uint64_t off, uint64_t len);
void claims_free(struct claims *c);

#endif
