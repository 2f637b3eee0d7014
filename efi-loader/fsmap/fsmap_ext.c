/* ext2/3/4 (placeholder until the module lands: recognises nothing). */
#include "fsmap_priv.h"

int fsmap_ext_mount(struct fsmap_volume *vol)
{
  (void)vol;
  return -ENOTSUP;
}

int fsmap_ext_find(struct fsmap_volume *vol, const struct fsmap_file *dir, const char *utf8,
                   size_t utf8_len, struct fsmap_file *out)
{
  (void)dir, (void)utf8, (void)utf8_len, (void)out;
  return fsmap_fail(vol, ENOTSUP, "ext is not supported");
}

int fsmap_ext_map(struct fsmap_volume *vol, const struct fsmap_file *f,
                  struct fsmap_extents *out)
{
  (void)f, (void)out;
  return fsmap_fail(vol, ENOTSUP, "ext is not supported");
}

void fsmap_ext_unmount(struct fsmap_volume *vol)
{
  (void)vol;
}
