/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool attach: an image (its whole chain) as a local block device, the
 * way qemu-nbd -c does it: nbdkit serves it with the project's plugin on a
 * private Unix socket, the kernel's NBD client is connected to that socket
 * by nbd-client, and the record in the run directory (attach_state.h) lets
 * detach and attach --list find it again. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach_state.h"
#include "vhdtool.h"

#ifdef VHD_ATTACH_LINUX
#include "nbd_common.h"

static int print_one(const struct attachment *a, void *opaque)
{
  (void)opaque;
  printf("/dev/%s\t%s\t%s%s\n", a->device, a->mode, a->image,
         nbd_connected(a->device) ? "" : "\t(not connected: 'vhdtool detach' cleans up)");
  return 0;
}

struct conflict_query {
  const char *image;
  bool rw;
  const struct attachment *found;
  struct attachment copy;
};

/* Two writers, or a writer and a reader, of one image see each other's
 * blocks change under them; readers may share. */
static int find_conflict(const struct attachment *a, void *opaque)
{
  struct conflict_query *q = opaque;
  if (strcmp(a->image, q->image) != 0 || !nbd_connected(a->device))
    return 0;
  if (!q->rw && strcmp(a->mode, "rw") != 0)
    return 0;
  q->copy = *a;
  q->found = &q->copy;
  return 1;
}

/* The kernel's NBD driver: loaded, or loadable. */
static int need_nbd_module(void)
{
  if (access("/sys/module/nbd", F_OK) == 0)
    return EXIT_OK;
  const char *modprobe = nbd_find_program("modprobe");
  if (modprobe) {
    char prog[512];
    snprintf(prog, sizeof prog, "%s", modprobe);
    char *argv[] = { "modprobe", "-q", "nbd", NULL };
    if (nbd_spawn_wait(prog, argv, NULL, true) == 0 && nbd_wait_for("/sys/module/nbd", 2000))
      return EXIT_OK;
  }
  return fail("no NBD driver: /sys/module/nbd is absent and 'modprobe nbd' failed (without "
              "root or the module, nbdfuse shows the image as a file: see 'vhdtool help "
              "attach')");
}

static bool device_name(const char *arg, char *name, size_t len)
{
  const char *base = strncmp(arg, "/dev/", 5) == 0 ? arg + 5 : arg;
  if (strncmp(base, "nbd", 3) != 0 || !base[3] ||
      strspn(base + 3, "0123456789") != strlen(base + 3))
    return false;
  snprintf(name, len, "%s", base);
  return true;
}

static int start_nbdkit(const struct attachment *a, const char *plugin)
{
  const char *found = nbd_find_program("nbdkit");
  if (!found)
    return fail("nbdkit not found: install it (Debian: nbdkit)");
  char prog[512], sock[4200], pidfile[4200], filearg[4200];
  snprintf(prog, sizeof prog, "%s", found);
  attach_state_path(a->device, "sock", sock, sizeof sock);
  attach_state_path(a->device, "nbdkit.pid", pidfile, sizeof pidfile);
  snprintf(filearg, sizeof filearg, "file=%s", a->image);
  char *argv[12];
  int n = 0;
  argv[n++] = "nbdkit";
  argv[n++] = "-U";
  argv[n++] = sock;
  argv[n++] = "-P";
  argv[n++] = pidfile;
  if (strcmp(a->mode, "ro") == 0)
    argv[n++] = "-r";
  if (strcmp(a->mode, "cow") == 0)
    argv[n++] = "--filter=cow";
  argv[n++] = (char *)plugin;
  argv[n++] = filearg;
  argv[n++] = "parents=any";   /* as every other vhdtool command finds them */
  argv[n] = NULL;
  int rc = nbd_spawn_wait(prog, argv, NULL, true);
  if (rc != 0)
    return fail("%s: nbdkit could not serve it (exit %d)", a->image, rc);
  return EXIT_OK;
}

