/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_convert refuses an output that is a layer of its source (issue 14
 * D): the source itself, its parent, a symbolic link to either and a hard
 * link to either, even with VHD_CREATE_OVERWRITE. It used to return 0
 * having replaced the source when the source was open without a lock
 * (force-share), and -EBUSY ("another process") with one: the guard lived
 * only in vhdtool. The files
 * of the chain are compared byte for byte before and after. */
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd.h"

#define MiB (1024ull * 1024)

static void setup(void) { scratch_make("convguard"); }
static void teardown(void) { scratch_remove(); }

static void make(const char *name, enum vhd_format fmt, const char *parent, uint8_t fill)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = parent ? VHD_TYPE_DIFFERENCING : VHD_TYPE_DYNAMIC;
  p.size = parent ? 0 : 8 * MiB;
  p.parent = parent;
  vhd_image *img;
  cr_assert_eq(vhd_create(name, &p, &img), 0, "%s", vhd_last_error());
  static uint8_t data[MiB];
  memset(data, fill, sizeof data);
  cr_assert_eq(vhd_pwrite(img, data, sizeof data, parent ? MiB : 0), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);
}

static void refused_onto(enum vhd_format fmt)
{
  char base[PATH_MAX], child[PATH_MAX];
  snprintf(base, sizeof base, "%s", spath(fmt == VHD_FORMAT_VHD ? "base.vhd" : "base.vhdx"));
  snprintf(child, sizeof child, "%s", spath(fmt == VHD_FORMAT_VHD ? "child.vhd" : "child.vhdx"));
  make(base, fmt, NULL, 0x11);
  make(child, fmt, base, 0x22);
  cr_assert_eq(symlink(child, spath("child-link")), 0);
  cr_assert_eq(symlink(base, spath("base-link")), 0);
  cr_assert_eq(link(child, spath("child-hard")), 0);
  cr_assert_eq(link(base, spath("base-hard")), 0);
  size_t nb, nc;
  uint8_t *b0 = read_whole_file(base, &nb), *c0 = read_whole_file(child, &nc);

  /* Without a lock (force-share) nothing else stops the write; with one
   * the library's reason comes before the lock conflict. */
  for (int shared = 1; shared >= 0; shared--) {
  vhd_image *src;
  cr_assert_eq(vhd_open(child, shared ? VHD_OPEN_FORCE_SHARE : VHD_OPEN_RDONLY, &src), 0, "%s",
               vhd_last_error());
  const char *targets[] = { child, base, spath("child-link"), spath("base-link"),
                            spath("child-hard"), spath("base-hard") };
  for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
    struct vhd_create_params p;
    vhd_create_params_init(&p);
    p.format = VHD_FORMAT_RAW;
    p.type = VHD_TYPE_NONE;
    p.flags = VHD_CREATE_OVERWRITE;
    int r = vhd_convert(src, targets[i], &p, 0, NULL, NULL);
    cr_assert_eq(r, -EINVAL, "convert onto %s returned %d (%s)", targets[i], r,
                 vhd_last_error());
    cr_assert(strstr(vhd_last_error(), "source"), "message: %s", vhd_last_error());
  }
  cr_assert_eq(vhd_close(src), 0);
  }
  vhd_image *src;
  size_t nb1, nc1;
  uint8_t *b1 = read_whole_file(base, &nb1), *c1 = read_whole_file(child, &nc1);
  cr_assert(nb == nb1 && memcmp(b0, b1, nb) == 0, "the parent changed");
  cr_assert(nc == nc1 && memcmp(c0, c1, nc) == 0, "the source changed");
  /* The same chain still opens and reads what it held. */
  cr_assert_eq(vhd_open(child, VHD_OPEN_RDONLY, &src), 0, "%s", vhd_last_error());
  uint8_t x[2];
  cr_assert_eq(vhd_pread(src, &x[0], 1, 0), 0);
  cr_assert_eq(vhd_pread(src, &x[1], 1, MiB), 0);
  cr_assert(x[0] == 0x11 && x[1] == 0x22);
  cr_assert_eq(vhd_close(src), 0);
  /* Another destination is fine. */
  cr_assert_eq(vhd_open(child, VHD_OPEN_RDONLY, &src), 0);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_RAW;
  p.type = VHD_TYPE_NONE;
  cr_assert_eq(vhd_convert(src, spath("out.raw"), &p, 0, NULL, NULL), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(src), 0);
  free(b0);
  free(b1);
  free(c0);
  free(c1);
}

Test(convert_guard, vhd, .init = setup, .fini = teardown)
{
  refused_onto(VHD_FORMAT_VHD);
}

Test(convert_guard, vhdx, .init = setup, .fini = teardown)
{
  refused_onto(VHD_FORMAT_VHDX);
}
