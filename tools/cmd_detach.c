/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool detach: the end of an attach. The device is flushed and
 * disconnected (the kernel sends NBD_CMD_DISC, so nbdkit closes the image
 * and the plugin's close flushes it), then nbdkit is stopped and waited
 * for: once detach returns, the image is closed and consistent. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attach_state.h"
#include "vhdtool.h"

#ifdef VHD_ATTACH_LINUX
#include "nbd_common.h"

static int detach(const char *arg)
{
  const char *name = strncmp(arg, "/dev/", 5) == 0 ? arg + 5 : arg;
  struct attachment a;
  if (attach_state_read(name, &a) < 0)
    return fail("%s: not attached by vhdtool (see 'vhdtool attach --list')", arg);
  if (nbd_connected(a.device) && nbd_disconnect(a.device) < 0)
    return fail("/dev/%s: disconnect: %s", a.device, strerror(errno));
  if (a.nbdkit_pid > 0 && nbd_stop_server(a.nbdkit_pid, 20000) < 0)
    return fail("%s: nbdkit (pid %d) did not stop within 20 s; the image may still be open",
                a.image, a.nbdkit_pid);
  attach_state_remove(a.device);
  printf("/dev/%s detached (%s)\n", a.device, a.image);
  return EXIT_OK;
}
#endif

static const struct option long_options[] = {
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int run(int argc, char **argv)
{
  const char *me = "detach";
  int c;
  while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
    if (c != 'h')
      return option_error(me, c, argv, long_options);
    print_command_help(&cmd_detach, stdout);
    return EXIT_OK;
  }
  if (optind >= argc)
    return usage_error(me, "missing DEVICE");
  if (optind + 1 < argc)
    return usage_error(me, "unexpected argument '%s'", argv[optind + 1]);
#ifdef VHD_ATTACH_LINUX
  return detach(argv[optind]);
#else
  return fail("detach needs Linux's NBD driver");
#endif
}

const struct command cmd_detach = {
  .name = "detach",
  .summary = "Detach an image attached with 'vhdtool attach'.",
  .synopsis = "vhdtool detach /dev/nbdN",
  .help =
    "Options:\n"
    "  -h, --help   show this help\n"
    "\n"
    "Flushes and disconnects the device, stops the nbdkit that served it and\n"
    "waits until it has closed the image. Unmount the device's file systems\n"
    "first.\n",
  .run = run,
};
