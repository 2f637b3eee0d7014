/* SPDX-License-Identifier: BSD-3-Clause */
/* Small arithmetic on sizes and offsets, one copy for the whole library. */
#ifndef LIBVHD_ARITH_H
#define LIBVHD_ARITH_H

#include <stdint.h>

static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
/* v rounded up to a multiple of a (a > 0; no overflow check). */
static inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

#endif
