/* SPDX-License-Identifier: BSD-3-Clause */
/* A VHD killed while a block was being added can end without its footer
 * (the file grew, the footer's bytes never reached the disk). check must
 * not call that clean, and the next read-write open puts the footer back
 * at the end of the file. */
#include "scratch.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd.h"

#define MiB (1024ull * 1024)

static void setup(void) { scratch_make("lostfooter"); }
static void teardown(void) { scratch_remove(); }

static void make_without_footer(const char *name, uint64_t zeros)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.size = 16 * MiB;
  vhd_image *img;
  cr_assert_eq(vhd_create(spath(name), &p, &img), 0, "%s", vhd_last_error());
  static uint8_t buf[MiB];
  memset(buf, 0x5a, sizeof buf);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 0), 0);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 6 * MiB), 0);
  cr_assert_eq(vhd_close(img), 0);
  /* What the crash leaves: the file longer, zeros where a footer was due. */
  int fd = open(spath(name), O_WRONLY);
  cr_assert_geq(fd, 0);
  struct stat st;
  cr_assert_eq(fstat(fd, &st), 0);
  cr_assert_eq(ftruncate(fd, st.st_size + (off_t)zeros), 0);
  close(fd);
}

static bool footer_at_end(const char *name)
{
  int fd = open(spath(name), O_RDONLY);
  cr_assert_geq(fd, 0);
  struct stat st;
  char cookie[8] = { 0 };
  cr_assert_eq(fstat(fd, &st), 0);
  cr_assert_eq(pread(fd, cookie, sizeof cookie, st.st_size - 512), (ssize_t)sizeof cookie);
  close(fd);
  return memcmp(cookie, "conectix", 8) == 0;
}

static void lost_footer(uint64_t zeros)
{
  make_without_footer("d.vhd", zeros);
  cr_assert(!footer_at_end("d.vhd"));
  struct vhd_check_result res;
  cr_assert_eq(vhd_check(spath("d.vhd"), 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.corruptions, 0u);
  cr_expect_gt(res.leaks, 0u, "a VHD without its footer at the end checked clean");

  vhd_image *img;
  cr_assert_eq(vhd_open(spath("d.vhd"), VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);
  cr_expect(footer_at_end("d.vhd"), "a read-write open did not put the footer back");
  cr_assert_eq(vhd_check(spath("d.vhd"), 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.corruptions + res.leaks + res.warnings, 0u, "not clean after the open");
  uint8_t got[4096];
  cr_assert_eq(vhd_open(spath("d.vhd"), VHD_OPEN_RDONLY, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pread(img, got, sizeof got, 6 * MiB + 4096), 0);
  for (size_t i = 0; i < sizeof got; i++)
    cr_assert_eq(got[i], 0x5a, "data changed at byte %zu", i);
  vhd_close(img);
}

/* A sector's worth of zeros: shorter than a block, so it is not the tail
 * leak check reported before. */
Test(vhd_lost_footer, short_tail, .init = setup, .fini = teardown) { lost_footer(512); }
/* A whole block's worth. */
Test(vhd_lost_footer, block_tail, .init = setup, .fini = teardown)
{
  lost_footer(2 * MiB + 512);
}
