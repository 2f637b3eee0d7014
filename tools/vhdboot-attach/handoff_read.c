/* SPDX-License-Identifier: BSD-3-Clause */
/* The hand-off record (docs/efi-handoff.md) from efivarfs: the chunks
 * VhdBootHandoff, VhdBootHandoff1, ... each behind a 4-byte attribute
 * word, concatenated, CRC-checked and decoded into a request. */
#include "attach.h"
#include "crc32.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VENDOR_GUID "0b00f805-61be-4224-ac21-89e3561f90fd"
#define CHUNK 4096u
#define MAX_CHUNKS 64u
#define HEADER_SIZE 112u
#define LAYER_HEADER 40u
#define EXTENT_SIZE 24u

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* One chunk into buf (at most CHUNK bytes). Returns its length, 0 when the
 * variable does not exist, -1 on error. */
static ssize_t read_chunk(const char *dir, unsigned index, uint8_t *buf)
{
  char path[512];
  if (index == 0)
    snprintf(path, sizeof path, "%s/VhdBootHandoff-" VENDOR_GUID, dir);
  else
    snprintf(path, sizeof path, "%s/VhdBootHandoff%u-" VENDOR_GUID, dir, index);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : fail("%s: %s", path, strerror(errno));
  uint8_t raw[4 + CHUNK + 1];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, raw + got, sizeof raw - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close(fd);
      return fail("%s: %s", path, strerror(errno));
    }
    if (n == 0 || got + (size_t)n == sizeof raw) {
      got += (size_t)n;
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  if (got < 4 || got > 4 + CHUNK)
    return fail("%s: %zu bytes, expected 4 attribute bytes and at most %u of record",
                path, got, CHUNK);
  memcpy(buf, raw + 4, got - 4);
  return (ssize_t)(got - 4);
}

static int decode_layer(const uint8_t *p, size_t avail, struct layer *l, size_t *used)
{
  if (avail < LAYER_HEADER)
    return fail("hand-off record: layer record truncated (%zu bytes left)", avail);
  uint32_t size = le32(p);
  uint16_t plen = le16(p + 6);
  uint32_t count = le32(p + 24);
  size_t path_room = ((size_t)plen + 7) / 8 * 8;
  if (size > avail || size < LAYER_HEADER ||
      (uint64_t)LAYER_HEADER + path_room + (uint64_t)count * EXTENT_SIZE != size)
    return fail("hand-off record: layer size %u does not match path length %u and %u extents",
                size, plen, count);
  if (plen == 0 || plen >= sizeof l->path)
    return fail("hand-off record: layer path length %u out of range", plen);
  memset(l, 0, sizeof *l);
  l->format = p[4];
  l->type = p[5];
  l->logical_size = le64(p + 8);
  l->physical_size = le64(p + 16);
  l->n_extents = count;
  l->in_memory = le32(p + 28) & 1u;
  l->virtual_size = le64(p + 32);
  for (uint16_t i = 0; i < plen; i++) {
    char c = (char)p[LAYER_HEADER + i];
    if (c == '\0')
      return fail("hand-off record: layer path has a NUL byte");
    l->path[i] = c == '\\' ? '/' : c;
  }
  if (count) {
    l->extents = calloc(count, sizeof *l->extents);
    if (!l->extents)
      return fail("hand-off record: out of memory for %u extents", count);
  }
  const uint8_t *e = p + LAYER_HEADER + path_room;
  uint64_t next = 0;
  for (uint32_t i = 0; i < count; i++, e += EXTENT_SIZE) {
    struct file_extent *x = &l->extents[i];
    x->file_offset = le64(e);
    x->disk_offset = le64(e + 8);
    x->length = le64(e + 16);
    bool on_disk = x->disk_offset != EXTENT_NOT_ON_DISK;
    if (x->file_offset != next || x->length == 0 ||
        (on_disk && x->disk_offset + x->length < x->disk_offset))
      return fail("hand-off record: %s: extent %u (file offset %llu) is not adjacent to the "
                  "previous one", l->path, i, (unsigned long long)x->file_offset);
    next = x->file_offset + x->length;
  }
  if (count && next < l->physical_size)
    return fail("hand-off record: %s: extents cover %llu of %llu bytes", l->path,
                (unsigned long long)next, (unsigned long long)l->physical_size);
  *used = size;
  return 0;
}

