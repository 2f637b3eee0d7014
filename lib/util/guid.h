/* SPDX-License-Identifier: BSD-3-Clause */
/* UUIDs and GUIDs. VHD stores unique ids as 16 plain bytes (printed in RFC
 * 4122 order); VHDX stores GUIDs in Microsoft's mixed-endian layout. */
#ifndef LIBVHD_GUID_H
#define LIBVHD_GUID_H

#include <stdbool.h>
#include <stdint.h>

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (37 bytes with the NUL), from
 * bytes in RFC 4122 order. */
void uuid_format(const uint8_t id[16], char out[37]);
/* The same text from a GUID stored in the Microsoft layout (first three
 * fields little-endian), as Windows prints it. */
void guid_format_ms(const uint8_t guid[16], char out[37]);
/* Parse text (with or without braces, any case) into the Microsoft layout.
 * false on malformed text. */
bool guid_parse_ms(const char *text, uint8_t guid[16]);
bool guid_is_zero(const uint8_t id[16]);

#endif
