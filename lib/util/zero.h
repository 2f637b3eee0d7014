/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef LIBVHD_ZERO_H
#define LIBVHD_ZERO_H

#include <stdbool.h>
#include <stddef.h>

/* True when all len bytes at p are zero. Fast on large buffers. */
bool buffer_is_zero(const void *p, size_t len);

#endif