static int decode(const uint8_t *b, size_t len, struct request *rq)
{
  if (len < HEADER_SIZE || memcmp(b, "VHDBHOFF", 8) != 0)
    return fail("hand-off record: no VHDBHOFF signature (%zu bytes)", len);
  if (le16(b + 8) != 1 || le16(b + 10) != HEADER_SIZE)
    return fail("hand-off record: version %u, header size %u (expected 1, %u)",
                le16(b + 8), le16(b + 10), HEADER_SIZE);
  if (le32(b + 12) != len)
    return fail("hand-off record: total size %u, the variables hold %zu bytes", le32(b + 12), len);
  uint8_t *copy = malloc(len);
  if (!copy)
    return fail("hand-off record: out of memory");
  memcpy(copy, b, len);
  memset(copy + 16, 0, 4);
  uint32_t crc = crc32_of(copy, len);
  free(copy);
  if (crc != le32(b + 16))
    return fail("hand-off record: CRC %08x, computed %08x", le32(b + 16), crc);
  uint32_t mode = le32(b + 20);
  if (mode > ATTACH_RW)
    return fail("hand-off record: mode %u unknown", mode);
  rq->mode = (enum attach_mode)mode;
  uint32_t layers = le32(b + 24);
  if (layers == 0 || layers > 64)
    return fail("hand-off record: %u layers", layers);
  rq->block_size = le32(b + 28);
  rq->virtual_size = le64(b + 32);
  rq->part_number = le32(b + 56);
  rq->part_start = le64(b + 64);
  rq->part_size = le64(b + 72);
  rq->check_geometry = true;
  uint8_t table = b[96];
  if (table == 2) {
    rq->host_key = HOST_BY_PARTUUID;
    memcpy(rq->part_guid, b + 80, 16);
  } else if (table == 1) {
    rq->host_key = HOST_BY_MBR;
    rq->mbr_signature = le32(b + 80);
  } else {
    return fail("hand-off record: the host partition table is unknown (%u)", table);
  }
  rq->fs = b[97];
  rq->layers = calloc(layers, sizeof *rq->layers);
  if (!rq->layers)
    return fail("hand-off record: out of memory");
  size_t off = HEADER_SIZE;
  for (uint32_t i = 0; i < layers; i++) {
    size_t used = 0;
    rq->n_layers = i + 1;   /* request_free releases a half-decoded layer too */
    if (decode_layer(b + off, len - off, &rq->layers[i], &used) < 0)
      return -1;
    off += used;
  }
  if (off != len)
    return fail("hand-off record: layers end at %zu of %zu bytes", off, len);
  snprintf(rq->image, sizeof rq->image, "%s", rq->layers[0].path);
  rq->from_record = true;
  return 1;
}

int handoff_read(const char *dir, struct request *rq)
{
  uint8_t *rec = malloc((size_t)CHUNK * MAX_CHUNKS);
  if (!rec)
    return fail("out of memory");
  size_t len = 0;
  unsigned i;
  for (i = 0; i < MAX_CHUNKS; i++) {
    ssize_t n = read_chunk(dir, i, rec + len);
    if (n < 0) {
      free(rec);
      return -1;
    }
    if (n == 0)
      break;
    len += (size_t)n;
    if ((size_t)n < CHUNK)
      break;
  }
  int rc = i == 0 && len == 0 ? 0 : decode(rec, len, rq);
  free(rec);
  return rc;
}

void request_free(struct request *rq)
{
  for (unsigned i = 0; i < rq->n_layers; i++)
    free(rq->layers[i].extents);
  free(rq->layers);
  rq->layers = NULL;
  rq->n_layers = 0;
}
