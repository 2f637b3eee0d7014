/* SPDX-License-Identifier: BSD-3-Clause */
/* Text output on the firmware console (which OVMF and most firmware also
 * copy to the serial port). Formats with the core's vhd_snprintf, so the
 * same %s/%u/%llx directives work everywhere in the loader. */
#ifndef VHDBOOT_CONSOLE_H
#define VHDBOOT_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Print a UTF-8 line fragment; "\n" becomes CR LF. */
void con_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void con_vprintf(const char *fmt, va_list ap);

/* Decode UTF-8 into UCS-2 (characters outside the BMP become '?').
 * Returns the number of CHAR16 written before the terminating NUL, or -1
 * when dst (of dst_len CHAR16) is too small. */
int utf8_to_ucs2(const char *src, uint16_t *dst, size_t dst_len);

/* Encode UCS-2 (NUL-terminated or n units, whichever ends first) as UTF-8
 * into dst; always NUL-terminates when dst_len > 0. Returns the length or
 * -1 when it did not fit. */
int ucs2_to_utf8(const uint16_t *src, size_t n, char *dst, size_t dst_len);

#endif