static int connect_client(const struct attachment *a, uint32_t sector_size)
{
  const char *found = nbd_find_program("nbd-client");
  char prog[512], sock[4200], dev[64], bs[16];
  snprintf(prog, sizeof prog, "%s", found ? found : "nbd-client");
  attach_state_path(a->device, "sock", sock, sizeof sock);
  snprintf(dev, sizeof dev, "/dev/%s", a->device);
  snprintf(bs, sizeof bs, "%u", (unsigned)sector_size);
  char *argv[] = { "nbd-client", "-unix", sock, dev, "-b", bs, "-N", "vhdtool", NULL };
  int rc = nbd_spawn_wait(prog, argv, NULL, true);
  if (rc != 0)
    return fail("%s: nbd-client could not connect it to the server (exit %d)", dev, rc);
  char pid[96];
  snprintf(pid, sizeof pid, "/sys/block/%s/pid", a->device);
  if (!nbd_wait_for(pid, 5000))
    return fail("%s: not connected 5 s after nbd-client", dev);
  if (nbd_raise_request_size(a->device) < 0)
    warn("%s: requests stay at the kernel's default size: %s", dev, strerror(errno));
  /* The kernel reads the partition table on the first open after the
   * size is set: done here, so /dev/nbdNp1 exists when attach returns. */
  int fd = open(dev, O_RDONLY | O_CLOEXEC);
  if (fd >= 0)
    close(fd);
  return EXIT_OK;
}

/* Undo a half-made attach: the server stopped, the record gone. */
static void undo(const struct attachment *a)
{
  struct attachment rec;
  if (attach_state_read(a->device, &rec) == 0 && rec.nbdkit_pid > 0)
    (void)nbd_stop_server(rec.nbdkit_pid, 20000);
  attach_state_remove(a->device);
}

static int attach(const char *path, const char *mode, const char *device_arg)
{
  struct attachment a = {0};
  snprintf(a.mode, sizeof a.mode, "%s", mode);
  if (device_arg && !device_name(device_arg, a.device, sizeof a.device))
    return usage_error("attach", "'%s' is no NBD device (/dev/nbdN)", device_arg);

  char *real = realpath(path, NULL);
  if (!real)
    return fail("%s: %s", path, strerror(errno));
  snprintf(a.image, sizeof a.image, "%s", real);
  free(real);
  /* Before the open: the server's lock would refuse it in vaguer words. */
  struct conflict_query q = { .image = a.image, .rw = strcmp(mode, "rw") == 0 };
  attach_state_each(find_conflict, &q);
  if (q.found)
    return fail("%s: already attached %s as /dev/%s ('vhdtool detach /dev/%s' first)", path,
                strcmp(q.found->mode, "rw") == 0 ? "read-write" : "read-only",
                q.found->device, q.found->device);
  /* A file that does not open is the clearest error there can be. */
  vhd_image *img;
  struct vhd_info info;
  int st = open_image(path, VHD_OPEN_RDONLY, &img, &info);
  if (st != EXIT_OK)
    return st;
  vhd_close(img);

  if ((st = need_nbd_module()) != EXIT_OK)
    return st;
  if (!nbd_find_program("nbd-client"))
    return fail("nbd-client not found: install it (Debian: nbd-client)");
  const char *plugin = getenv("VHDTOOL_NBDKIT_PLUGIN");
  if (!plugin || !*plugin)
    plugin = VHD_NBDKIT_PLUGIN;
  if (access(plugin, R_OK) != 0)
    return fail("%s: %s (the nbdkit plugin attach runs; VHDTOOL_NBDKIT_PLUGIN names another)",
                plugin, strerror(errno));

  if (device_arg) {
    char sys[96];
    snprintf(sys, sizeof sys, "/sys/block/%s", a.device);
    if (access(sys, F_OK) != 0)
      return fail("/dev/%s: no such NBD device (nbds_max of the nbd module)", a.device);
    if (nbd_connected(a.device))
      return fail("/dev/%s: in use", a.device);
  } else if (nbd_free_device(a.device, sizeof a.device) < 0) {
    return fail("no free /dev/nbdN: all are connected");
  }
  if (attach_state_write(&a) < 0) {
    char run[4096];
    attach_run_dir(run, sizeof run);
    int err = errno;
    attach_state_remove(a.device);
    return fail("%s: cannot record the attachment: %s", run, strerror(err));
  }
  st = start_nbdkit(&a, plugin);
  if (st == EXIT_OK)
    st = connect_client(&a, info.logical_sector_size ? info.logical_sector_size : 512);
  if (st != EXIT_OK) {
    undo(&a);
    return st;
  }
  printf("/dev/%s\n", a.device);
  return EXIT_OK;
}
#endif

