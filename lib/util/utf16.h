/* SPDX-License-Identifier: BSD-3-Clause */
/* UTF-16 <-> UTF-8 for names stored in images (VHD parent name: UTF-16BE;
 * VHD W2ru/W2ku locators and every VHDX string: UTF-16LE). Decoding is
 * lenient: unpaired surrogates become U+FFFD; a NUL ends the string. */
#ifndef LIBVHD_UTF16_H
#define LIBVHD_UTF16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode nbytes of UTF-16 (big_endian selects the order) into a new
 * NUL-terminated UTF-8 string (vhd_malloc); NULL on allocation failure. */
char *utf16_to_utf8(const uint8_t *src, size_t nbytes, bool big_endian);

/* Encode a UTF-8 string as UTF-16 into dst (at most dst_size bytes, no NUL
 * written). Returns the byte length, or -EINVAL for invalid UTF-8 and
 * -ENAMETOOLONG... (-ERANGE) when it does not fit. */
int utf8_to_utf16(const char *src, uint8_t *dst, size_t dst_size, bool big_endian);

#endif
