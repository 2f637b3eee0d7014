/* SPDX-License-Identifier: BSD-3-Clause */
/* The few host file operations the tool does itself: existence checks
 * before creating, host space for `info`, and robust reads and writes on
 * standard input and output. Image files are only touched through libvhd. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdtool.h"

bool path_exists(const char *path)
{
  struct stat st;
  return lstat(path, &st) == 0;
}

int write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

long long read_full(int fd, void *buf, size_t len)
{
  char *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, p + got, len - got);
    if (n < 0) {
      /* A signal that asked us to stop ends the read; others retry. */
      if (errno == EINTR && !interrupted())
        continue;
      return -errno;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (long long)got;
}
