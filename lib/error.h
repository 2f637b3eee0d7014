/* SPDX-License-Identifier: BSD-3-Clause */
/* Setting the per-thread last error. Every failing path of the core sets
 * one message that names the file and what is wrong, then returns -errno. */
#ifndef LIBVHD_ERROR_H
#define LIBVHD_ERROR_H

#include "platform.h"

/* Record errnum and a formatted message (lib/util/strfmt.h syntax);
 * returns -errnum so callers can write `return vhd_error(...)`. */
int vhd_error(int errnum, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int vhd_verror(int errnum, const char *fmt, va_list ap);

/* Clear the slot (called at the start of every public entry point that
 * might otherwise leave a stale message). */
void vhd_error_clear(void);

/* Prefix the current message with "prefix: " (used when a lower layer's
 * message needs the name of the image that led to it). */
void vhd_error_prefix(const char *prefix);

#endif
