/* SPDX-License-Identifier: BSD-3-Clause */
/* The host partition: looked for in every block device the kernel lists
 * in /sys/class/block, by GPT partition GUID, MBR signature + number or
 * file system UUID, and checked against the record's start and size (a
 * partition with the same GUID elsewhere, e.g. a copied disk, is refused).
 * Read from the devices directly, so no udev or blkid is needed. */
#include "attach.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int sys_u64(const char *dev, const char *attr, uint64_t *v)
{
  char path[600], buf[64];
  snprintf(path, sizeof path, "/sys/class/block/%s/%s", dev, attr);
  FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  if (!ok)
    return -1;
  *v = strtoull(buf, NULL, 10);
  return 0;
}

/* Devices that cannot hold the host partition, or that we make ourselves. */
static int ignored(const char *name)
{
  static const char *const skip[] = { "loop", "ram", "zram", "nbd", "dm-", "sr", "fd", "md" };
  if (name[0] == '.')
    return 1;
  for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
    if (strncmp(name, skip[i], strlen(skip[i])) == 0)
      return 1;
  return 0;
}

/* The partition of disk with number n, by its sysfs name. */
static int child_with_number(const char *disk, uint32_t n, char *out, size_t len)
{
  char path[600];
  snprintf(path, sizeof path, "/sys/class/block/%s", disk);
  DIR *d = opendir(path);
  if (!d)
    return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, disk, strlen(disk)) != 0)
      continue;
    char attr[300];
    uint64_t v;
    snprintf(attr, sizeof attr, "%s/partition", e->d_name);
    if (sys_u64(disk, attr, &v) == 0 && v == n) {
      snprintf(out, len, "%s", e->d_name);
      found = 0;
      break;
    }
  }
  closedir(d);
  return found;
}

/* The file system UUID as blkid prints it: ext2/3/4 the 16-byte UUID,
 * FAT and exFAT the volume serial number as XXXX-XXXX. */
static int fs_uuid(int fd, char *out, size_t len)
{
  uint8_t b[2048];
  if (pread(fd, b, sizeof b, 0) != (ssize_t)sizeof b)
    return -1;
  const uint8_t *sb = b + 1024;
  if (sb[0x38] == 0x53 && sb[0x39] == 0xEF) {
    const uint8_t *u = sb + 0x68;
    snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
             u[13], u[14], u[15]);
    return 0;
  }
  if (b[510] != 0x55 || b[511] != 0xAA)
    return -1;
  const uint8_t *serial = NULL;
  if (memcmp(b + 3, "EXFAT   ", 8) == 0)
    serial = b + 100;
  else if (memcmp(b + 82, "FAT32   ", 8) == 0)
    serial = b + 67;
  else if (memcmp(b + 54, "FAT", 3) == 0 && b[38] == 0x29)
    serial = b + 39;
  if (!serial)
    return -1;
  snprintf(out, len, "%02X%02X-%02X%02X", serial[3], serial[2], serial[1], serial[0]);
  return 0;
}

/* One pass over the block devices. 1 found, 0 not (yet), -1 refused. */
static int scan(const struct request *rq, char *dev, size_t devlen, char *disk, size_t disklen)
{
  DIR *d = opendir("/sys/class/block");
  if (!d)
    return fail("/sys/class/block: %s (is sysfs mounted?)", strerror(errno));
  struct dirent *e;
  int found = 0;
  while (found == 0 && (e = readdir(d)) != NULL) {
    if (ignored(e->d_name))
      continue;
    uint64_t partno;
    int is_part = sys_u64(e->d_name, "partition", &partno) == 0;
    char node[300];
    snprintf(node, sizeof node, "/dev/%s", e->d_name);
    if (rq->host_key == HOST_BY_FSUUID) {
      if (!is_part)
        continue;
      int fd = open(node, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      char uuid[64];
      int hit = fd >= 0 && fs_uuid(fd, uuid, sizeof uuid) == 0 && strcasecmp(uuid, rq->fs_uuid) == 0;
      if (fd >= 0)
        close(fd);
      if (hit) {
        char parent[300];
        snprintf(parent, sizeof parent, "/sys/class/block/%s/..", e->d_name);
        char *real = realpath(parent, NULL);
        const char *base = real ? strrchr(real, '/') : NULL;
        snprintf(dev, devlen, "%s", node);
        snprintf(disk, disklen, "/dev/%s", base ? base + 1 : "?");
        free(real);
        found = 1;
      }
      continue;
    }
    if (is_part)
      continue;
    uint64_t lbs = 512;
    sys_u64(e->d_name, "queue/logical_block_size", &lbs);
    int fd = open(node, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
      continue;
    struct ptable pt;
    int rc = ptable_read(fd, (uint32_t)lbs, &pt);
    close(fd);
    if (rc < 0)
      continue;
    for (unsigned i = 0; i < pt.n; i++) {
      const struct part_entry *p = &pt.e[i];
      int match = rq->host_key == HOST_BY_PARTUUID
                    ? pt.kind == 2 && memcmp(p->guid, rq->part_guid, 16) == 0
                    : pt.kind == 1 && pt.mbr_signature == rq->mbr_signature &&
                        p->number == rq->part_number;
      if (!match)
        continue;
      if (rq->check_geometry && (p->start != rq->part_start || p->size != rq->part_size)) {
        found = fail("host partition %u of /dev/%s starts at byte %llu with %llu bytes; the "
                     "record says %llu and %llu", p->number, e->d_name,
                     (unsigned long long)p->start, (unsigned long long)p->size,
                     (unsigned long long)rq->part_start, (unsigned long long)rq->part_size);
        break;
      }
      char child[256];
      if (child_with_number(e->d_name, p->number, child, sizeof child) < 0)
        break;   /* the kernel has not made its device yet */
      uint64_t start, size;
      if (sys_u64(child, "start", &start) == 0 && sys_u64(child, "size", &size) == 0 &&
          (start * 512 != p->start || size * 512 != p->size)) {
        found = fail("/dev/%s: the kernel's partition (start %llu, %llu bytes) is not the "
                     "partition table's", child, (unsigned long long)start * 512,
                     (unsigned long long)size * 512);
        break;
      }
      snprintf(dev, devlen, "/dev/%s", child);
      snprintf(disk, disklen, "%s", node);
      found = 1;
      break;
    }
  }
  closedir(d);
  return found;
}

static void describe(const struct request *rq, char *out, size_t len)
{
  if (rq->host_key == HOST_BY_PARTUUID) {
    char g[37];
    guid_to_text(rq->part_guid, g);
    snprintf(out, len, "PARTUUID=%s", g);
  } else if (rq->host_key == HOST_BY_MBR) {
    snprintf(out, len, "MBR signature %08x partition %u", rq->mbr_signature, rq->part_number);
  } else {
    snprintf(out, len, "UUID=%s", rq->fs_uuid);
  }
}

int host_find(const struct request *rq, int timeout_ms, char *dev, size_t devlen,
              char *disk, size_t disklen)
{
  struct timespec step = { 0, 100 * 1000 * 1000 };
  for (int waited = 0;; waited += 100) {
    int rc = scan(rq, dev, devlen, disk, disklen);
    if (rc != 0)
      return rc > 0 ? 0 : -1;
    if (waited >= timeout_ms)
      break;
    nanosleep(&step, NULL);
  }
  char what[128];
  describe(rq, what, sizeof what);
  return fail("host partition %s not found (waited %d s)", what, timeout_ms / 1000);
}
