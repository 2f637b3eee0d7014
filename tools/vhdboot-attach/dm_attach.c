/* SPDX-License-Identifier: BSD-3-Clause */
/* Fixed VHD/VHDX and raw images: a device-mapper linear table from the
 * virtual disk straight to the host disk's sectors, so no process sits in
 * the I/O path. libvhd's map gives where each virtual range is in the file
 * (a fixed VHDX keeps its payload blocks wherever its BAT says); the
 * file's extents (the record's, or FIEMAP/FIBMAP) give where the file is
 * on the disk. dmsetup loads the table; the partitions of the virtual disk
 * get linear devices of their own (the kernel does not scan device-mapper
 * disks), with kpartx's UUID convention "partN-..." so blkid reports their
 * PARTUUID.
 * The table names the host partition, not the disk: device-mapper claims
 * its devices exclusively, so the host file system is unmounted first
 * (the kernel refuses the claim while it is mounted) and cannot be mounted
 * again while the table exists, which also keeps anyone from moving the
 * image's clusters under it. */
#include "attach.h"
#include "vhd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define DM_NAME "vhdboot-root"
#define DM_UUID "VHDBOOT-root"

struct table {
  char *text;
  size_t len, cap;
  unsigned lines;
  const char *disk;       /* the host partition */
  uint64_t disk_start;    /* its first byte on the host disk */
  const struct file_extent *fe;
  uint32_t n_fe;
  const char *path;
};

static int append(struct table *t, uint64_t start, uint64_t count, const char *dev, uint64_t sector)
{
  char line[256];
  int n = snprintf(line, sizeof line, "%llu %llu linear %s %llu\n", (unsigned long long)start,
                   (unsigned long long)count, dev, (unsigned long long)sector);
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 4096;
    while (cap < t->len + (size_t)n + 1)
      cap *= 2;
    char *p = realloc(t->text, cap);
    if (!p)
      return fail("out of memory for the device-mapper table");
    t->text = p;
    t->cap = cap;
  }
  memcpy(t->text + t->len, line, (size_t)n + 1);
  t->len += (size_t)n;
  t->lines++;
  return 0;
}

/* Virtual [voff, voff+len) is file [foff, foff+len): cut it along the
 * file's extents. */
static int map_range(struct table *t, uint64_t voff, uint64_t foff, uint64_t len)
{
  uint32_t i = 0;
  while (len) {
    while (i < t->n_fe && t->fe[i].file_offset + t->fe[i].length <= foff)
      i++;
    if (i == t->n_fe || t->fe[i].file_offset > foff)
      return fail("%s: file byte %llu is on no extent", t->path, (unsigned long long)foff);
    const struct file_extent *e = &t->fe[i];
    if (e->disk_offset == EXTENT_NOT_ON_DISK)
      return fail("%s: file byte %llu has no written block on the disk", t->path,
                  (unsigned long long)foff);
    uint64_t disk = e->disk_offset + (foff - e->file_offset) - t->disk_start;
    uint64_t run = e->file_offset + e->length - foff;
    if (run > len)
      run = len;
    if (voff % 512 || disk % 512 || run % 512)
      return fail("%s: file byte %llu lies at disk byte %llu, not on a 512-byte sector",
                  t->path, (unsigned long long)foff, (unsigned long long)disk);
    if (append(t, voff / 512, run / 512, t->disk, disk / 512) < 0)
      return -1;
    voff += run;
    foff += run;
    len -= run;
  }
  return 0;
}

static int on_extent(void *opaque, const struct vhd_extent *x)
{
  struct table *t = opaque;
  if (x->layer != 0 || x->host_offset == UINT64_MAX || !(x->status & VHD_STATUS_DATA))
    return fail("%s: virtual bytes %llu-%llu are not stored in the file in one place",
                t->path, (unsigned long long)x->offset,
                (unsigned long long)(x->offset + x->length));
  return map_range(t, x->offset, x->host_offset, x->length);
}

/* The dm-N name of a device-mapper device. */
static int dm_kernel_name(const char *name, char *out, size_t len)
{
  DIR *d = opendir("/sys/block");
  if (!d)
    return -1;
  struct dirent *e;
  int rc = -1;
  while (rc < 0 && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "dm-", 3) != 0)
      continue;
    char path[300], buf[256] = "";
    snprintf(path, sizeof path, "/sys/block/%s/dm/name", e->d_name);
    FILE *f = fopen(path, "re");
    if (!f)
      continue;
    if (fgets(buf, sizeof buf, f)) {
      buf[strcspn(buf, "\n")] = '\0';
      if (strcmp(buf, name) == 0 && strlen(e->d_name) < len) {
        memcpy(out, e->d_name, strlen(e->d_name) + 1);
        rc = 0;
      }
    }
    fclose(f);
  }
  closedir(d);
  return rc;
}

