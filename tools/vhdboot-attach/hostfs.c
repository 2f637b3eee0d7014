/* SPDX-License-Identifier: BSD-3-Clause */
/* Mount the host file system: the type the command line names, else the
 * one the record's fs byte says (ext2/3/4 by the ext4 driver, NTFS by
 * ntfs3), else vfat, exfat, ext4 and ntfs3 in turn.
 * Read-only for ro and cow (cow must leave every byte of the image as it
 * was), read-write for rw. */
#include "attach.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

static int make_dirs(const char *dir)
{
  char p[512];
  snprintf(p, sizeof p, "%s", dir);
  for (char *s = p + 1; *s; s++)
    if (*s == '/') {
      *s = '\0';
      if (mkdir(p, 0755) < 0 && errno != EEXIST)
        return -1;
      *s = '/';
    }
  return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

const char *host_fs_named(const struct request *rq)
{
  return rq->fstype[0] ? rq->fstype
         : rq->fs == 64 ? "exfat"
         : (rq->fs == 12 || rq->fs == 16 || rq->fs == 32) ? "vfat"
         : (rq->fs >= 2 && rq->fs <= 4) ? "ext4"
         : rq->fs == 7 ? "ntfs3" : NULL;
}

int host_mount(const struct request *rq, const char *dev, const char *dir)
{
  if (make_dirs(dir) < 0)
    return fail("%s: cannot create: %s", dir, strerror(errno));
  const char *order[] = { "vfat", "exfat", "ext4", "ntfs3" };
  enum { N_ORDER = sizeof order / sizeof order[0] };
  const char *named = host_fs_named(rq);
  unsigned long flags = MS_NOATIME | MS_NODEV | MS_NOSUID | MS_NOEXEC;
  if (rq->mode != ATTACH_RW)
    flags |= MS_RDONLY;
  int last = 0;
  for (int i = named ? -1 : 0; i < N_ORDER; i++) {
    const char *type = i < 0 ? named : order[i];
    if (i >= 0 && named && strcmp(type, named) == 0)
      continue;
    if (mount(dev, dir, type, flags, NULL) == 0) {
      note("mounted %s (%s) on %s %s", dev, type, dir, flags & MS_RDONLY ? "read-only" : "read-write");
      return 0;
    }
    last = errno;
    if (rq->fstype[0])
      break;   /* the user named it: no guessing */
  }
  return fail("%s: cannot mount it as %s: %s", dev,
              rq->fstype[0] ? rq->fstype : named ? named : "vfat, exfat, ext4 or ntfs3",
              strerror(last));
}
