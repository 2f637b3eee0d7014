/* SPDX-License-Identifier: BSD-3-Clause */
/* Dynamic and differencing images: nbdkit with the project's plugin on a
 * Unix socket, connected to the kernel's NBD client by nbd-client (netlink:
 * the kernel keeps the socket, nbd-client exits). nbdkit runs as a root
 * storage daemon (argv[0] "@nbdkit": systemd leaves it alive at shutdown,
 * systemd.io/ROOT_STORAGE_DAEMONS). Mode ro serves read-only (-r); cow
 * puts nbdkit's cow filter in front, which opens the image read-only and
 * keeps every write in a temporary file in memory. */
#include "attach.h"
#include "nbd_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int free_nbd(char *name, size_t len)
{
  if (nbd_free_device(name, len) < 0)
    return fail("no free /dev/nbdN: is the nbd module loaded?");
  return 0;
}

static bool same_dir(const char *a, const char *b)
{
  const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
  return sa && sb && sa - a == sb - b && strncmp(a, b, (size_t)(sa - a)) == 0;
}

static int start_nbdkit(const struct request *rq, const char *file, const char *sock,
                        const char *pidfile, const char *plugin)
{
  const char *nbdkit = find_program("nbdkit");
  if (!nbdkit)
    return fail("nbdkit not found: the initramfs lacks it");
  char prog[512], filearg[1100];
  snprintf(prog, sizeof prog, "%s", nbdkit);
  snprintf(filearg, sizeof filearg, "file=%s", file);
  /* The record names every layer; parents elsewhere than beside the top
   * image are the ones the loader booted, so they are allowed. */
  bool scattered = false;
  for (unsigned i = 1; i < rq->n_layers; i++)
    scattered |= !same_dir(rq->layers[0].path, rq->layers[i].path);
  char *argv[16];
  int a = 0;
  argv[a++] = "@nbdkit";
  argv[a++] = "-U";
  argv[a++] = (char *)sock;
  argv[a++] = "-P";
  argv[a++] = (char *)pidfile;
  if (rq->mode == ATTACH_RO)
    argv[a++] = "-r";
  if (rq->mode == ATTACH_COW)
    argv[a++] = "--filter=cow";
  argv[a++] = (char *)plugin;
  argv[a++] = filearg;
  if (scattered)
    argv[a++] = "parents=any";
  argv[a] = NULL;
  int rc = spawn_wait(prog, argv, NULL);
  if (rc != 0)
    return fail("nbdkit failed to start for %s (exit %d)", file, rc);
  return 0;
}

static int partitions(const char *disk_name, uint32_t sector, struct attached *out)
{
  char node[96], disk[32];
  snprintf(disk, sizeof disk, "%.31s", disk_name);
  snprintf(node, sizeof node, "/dev/%s", disk);
  int fd = open(node, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail("%s: %s", node, strerror(errno));
  struct ptable pt;
  int rc = ptable_read(fd, sector, &pt);
  close(fd);
  if (rc < 0)
    return fail("%s: cannot read the virtual disk's partition table", node);
  for (unsigned i = 0; i < pt.n && out->n_parts < 128; i++) {
    unsigned k = out->n_parts;
    char path[160];
    snprintf(out->part_dev[k], sizeof out->part_dev[k], "%.31sp%u", disk, pt.e[i].number);
    snprintf(path, sizeof path, "/dev/%s", out->part_dev[k]);
    if (!nbd_wait_for(path, 5000))
      return fail("%s: the kernel made no device for partition %u", node, pt.e[i].number);
    out->part_number[k] = pt.e[i].number;
    memcpy(out->part_guid[k], pt.e[i].guid, 16);
    out->n_parts++;
  }
  return 0;
}

int nbd_attach(const struct request *rq, const char *file, const char *run_dir,
               const char *plugin, struct attached *out)
{
  char sock[300], pidfile[300];
  snprintf(sock, sizeof sock, "%s/nbd.sock", run_dir);
  snprintf(pidfile, sizeof pidfile, "%s/nbdkit.pid", run_dir);
  /* The cow filter's overlay, a deleted file: in the initramfs' own root
   * (memory, as large as RAM allows), not in /run, which initramfs-tools
   * limits to 10% of RAM. */
  mkdir("/var", 0755);
  mkdir("/var/tmp", 01777);
  setenv("TMPDIR", "/var/tmp", 1);
  if (access(plugin, R_OK) != 0)
    return fail("%s: %s (the plugin nbdkit needs)", plugin, strerror(errno));
  if (free_nbd(out->disk, sizeof out->disk) < 0)
    return -1;
  if (start_nbdkit(rq, file, sock, pidfile, plugin) < 0)
    return -1;
  const char *client = find_program("nbd-client");
  if (!client)
    return fail("nbd-client not found: the initramfs lacks it");
  char prog[512], dev[96], bs[16];
  snprintf(prog, sizeof prog, "%s", client);
  snprintf(dev, sizeof dev, "/dev/%s", out->disk);
  snprintf(bs, sizeof bs, "%u", rq->block_size ? rq->block_size : 512);
  /* -N: a named export, so nbd-client does not warn about the old-style
   * protocol (nbdkit serves any name). -C: one connection per CPU, up to
   * four, so the kernel's queues do not wait on one socket; the plugin
   * serves every connection from one image and says so (multi-conn), so
   * a flush on any of them covers all. */
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  char conns[8];
  snprintf(conns, sizeof conns, "%ld", cpus < 1 ? 1 : cpus > 4 ? 4 : cpus);
  char *argv[] = { "nbd-client", "-unix", sock, dev, "-b", bs, "-N", "vhdboot", "-C", conns,
                   NULL };
  int rc = spawn_wait(prog, argv, NULL);
  if (rc != 0)
    return fail("nbd-client could not connect %s to nbdkit (exit %d)", dev, rc);
  if (nbd_raise_request_size(out->disk) < 0)
    note("%s: requests stay at the kernel's default size: %s", dev, strerror(errno));
  note("%s: served by nbdkit (%s) on %s, block size %s, %s connection%s", file,
       mode_name(rq->mode), dev, bs, conns, strcmp(conns, "1") ? "s" : "");
  return partitions(out->disk, rq->block_size ? rq->block_size : 512, out);
}
