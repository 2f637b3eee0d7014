/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdboot-attach: in the initramfs, find the image the system was booted
 * from (vhdboot.efi's hand-off record, or vhdboot.image= on the kernel
 * command line), mount the host file system under /run/vhdboot/host and
 * expose the virtual disk as /dev/disk/by-id/vhdboot-root. Exit 0 when the
 * disk is there, 1 with one line saying what is wrong otherwise, so the
 * initramfs drops to its shell instead of waiting for a root that never
 * comes. See docs/linux-boot.md. */
#include "attach.h"
#include "vhd.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VHDBOOT_PLUGIN
#define VHDBOOT_PLUGIN "/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-vhd-plugin.so"
#endif

bool verbose;

static void say(const char *prefix, const char *fmt, va_list ap)
{
  fprintf(stderr, "vhdboot-attach: %s", prefix);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  say("error: ", fmt, ap);
  va_end(ap);
  return -1;
}

void note(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  say("", fmt, ap);
  va_end(ap);
}

static void usage(FILE *f)
{
  fputs("usage: vhdboot-attach [--efivars DIR] [--cmdline FILE] [--run-dir DIR]\n"
        "                      [--plugin PATH] [--dry-run] [-v]\n"
        "       vhdboot-attach --detach [--run-dir DIR]\n"
        "Attach the virtual disk the system was booted from as /dev/disk/by-id/vhdboot-root\n"
        "(docs/linux-boot.md). Kernel command line settings:\n"
        "  vhdboot.image=PARTUUID=<guid>:<path> | UUID=<fs uuid>:<path>\n"
        "  vhdboot.mode=ro|cow|rw   vhdboot.fstype=vfat|exfat|ext4|ntfs3\n", f);
}

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "re");
  if (!f)
    return NULL;
  char *buf = calloc(1, 65536);
  if (buf)
    buf[fread(buf, 1, 65535, f)] = '\0';
  fclose(f);
  return buf;
}

/* efivarfs, when the firmware is UEFI and nobody mounted it yet. */
static void mount_efivars(const char *dir)
{
  if (strcmp(dir, "/sys/firmware/efi/efivars") != 0 || access("/sys/firmware/efi", F_OK) != 0)
    return;
  if (mount("efivarfs", dir, "efivarfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 &&
      errno != EBUSY)
    note("efivarfs: %s", strerror(errno));
}

/* modprobe when the kernel lacks the driver (the initramfs script loads
 * them first; this covers a hand-run attach). */
static void load_module(const char *name, const char *present)
{
  if (access(present, F_OK) == 0)
    return;
  const char *modprobe = find_program("modprobe");
  if (!modprobe)
    return;
  char prog[512];
  snprintf(prog, sizeof prog, "%s", modprobe);
  char *argv[] = { "modprobe", "-q", (char *)name, NULL };
  spawn_wait(prog, argv, NULL);
}

static int sys_part_geometry(const char *dev, uint64_t *start, uint64_t *size)
{
  const char *base = strrchr(dev, '/');
  char path[700];
  unsigned long long v[2];
  const char *attr[2] = { "start", "size" };
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "/sys/class/block/%s/%s", base ? base + 1 : dev, attr[i]);
    FILE *f = fopen(path, "re");
    if (!f || fscanf(f, "%llu", &v[i]) != 1) {
      if (f)
        fclose(f);
      return -1;
    }
    fclose(f);
  }
  *start = v[0] * 512;
  *size = v[1] * 512;
  return 0;
}

/* Open the image (and its parents) the way the server will: a corrupt or
 * missing file is named here rather than as an nbdkit failure. */
static int probe_image(const char *file, struct vhd_info *info)
{
  vhd_image *img;
  struct vhd_open_params op;
  vhd_open_params_init(&op);
  op.flags = VHD_OPEN_FORCE_SHARE;
  if (vhd_open_with(file, &op, &img) < 0)
    return fail("%s: cannot open the image: %s", file, vhd_last_error());
  int rc = vhd_get_info(img, info);
  vhd_close(img);
  if (rc < 0)
    return fail("%s: %s", file, vhd_last_error());
  return 0;
}

