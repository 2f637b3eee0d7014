/* SPDX-License-Identifier: BSD-3-Clause */
/* kill_at_unlink.so: LD_PRELOAD shim for crash tests (test_merge.sh).
 * With KILL_AT_UNLINK=N in the environment, the process kills itself with
 * SIGKILL as soon as its Nth unlink() has returned, so a test can stop a
 * program exactly between two removals, where a random kill lands only by
 * luck. Without the variable unlink() behaves as usual. Never installed. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int unlink(const char *path)
{
  static int (*real_unlink)(const char *);
  static int calls;
  if (!real_unlink)
    real_unlink = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
  int r = real_unlink(path);
  const char *at = getenv("KILL_AT_UNLINK");
  if (at && ++calls == atoi(at))
    kill(getpid(), SIGKILL);
  return r;
}
