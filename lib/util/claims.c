/* SPDX-License-Identifier: BSD-3-Clause */
/* The claimed-units bitmap of the overlap checks. */
#include "util/claims.h"
#include "platform.h"

int claims_init(struct claims *c, uint64_t size, unsigned shift)
{
  c->shift = shift;
  c->units = (size >> shift) + 1;
  c->used = NULL;
  if (c->units > CLAIMS_UNITS_MAX)
    return -E2BIG;
  c->used = vhd_calloc(1, (size_t)(c->units / 8 + 1));
  return c->used ? 0 : -ENOMEM;
}

bool claims_take(struct claims *c, uint64_t off, uint64_t len)
{
  bool fresh = true;
  uint64_t last = len ? (off + len - 1) >> c->shift : 0;
  for (uint64_t u = off >> c->shift; len && u <= last && u < c->units; u++) {
    uint8_t bit = (uint8_t)(1u << (u % 8));
    if (c->used[u / 8] & bit)
      fresh = false;
    c->used[u / 8] |= bit;
  }
  return fresh;
}

void claims_free(struct claims *c)
{
  vhd_free(c->used);
  c->used = NULL;
}