static void print_plan(const struct request *rq)
{
  char g[37];
  guid_to_text(rq->part_guid, g);
  printf("source=%s\nmode=%s\nimage=%s\n", rq->from_record ? "record" : "cmdline",
         mode_name(rq->mode), rq->image);
  if (rq->host_key == HOST_BY_PARTUUID)
    printf("partuuid=%s\n", g);
  else if (rq->host_key == HOST_BY_FSUUID)
    printf("uuid=%s\n", rq->fs_uuid);
  else
    printf("mbr=%08x partition=%u\n", rq->mbr_signature, rq->part_number);
  if (rq->check_geometry)
    printf("partition_start=%llu\npartition_size=%llu\n", (unsigned long long)rq->part_start,
           (unsigned long long)rq->part_size);
  const char *fs = host_fs_named(rq);
  printf("host_fs=%s\n", fs ? fs : "any");
  printf("block_size=%u\nvirtual_size=%llu\nlayers=%u\n", rq->block_size,
         (unsigned long long)rq->virtual_size, rq->n_layers);
  for (unsigned i = 0; i < rq->n_layers; i++)
    printf("layer%u=%s format=%u type=%u size=%llu physical=%llu extents=%u\n", i,
           rq->layers[i].path, rq->layers[i].format, rq->layers[i].type,
           (unsigned long long)rq->layers[i].logical_size,
           (unsigned long long)rq->layers[i].physical_size, rq->layers[i].n_extents);
}

/* For --detach: run_dir/name holds value (which device this boot
 * attached, which image to prepare). */
static int remember(const char *run_dir, const char *name, const char *value)
{
  char path[300];
  snprintf(path, sizeof path, "%s/%s", run_dir, name);
  FILE *f = fopen(path, "we");
  if (!f)
    return fail("%s: %s", path, strerror(errno));
  int bad = fprintf(f, "%s\n", value) < 0;
  if (fclose(f) != 0 || bad)
    return fail("%s: cannot write it", path);
  return 0;
}

/* False when the record gives the top file a range with no written blocks
 * on the disk: a device-mapper table cannot point there (its reads would
 * not be zeros, its writes would not reach the file). Without a record
 * dm_attach asks FIEMAP, which refuses such files itself. */
static bool record_all_on_disk(const struct request *rq)
{
  if (!rq->from_record)
    return true;
  const struct layer *l = &rq->layers[0];
  for (uint32_t i = 0; i < l->n_extents; i++)
    if (l->extents[i].disk_offset == EXTENT_NOT_ON_DISK)
      return false;
  return true;
}