enum { OPT_MODE = 256, OPT_LIST };

static const struct option long_options[] = {
  {"read-only", no_argument, NULL, 'r'},
  {"mode", required_argument, NULL, OPT_MODE},
  {"list", no_argument, NULL, OPT_LIST},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
  const char *me = "attach";
  const char *mode = "rw";
  bool list = false;
  int c;

  while ((c = getopt_long(argc, argv, ":rh", long_options, NULL)) != -1) {
    switch (c) {
    case 'r':
      mode = "ro";
      break;
    case OPT_MODE:
      if (strcmp(optarg, "ro") != 0 && strcmp(optarg, "cow") != 0 && strcmp(optarg, "rw") != 0)
        return usage_error(me, "unknown mode '%s' (ro, cow or rw)", optarg);
      mode = optarg;
      break;
    case OPT_LIST:
      list = true;
      break;
    case 'h':
      print_command_help(&cmd_attach, stdout);
      return EXIT_OK;
    default:
      return option_error(me, c, argv, long_options);
    }
  }
  if (list && optind < argc)
    return usage_error(me, "--list takes no FILE");
  if (!list && optind >= argc)
    return usage_error(me, "missing FILE");
  if (optind + 2 < argc)
    return usage_error(me, "unexpected argument '%s'", argv[optind + 2]);
#ifdef VHD_ATTACH_LINUX
  if (list)
    return attach_state_each(print_one, NULL) == 0 ? EXIT_OK : EXIT_FAIL;
  return attach(argv[optind], mode, optind + 1 < argc ? argv[optind + 1] : NULL);
#else
  return fail("attach needs Linux's NBD driver");
#endif
}

const struct command cmd_attach = {
  .name = "attach",
  .summary = "Attach an image as a block device /dev/nbdN (Linux, root).",
  .synopsis = "vhdtool attach [-r] [--mode ro|cow|rw] FILE [/dev/nbdN]\n"
              "       vhdtool attach --list",
  .help =
    "Options:\n"
    "  -r, --read-only   the same as --mode ro\n"
    "      --mode MODE   rw (default): writes go to FILE; ro: the device is\n"
    "                    read-only; cow: writes are kept in memory and dropped\n"
    "                    at detach, FILE and its parents are never written\n"
    "      --list        show what is attached: device, mode, image\n"
    "  -h, --help        show this help\n"
    "\n"
    "FILE, with its parent chain, is served by nbdkit and the project's plugin\n"
    "on a private Unix socket and connected to the first free /dev/nbdN (or\n"
    "the one given) by nbd-client; the device is printed. Partitions appear as\n"
    "/dev/nbdNp1... Needs root, the nbd kernel module, nbdkit and nbd-client.\n"
    "Detach with 'vhdtool detach /dev/nbdN' before using FILE otherwise.\n"
    "Without root: 'nbdfuse DIR --command nbdkit -s PLUGIN file=FILE' shows\n"
    "the disk as the file DIR/nbd (docs/vhdtool.md).\n",
  .run = run,
};
