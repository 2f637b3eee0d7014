/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdboot-attach --detach: the end of a boot from an NBD-served image, in
 * the order issue 12 asks for, once the root file system is read-only
 * (systemd-shutdown runs it as a system-shutdown hook; a plain init runs
 * it after "mount -o remount,ro /"):
 *   1. disconnect the NBD device (the kernel sends NBD_CMD_DISC, so nbdkit
 *      closes the image: the plugin's close flushes it);
 *   2. stop nbdkit and wait until it is gone;
 *   3. after an rw boot, give the image written room for the next firmware
 *      boot again (vhd_boot_prepare with the loader's default rule: the
 *      boot used reserve, and the host file system may hold some of the
 *      image as holes now), a warning when that fails;
 *   4. unmount the host file system (or make it read-only), so the host is
 *      not left dirty.
 * The root cannot be read after step 1: everything this needs is locked
 * in memory first. Device-mapper boots need nothing: the host file system
 * is not mounted and the table holds no data of its own. */
#include "attach.h"
#include "nbd_common.h"
#include "vhd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nbd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

/* No waiting for the device afterwards: nbdkit answers the disconnect
 * after the requests before it, and stop_server waits for nbdkit itself
 * (waiting for the device's sysfs "pid" to go cost 10 s per shutdown: it
 * stays). */
static int disconnect(const char *dev)
{
  if (nbd_disconnect(dev) < 0)
    return fail("/dev/%s: disconnect: %s", dev, strerror(errno));
  return 0;
}

static int stop_server(const char *pidfile)
{
  char buf[32];
  if (nbd_read_line(pidfile, buf, sizeof buf) < 0)
    return 0;
  pid_t pid = (pid_t)atoi(buf);
  if (nbd_stop_server(pid, 20000) < 0)
    return fail("nbdkit (pid %d) did not stop within 20 s", (int)pid);
  return 0;
}

static void prepare_next_boot(const char *run_dir)
{
  char path[300], image[1500];
  snprintf(path, sizeof path, "%s/" RUN_PREPARE, run_dir);
  if (nbd_read_line(path, image, sizeof image) < 0)
    return;
  struct vhd_open_params op;
  vhd_open_params_init(&op);
  op.flags = VHD_OPEN_RDWR | VHD_OPEN_NO_PARENT;   /* parents are never written */
  struct vhd_boot_prepare_result res;
  vhd_image *img;
  int r = vhd_open_with(image, &op, &img);
  if (r == 0) {
    r = vhd_boot_prepare(img, 0, NULL, NULL, &res);
    int c = vhd_close(img);
    if (r == 0)
      r = c;
  }
  if (r < 0)
    note("warning: %s: no written room prepared for the next rw boot: %s", image,
         vhd_last_error());
  else
    note("%s: prepared for the next rw boot: reserve %llu KiB free, %llu KiB of zeros "
         "written", image, (unsigned long long)(res.reserve_free_after >> 10),
         (unsigned long long)(res.bytes_written >> 10));
}

int detach(const char *run_dir)
{
  char path[300], dev[64], host[300];
  int rc = 0;
  /* Every page of this program and its libraries in memory now: the root
   * it was loaded from is gone after the disconnect (a page fault then is
   * a SIGBUS). */
  if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
    note("mlockall: %s", strerror(errno));
  snprintf(path, sizeof path, "%s/device", run_dir);
  bool nbd = nbd_read_line(path, dev, sizeof dev) == 0 && strncmp(dev, "nbd", 3) == 0;
  if (nbd)
    rc |= disconnect(dev);
  snprintf(path, sizeof path, "%s/nbdkit.pid", run_dir);
  rc |= stop_server(path);
  if (rc == 0)
    prepare_next_boot(run_dir);   /* nbdkit has closed the image */
  snprintf(host, sizeof host, "%s/host", run_dir);
  if (umount(host) < 0 && errno != EINVAL && errno != ENOENT &&
      mount(NULL, host, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
    rc |= fail("%s: still mounted read-write: %s", host, strerror(errno));
  if (rc == 0 && nbd)
    note("detached /dev/%s, nbdkit stopped, host file system released", dev);
  return rc ? -1 : 0;
}
