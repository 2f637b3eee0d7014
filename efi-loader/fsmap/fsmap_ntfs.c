/* NTFS (placeholder until the module lands: recognises nothing). */
#include "fsmap_priv.h"

int fsmap_ntfs_mount(struct fsmap_volume *vol, const uint8_t *boot)
{
  (void)vol, (void)boot;
  return -ENOTSUP;
}

int fsmap_ntfs_find(struct fsmap_volume *vol, const struct fsmap_file *dir,
                    const uint16_t *name, size_t len, struct fsmap_file *out)
{
  (void)dir, (void)name, (void)len, (void)out;
  return fsmap_fail(vol, ENOTSUP, "NTFS is not supported");
}

int fsmap_ntfs_map(struct fsmap_volume *vol, const struct fsmap_file *f,
                   struct fsmap_extents *out)
{
  (void)f, (void)out;
  return fsmap_fail(vol, ENOTSUP, "NTFS is not supported");
}

void fsmap_ntfs_unmount(struct fsmap_volume *vol)
{
  (void)vol;
}