static int attach(struct request *rq, const char *run_dir, const char *plugin)
{
  char dev[300], disk[300], host[400], file[1500];
  if (host_find(rq, 10000, dev, sizeof dev, disk, sizeof disk) < 0)
    return -1;
  if (sys_part_geometry(dev, &rq->part_start, &rq->part_size) < 0)
    return fail("%s: no start and size in /sys/class/block", dev);
  note("host partition %s on %s", dev, disk);
  snprintf(host, sizeof host, "%s/host", run_dir);
  if (host_mount(rq, dev, host) < 0)
    return -1;
  snprintf(file, sizeof file, "%s%s", host, rq->image);
  struct stat st;
  if (stat(file, &st) < 0)
    return fail("image %s not found on %s: %s", rq->image, dev, strerror(errno));
  if (rq->from_record && rq->layers[0].physical_size != (uint64_t)st.st_size) {
    note("%s: %llu bytes, the record says %llu: its extents are not used", rq->image,
         (unsigned long long)st.st_size, (unsigned long long)rq->layers[0].physical_size);
    request_free(rq);
    rq->from_record = false;
  }
  struct vhd_info info;
  if (probe_image(file, &info) < 0)
    return -1;
  if (rq->block_size && rq->block_size != info.logical_sector_size)
    return fail("%s: logical sector size %u, the record says %u", file,
                info.logical_sector_size, rq->block_size);
  rq->block_size = info.logical_sector_size;
  struct attached a;
  memset(&a, 0, sizeof a);
  /* device-mapper disks have the host disk's 512-byte sectors, and a table
   * cannot keep writes in memory: other images, cow and 4096-byte sectors
   * go through nbdkit. */
  bool fixed = info.type == VHD_TYPE_FIXED || info.type == VHD_TYPE_NONE;
  bool on_disk = record_all_on_disk(rq);
  if (fixed && !on_disk)
    note("%s: parts of the file have no written blocks on the disk (holes or unwritten "
         "extents): served by nbdkit, not device-mapper ('vhdtool boot-prepare' writes them)",
         rq->image);
  if (fixed && on_disk && rq->mode != ATTACH_COW && info.logical_sector_size == 512) {
    load_module("dm-mod", "/sys/class/misc/device-mapper");
    if (dm_attach(rq, disk, dev, host, file, &a) < 0)
      return -1;
  } else {
    load_module("nbd", "/sys/block/nbd0");
    if (nbd_attach(rq, file, run_dir, plugin, &a) < 0)
      return -1;
    if (rq->mode == ATTACH_RW && remember(run_dir, RUN_PREPARE, file) < 0)
      return -1;
  }
  if (links_make(&a) < 0 || remember(run_dir, "device", a.disk) < 0)
    return -1;
  note("%s (%s %s, %s) is /dev/disk/by-id/vhdboot-root = /dev/%s with %u partitions",
       rq->image, vhd_format_name(info.format),
       info.type == VHD_TYPE_NONE ? "image" : vhd_type_name(info.type), mode_name(rq->mode),
       a.disk, a.n_parts);
  return 0;
}

int main(int argc, char **argv)
{
  const char *efivars = "/sys/firmware/efi/efivars", *cmdline_file = "/proc/cmdline";
  const char *run_dir = "/run/vhdboot", *plugin = VHDBOOT_PLUGIN;
  bool dry_run = false, detaching = false;
  static const struct option opts[] = {
    { "efivars", required_argument, NULL, 'e' }, { "cmdline", required_argument, NULL, 'c' },
    { "run-dir", required_argument, NULL, 'r' }, { "plugin", required_argument, NULL, 'p' },
    { "dry-run", no_argument, NULL, 'n' },       { "verbose", no_argument, NULL, 'v' },
    { "detach", no_argument, NULL, 'd' },        { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 }
  };
  int c;
  while ((c = getopt_long(argc, argv, "e:c:r:p:nvh", opts, NULL)) != -1) {
    switch (c) {
    case 'e': efivars = optarg; break;
    case 'c': cmdline_file = optarg; break;
    case 'r': run_dir = optarg; break;
    case 'p': plugin = optarg; break;
    case 'n': dry_run = true; break;
    case 'd': detaching = true; break;
    case 'v': verbose = true; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return 2;
  }
  if (detaching)
    return detach(run_dir) < 0 ? 1 : 0;
  struct request rq;
  memset(&rq, 0, sizeof rq);
  rq.mode = ATTACH_RW;   /* a root without a record is the server's own disk */
  mount_efivars(efivars);
  int rc = handoff_read(efivars, &rq);
  if (rc < 0) {
    request_free(&rq);
    return 1;
  }
  char *cmdline = slurp(cmdline_file);
  if (!cmdline) {
    request_free(&rq);
    fail("%s: %s", cmdline_file, strerror(errno));
    return 1;
  }
  int applied = cmdline_apply(cmdline, &rq);
  bool named = strstr(cmdline, "vhdboot.image=") != NULL;
  free(cmdline);
  if (applied < 0 || (!rq.from_record && !named)) {
    if (applied >= 0)
      fail("no hand-off record in %s and no vhdboot.image= on the kernel command line", efivars);
    request_free(&rq);
    return 1;
  }
  if (dry_run) {
    print_plan(&rq);
    request_free(&rq);
    return 0;
  }
  rc = attach(&rq, run_dir, plugin);
  request_free(&rq);
  return rc < 0 ? 1 : 0;
}
