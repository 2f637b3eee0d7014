/* SPDX-License-Identifier: BSD-3-Clause */
/* Stable names for the attached disk, made here because udev may not run
 * in the initramfs: /dev/disk/by-id/vhdboot-root and vhdboot-root-partN,
 * and /dev/disk/by-partuuid/<guid> for the partitions (device-mapper
 * partitions get none from udev). Existing links are left alone. */
#include "attach.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int link_to(const char *dir, const char *name, const char *dev)
{
  char target[96], path[300];
  snprintf(target, sizeof target, "../../%s", dev);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (symlink(target, path) < 0 && errno != EEXIST)
    return fail("%s: %s", path, strerror(errno));
  return 0;
}

int links_make(const struct attached *a)
{
  static const char *const dirs[] = { "/dev/disk", "/dev/disk/by-id", "/dev/disk/by-partuuid" };
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
    if (mkdir(dirs[i], 0755) < 0 && errno != EEXIST)
      return fail("%s: %s", dirs[i], strerror(errno));
  if (link_to("/dev/disk/by-id", "vhdboot-root", a->disk) < 0)
    return -1;
  static const uint8_t zero[16];
  for (unsigned i = 0; i < a->n_parts; i++) {
    char name[64];
    snprintf(name, sizeof name, "vhdboot-root-part%u", a->part_number[i]);
    if (link_to("/dev/disk/by-id", name, a->part_dev[i]) < 0)
      return -1;
    if (memcmp(a->part_guid[i], zero, 16) != 0) {
      char g[37];
      guid_to_text(a->part_guid[i], g);
      if (link_to("/dev/disk/by-partuuid", g, a->part_dev[i]) < 0)
        return -1;
    }
  }
  return 0;
}
