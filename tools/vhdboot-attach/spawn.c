/* SPDX-License-Identifier: BSD-3-Clause */
/* Running the helpers (dmsetup, nbdkit, nbd-client, modprobe): the
 * shared runner (tools/nbd-common) with this program's failure lines. */
#include "attach.h"
#include "nbd_common.h"

#include <errno.h>
#include <string.h>

const char *find_program(const char *name)
{
  return nbd_find_program(name);
}

int spawn_wait(const char *prog, char *const argv[], const char *stdin_text)
{
  int rc = nbd_spawn_wait(prog, argv, stdin_text, false);
  if (rc < 0)
    return fail("%s: cannot run it: %s", prog, strerror(errno));
  return rc;
}