static int dm_create(const char *name, const char *uuid, bool readonly, const char *table,
                     char *kname, size_t klen)
{
  const char *dmsetup = find_program("dmsetup");
  if (!dmsetup)
    return fail("dmsetup not found: the initramfs lacks it");
  char prog[512];
  snprintf(prog, sizeof prog, "%s", dmsetup);
  char *argv[12];
  int a = 0;
  argv[a++] = "dmsetup";
  argv[a++] = "create";
  argv[a++] = (char *)name;
  argv[a++] = "--uuid";
  argv[a++] = (char *)uuid;
  argv[a++] = "--noudevsync";   /* udev may not run in this initramfs */
  if (readonly)
    argv[a++] = "--readonly";
  argv[a] = NULL;
  int rc = spawn_wait(prog, argv, table);
  if (rc != 0)
    return fail("dmsetup create %s failed (exit %d): is dm-mod loaded?", name, rc);
  if (dm_kernel_name(name, kname, klen) < 0)
    return fail("dmsetup created %s but /sys/block has no such device", name);
  return 0;
}

static int partitions(const char *disk_kname, bool readonly, struct attached *out)
{
  char node[96];
  snprintf(node, sizeof node, "/dev/%s", disk_kname);
  int fd = open(node, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail("%s: %s", node, strerror(errno));
  struct ptable pt;
  int rc = ptable_read(fd, 512, &pt);
  close(fd);
  if (rc < 0)
    return fail("%s: cannot read the virtual disk's partition table", node);
  for (unsigned i = 0; i < pt.n && out->n_parts < 128; i++) {
    const struct part_entry *p = &pt.e[i];
    if (p->size == 0)
      continue;
    char name[64], uuid[80], table[160];
    snprintf(name, sizeof name, DM_NAME "-part%u", p->number);
    snprintf(uuid, sizeof uuid, "part%u-" DM_UUID, p->number);
    snprintf(table, sizeof table, "0 %llu linear %s %llu\n",
             (unsigned long long)(p->size / 512), node, (unsigned long long)(p->start / 512));
    unsigned k = out->n_parts;
    if (dm_create(name, uuid, readonly, table, out->part_dev[k], sizeof out->part_dev[k]) < 0)
      return -1;
    out->part_number[k] = p->number;
    memcpy(out->part_guid[k], p->guid, 16);
    out->n_parts++;
  }
  return 0;
}

int dm_attach(const struct request *rq, const char *host_disk, const char *host_part,
              const char *host_dir, const char *file, struct attached *out)
{
  struct table t = { .disk = host_part, .disk_start = rq->part_start, .path = file };
  struct file_extent *own = NULL;
  uint32_t n_own = 0;
  int file_fd = open(file, O_RDONLY | O_CLOEXEC);
  if (file_fd < 0)
    return fail("%s: %s", file, strerror(errno));
  int disk_fd = open(host_disk, O_RDONLY | O_CLOEXEC);
  if (disk_fd < 0) {
    close(file_fd);
    return fail("%s: %s", host_disk, strerror(errno));
  }
  struct stat st;
  fstat(file_fd, &st);
  int rc = -1;
  if (rq->from_record && rq->layers[0].n_extents) {
    t.fe = rq->layers[0].extents;
    t.n_fe = rq->layers[0].n_extents;
  } else {
    if (file_extents(file_fd, rq->part_start, &own, &n_own) < 0)
      goto out;
    t.fe = own;
    t.n_fe = n_own;
  }
  if (extents_verify(file_fd, disk_fd, t.fe, t.n_fe, (uint64_t)st.st_size, file) < 0)
    goto out;

  vhd_image *img;
  struct vhd_open_params op;
  vhd_open_params_init(&op);
  op.flags = VHD_OPEN_NO_PARENT | VHD_OPEN_FORCE_SHARE;
  if (vhd_open_with(file, &op, &img) < 0) {
    fail("%s: %s", file, vhd_last_error());
    goto out;
  }
  rc = vhd_map(img, 0, 0, on_extent, &t);
  vhd_close(img);
  if (rc < 0)
    goto out;
  close(file_fd);
  file_fd = -1;
  if (umount(host_dir) < 0) {
    rc = fail("%s: cannot unmount the host file system for device-mapper: %s", host_dir,
              strerror(errno));
    goto out;
  }
  rc = dm_create(DM_NAME, DM_UUID, rq->mode == ATTACH_RO, t.text, out->disk, sizeof out->disk);
  if (rc == 0) {
    note("%s: device-mapper %s (%s) over %s, %u table lines", file, out->disk, DM_NAME, host_part,
         t.lines);
    rc = partitions(out->disk, rq->mode == ATTACH_RO, out);
  }
out:
  free(t.text);
  free(own);
  if (file_fd >= 0)
    close(file_fd);
  close(disk_fd);
  return rc;
}
