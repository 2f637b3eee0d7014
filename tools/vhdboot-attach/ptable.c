/* SPDX-License-Identifier: BSD-3-Clause */
/* A disk's partition table, read from the device: GPT (primary header,
 * header and entry CRCs checked) or else MBR primary partitions. Used to
 * find the host partition by its GUID and to give the partitions of a
 * device-mapper disk their own devices. */
#include "attach.h"
#include "crc32.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
    if (n <= 0)
      return -1;
    done += (size_t)n;
  }
  return 0;
}

static int read_gpt(int fd, uint32_t sector, struct ptable *pt)
{
  uint8_t *hdr = malloc(sector);
  if (!hdr || read_at(fd, hdr, sector, sector) < 0 || memcmp(hdr, "EFI PART", 8) != 0) {
    free(hdr);
    return 0;
  }
  uint32_t hsize = le32(hdr + 12);
  int ok = hsize >= 92 && hsize <= sector;
  if (ok) {
    uint32_t want = le32(hdr + 16);
    memset(hdr + 16, 0, 4);
    ok = crc32_of(hdr, hsize) == want;
  }
  uint64_t entries_lba = le64(hdr + 72);
  uint32_t count = le32(hdr + 80), esize = le32(hdr + 84), ecrc = le32(hdr + 88);
  free(hdr);
  if (!ok || esize < 128 || esize > 4096 || count == 0 || count > 1024)
    return 0;
  size_t len = (size_t)count * esize;
  uint8_t *ents = malloc(len);
  if (!ents || read_at(fd, ents, len, entries_lba * sector) < 0 || crc32_of(ents, len) != ecrc) {
    free(ents);
    return 0;
  }
  static const uint8_t zero[16];
  pt->kind = 2;
  for (uint32_t i = 0; i < count && pt->n < 128; i++) {
    const uint8_t *e = ents + (size_t)i * esize;
    if (memcmp(e, zero, 16) == 0)
      continue;
    struct part_entry *p = &pt->e[pt->n++];
    p->number = i + 1;
    uint64_t first = le64(e + 32), last = le64(e + 40);
    p->start = first * sector;
    p->size = last >= first ? (last - first + 1) * sector : 0;
    memcpy(p->guid, e + 16, 16);
  }
  free(ents);
  return 1;
}

int ptable_read(int fd, uint32_t sector, struct ptable *pt)
{
  memset(pt, 0, sizeof *pt);
  pt->sector = sector;
  uint8_t mbr[512];
  if (read_at(fd, mbr, sizeof mbr, 0) < 0)
    return -1;
  if (mbr[510] != 0x55 || mbr[511] != 0xAA)
    return 0;
  if (read_gpt(fd, sector, pt))
    return 0;
  pt->kind = 1;
  pt->mbr_signature = le32(mbr + 440);
  for (int i = 0; i < 4; i++) {
    const uint8_t *e = mbr + 446 + 16 * i;
    uint32_t first = le32(e + 8), count = le32(e + 12);
    /* 0xEE: protective; 0x05, 0x0F, 0x85: extended containers */
    if (e[4] == 0 || e[4] == 0xEE || e[4] == 0x05 || e[4] == 0x0F || e[4] == 0x85 || count == 0)
      continue;
    struct part_entry *p = &pt->e[pt->n++];
    p->number = (uint32_t)i + 1;
    p->start = (uint64_t)first * sector;
    p->size = (uint64_t)count * sector;
  }
  return 0;
}
