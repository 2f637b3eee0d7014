/* SPDX-License-Identifier: BSD-3-Clause */
/* A small vsnprintf for the core, which must not depend on libc's stdio.
 * Supports %s %c %d %i %u %x %X %p %% with the l, ll, z length modifiers,
 * '-' and '0' flags, a field width and (for %s) a precision, including '*'.
 * Always NUL-terminates when size > 0; returns the length it wanted. */
#ifndef LIBVHD_STRFMT_H
#define LIBVHD_STRFMT_H

#include <stdarg.h>
#include <stddef.h>

int vhd_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int vhd_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Allocated copy (vhd_malloc); NULL on allocation failure. */
char *vhd_strdup(const char *s);
char *vhd_strndup(const char *s, size_t n);

#endif
