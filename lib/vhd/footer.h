/* SPDX-License-Identifier: BSD-3-Clause */
/* The VHD hard disk footer: the 512-byte structure at the end of every VHD
 * (and copied to offset 0 of dynamic and differencing files), its checksum,
 * the CHS geometry algorithm and the rule that picks the virtual size. */
#ifndef LIBVHD_VHD_FOOTER_H
#define LIBVHD_VHD_FOOTER_H

#include "platform.h"

#define VHD_SECTOR_SIZE 512u
#define VHD_FOOTER_SIZE 512u
/* Images made before Virtual PC 2004 end with a footer one byte short. */
#define VHD_FOOTER_SIZE_OLD 511u
#define VHD_FOOTER_COOKIE "conectix"

#define VHD_FEATURE_TEMPORARY 0x1u
#define VHD_FEATURE_RESERVED 0x2u   /* must always be set */
#define VHD_VERSION_1_0 0x00010000u
#define VHD_DATA_OFFSET_NONE UINT64_MAX   /* fixed disks have no header */

/* Footer timestamps count seconds from 2000-01-01 00:00:00 UTC. */
#define VHD_EPOCH_OFFSET 946684800ull

/* Microsoft's cap: BAT entries are 32-bit sector numbers, and Hyper-V
 * refuses anything above 0xFF000000 sectors. */
#define VHD_MAX_VIRTUAL_SIZE (0xFF000000ull * VHD_SECTOR_SIZE)

/* The largest geometry; at and above it CHS carries no size information. */
#define VHD_CHS_MAX_CYLINDERS 65535u
#define VHD_CHS_MAX_HEADS 16u
#define VHD_CHS_MAX_SPT 255u
#define VHD_CHS_MAX_SECTORS (65535ull * 16 * 255)

struct vhd_footer {
  uint8_t cookie[8];
  uint32_t features;
  uint32_t version;
  uint64_t data_offset;
  uint32_t timestamp;
  uint8_t creator_app[4];
  uint32_t creator_version;
  uint8_t creator_host[4];
  uint64_t original_size;
  uint64_t current_size;
  uint16_t cylinders;
  uint8_t heads;
  uint8_t sectors_per_track;
  uint32_t disk_type;
  uint32_t checksum;          /* as stored; encode computes its own */
  uint8_t unique_id[16];
  uint8_t saved_state;
  uint8_t reserved[427];      /* kept so a rewrite preserves it (blktap's
                                 "hidden" flag lives in reserved[0]) */
};

/* One's complement of the byte sum of len bytes, the 4 bytes at csum_off
 * counted as zero. Footer and dynamic header share this rule. */
uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off);

/* len is 512, or 511 for an old short footer (the missing byte is a
 * reserved zero). Decoding never fails; validation is the caller's. */
void vhd_footer_decode(const uint8_t *buf, size_t len, struct vhd_footer *f);
/* Writes all 512 bytes with a freshly computed checksum. */
void vhd_footer_encode(const struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE]);
/* The stored checksum matches the bytes. */
bool vhd_footer_checksum_ok(const uint8_t *buf, size_t len);
bool vhd_footer_has_cookie(const uint8_t *buf);

/* Geometry for a disk of the given number of sectors, by the algorithm of
 * the VHD specification's appendix (the product is at most sectors). */
void vhd_chs_from_sectors(uint64_t sectors, uint16_t *cyl, uint8_t *heads,
                          uint8_t *spt);
/* The smallest sector count >= sectors that is exactly a C*H*S product
 * whose own geometry (vhd_chs_from_sectors) gives it back; sectors itself
 * from the maximum geometry up, where CHS no longer describes the size. */
uint64_t vhd_chs_round_up(uint64_t sectors);
static inline uint64_t vhd_chs_product(uint16_t c, uint8_t h, uint8_t s)
{
  return (uint64_t)c * h * s;
}
bool vhd_chs_is_max(const struct vhd_footer *f);

/* True when the creator sizes the disk by its geometry: Virtual PC ("vpc ")
 * and qemu's default create ("qemu", which rounds the size up to a CHS
 * product so both agree). Every other producer - Hyper-V, Disk2vhd,
 * VirtualBox, blktap, Azure - exposes current_size. */
bool vhd_creator_sizes_by_chs(const uint8_t app[4]);
/* The number of bytes the guest sees: the CHS product for the creators
 * above (unless the geometry is the saturated maximum, or zero), else
 * current_size. Not rounded to sectors. */
uint64_t vhd_footer_virtual_size(const struct vhd_footer *f);

/* "win 10.0 (Wi2k)": creator application (trailing blanks and NULs
 * dropped, unprintable bytes as '?'), version major.minor, host. */
void vhd_creator_describe(const struct vhd_footer *f, char *out, size_t size);

#endif
