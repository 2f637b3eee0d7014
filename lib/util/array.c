/* SPDX-License-Identifier: BSD-3-Clause */
#include "array.h"
#include "platform.h"

void *array_grow(void *items, size_t *cap, size_t count, size_t elem, size_t first)
{
  if (count < *cap)
    return items;
  size_t n = *cap ? *cap * 2 : first;
  if (n < *cap || n > (size_t)-1 / elem)
    return NULL;
  void *p = vhd_realloc(items, n * elem);
  if (p)
    *cap = n;
  return p;
}
