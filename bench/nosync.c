/* SPDX-License-Identifier: BSD-3-Clause */
/* nosync.so: LD_PRELOAD shim that turns fsync/fdatasync into no-ops.
 *
 * A diagnostic only: convert-bench.sh -n runs vhdtool under it to measure
 * how much of vhdtool's time is spent waiting for its output to reach the
 * disk, which qemu-img convert (cache=unsafe by default) never waits for.
 * Output made this way is not durable; never use it outside a benchmark. */
#define _GNU_SOURCE 1
#include <unistd.h>

int fsync(int fd)
{
  (void)fd;
  return 0;
}

int fdatasync(int fd)
{
  (void)fd;
  return 0;
}
