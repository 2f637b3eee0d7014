/* SPDX-License-Identifier: BSD-3-Clause */
/* The 1024-byte dynamic disk header of dynamic and differencing VHDs and
 * the eight parent locators inside it. */
#ifndef LIBVHD_VHD_DYN_HEADER_H
#define LIBVHD_VHD_DYN_HEADER_H

#include "platform.h"

#define VHD_HEADER_SIZE 1024u
#define VHD_HEADER_COOKIE "cxsparse"
#define VHD_HEADER_VERSION 0x00010000u
#define VHD_DEFAULT_BLOCK_SIZE (2u << 20)

/* Limits on what a dynamic header may claim, the same for create, resize
 * and open, so every file this library writes opens again.
 *
 * Block size: the spec sets none. Virtual PC, Windows/Hyper-V, Disk2VHD,
 * blktap and qemu write 2 MiB blocks (Hyper-V also 512 KiB); 256 MiB is
 * the largest VHDX block (MS-VHDX 2.6.2.1), and no VHD writer goes past
 * it. Bigger blocks only let a one-byte write grow the file by gigabytes.
 *
 * BAT entries: the BAT is held in memory (4 bytes an entry, plus 9 for the
 * sector bitmap cache), so its length bounds the memory of every open.
 * The largest real BAT is a 2040 GiB disk (the VHD maximum) in Hyper-V's
 * 512 KiB blocks: 4,177,920 entries. 4 Mi entries admit it and keep the
 * tables of any open near 50 MiB; smaller blocks still serve disks up to
 * 4 Mi blocks (16 GiB in 4 KiB blocks). */
#define VHD_MIN_BLOCK_SIZE 512u
#define VHD_MAX_BLOCK_SIZE (256u << 20)
#define VHD_MAX_BAT_ENTRIES (4u << 20)
#define VHD_MAX_LOCATORS 8
#define VHD_PARENT_NAME_BYTES 512u

/* Locator platform codes (big-endian ASCII). */
#define VHD_LOC_NONE 0x00000000u
#define VHD_LOC_WI2R 0x57693272u  /* "Wi2r": relative, ANSI (deprecated) */
#define VHD_LOC_WI2K 0x5769326bu  /* "Wi2k": absolute, ANSI (deprecated) */
#define VHD_LOC_W2RU 0x57327275u  /* "W2ru": relative, UTF-16LE */
#define VHD_LOC_W2KU 0x57326b75u  /* "W2ku": absolute, UTF-16LE */
#define VHD_LOC_MAC 0x4d616320u   /* "Mac ": Mac OS alias record, opaque */
#define VHD_LOC_MACX 0x4d616358u  /* "MacX": file:// URL, UTF-8 */

/* A locator payload longer than this cannot be a path (Windows paths stop
 * at 32767 UTF-16 units); such locators are not decoded. */
#define VHD_LOCATOR_MAX_PAYLOAD 65536u

struct vhd_locator {
  uint32_t code;
  uint32_t data_space;   /* as stored: sectors or bytes, see below */
  uint32_t data_length;  /* payload bytes */
  uint32_t reserved;
  uint64_t data_offset;  /* file offset of the payload */
};

struct vhd_dyn_header {
  uint8_t cookie[8];
  uint64_t data_offset;
  uint64_t table_offset;
  uint32_t version;
  uint32_t max_table_entries;
  uint32_t block_size;
  uint32_t checksum;      /* as stored; encode computes its own */
  uint8_t parent_unique_id[16];
  uint32_t parent_timestamp;
  uint32_t reserved1;
  uint8_t parent_unicode_name[VHD_PARENT_NAME_BYTES];  /* UTF-16BE */
  struct vhd_locator loc[VHD_MAX_LOCATORS];
};

void vhd_header_decode(const uint8_t buf[VHD_HEADER_SIZE], struct vhd_dyn_header *h);
/* Writes all 1024 bytes (reserved areas zero) with a fresh checksum. */
void vhd_header_encode(const struct vhd_dyn_header *h, uint8_t buf[VHD_HEADER_SIZE]);
bool vhd_header_checksum_ok(const uint8_t buf[VHD_HEADER_SIZE]);

/* Bytes reserved for a payload. The spec counts platform_data_space in
 * sectors, Virtual PC and Hyper-V store bytes: below 512 it is sectors, a
 * multiple of 512 is bytes, anything else is invalid (false). */
bool vhd_locator_space_bytes(uint32_t data_space, uint64_t *bytes);

/* "W2ru" etc.; NULL for unknown codes. */
const char *vhd_locator_code_name(uint32_t code);

/* Whether a locator's payload is a path this library can decode. */
bool vhd_locator_is_path(uint32_t code);

/* The payload of a path locator as stored, in UTF-8 (backslashes and
 * "file://" kept); trailing NULs dropped. NULL on allocation failure.
 * Wi2r/Wi2k bytes are taken as Latin-1. */
char *vhd_locator_decode(uint32_t code, const uint8_t *payload, size_t len);

/* Encode a stored-form path (UTF-8) for the locator code into dst.
 * Returns the byte count, -EINVAL for bad UTF-8, -ERANGE when too long. */
int vhd_locator_encode(uint32_t code, const char *stored, uint8_t *dst, size_t dst_size);

#endif
