/* SPDX-License-Identifier: BSD-3-Clause */
/* A caller's backend with every optional vhd_io_ops member NULL (flush,
 * punch_hole, find_data, allocated_size, open_related) goes through open,
 * read, write, check, check --repair, convert and compact (issue 14 B):
 * the library calls a backend only through lib/io.c, which supplies each
 * missing member's default; nothing may dereference a NULL member. */
#include "scratch.h"

#include <criterion/criterion.h>

#include "fakeio.h"

#define MiB (1024ull * 1024)

static void setup(void) { scratch_make("ioopt"); }
static void teardown(void) { scratch_remove(); fake_free_all(); }

static const struct vhd_io_ops required_only = {
  .pread = fake_pread,
  .pwrite = fake_pwrite,
  .get_size = fake_get_size,
  .set_size = fake_set_size,
  .close = fake_close,
};

static vhd_io *minimal_io(struct fake *f, unsigned flags)
{
  vhd_io *io;
  cr_assert_eq(vhd_io_new(&required_only, f, "minimal", flags, &io), 0, "%s", vhd_last_error());
  return io;
}

static void pattern(uint8_t *b, size_t n, uint8_t seed)
{
  for (size_t i = 0; i < n; i++)
    b[i] = (uint8_t)(seed + i * 31 + i / 4096);
}

static void through_every_operation(enum vhd_format fmt)
{
  struct fake f;
  memset(&f, 0, sizeof f);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = VHD_TYPE_DYNAMIC;
  p.size = 16 * MiB;
  p.block_size = 2 * MiB;
  vhd_image *img;
  cr_assert_eq(vhd_create_io(minimal_io(&f, VHD_IO_RDWR), &p, &img), 0, "%s", vhd_last_error());
  static uint8_t data[3 * MiB], back[3 * MiB];
  pattern(data, sizeof data, 1);
  cr_assert_eq(vhd_pwrite(img, data, sizeof data, MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_zero(img, 4 * MiB, 2 * MiB, VHD_ZERO_MAY_TRIM), 0, "%s", vhd_last_error());
  memset(data + 3 * MiB - MiB, 0, MiB);  /* [3, 4) MiB of the disk kept; 4 MiB on zeroed */
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  cr_assert_eq(vhd_open_io(minimal_io(&f, VHD_IO_RDWR), VHD_FORMAT_AUTO, VHD_OPEN_RDWR, &img), 0,
               "%s", vhd_last_error());
  cr_assert_eq(vhd_pread(img, back, sizeof back, MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(memcmp(back, data, 2 * MiB), 0, "read back differs");
  pattern(data, MiB, 9);
  cr_assert_eq(vhd_pwrite(img, data, MiB, 8 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_convert(img, spath("out.vhdx"), &p, 0, NULL, NULL), 0, "%s", vhd_last_error());
  struct vhd_compact_result cres;
  cr_assert_eq(vhd_compact(img, 0, NULL, NULL, &cres), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  vhd_io *io = minimal_io(&f, VHD_IO_RDWR);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_assert_eq(res.corruptions, 0);
  cr_assert_eq(vhd_check_io(io, VHD_CHECK_REPAIR, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_assert_eq(res.corruptions, 0);
  vhd_io_close(io);

  /* The converted copy reads what the source held. */
  cr_assert_eq(vhd_open(spath("out.vhdx"), VHD_OPEN_RDONLY, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pread(img, back, MiB, 8 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(memcmp(back, data, MiB), 0, "the converted copy differs");
  cr_assert_eq(vhd_close(img), 0);
  fake_destroy(&f);
}

Test(io_optional, vhd, .init = setup, .fini = teardown)
{
  through_every_operation(VHD_FORMAT_VHD);
}

Test(io_optional, vhdx, .init = setup, .fini = teardown)
{
  through_every_operation(VHD_FORMAT_VHDX);
}

/* A read-only backend (no pwrite or set_size either) is checked, and a
 * repair asked of it fails with a message, never a crash. */
Test(io_optional, read_only_backend, .init = setup, .fini = teardown)
{
  static const struct vhd_io_ops read_only = {
    .pread = fake_pread, .get_size = fake_get_size, .close = fake_close,
  };
  struct fake f;
  memset(&f, 0, sizeof f);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = 8 * MiB;
  vhd_image *img;
  cr_assert_eq(vhd_create_io(fake_io(&f, "full", VHD_IO_RDWR), &p, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);
  vhd_io *io;
  cr_assert_eq(vhd_io_new(&read_only, &f, "read-only", VHD_IO_RDWR, &io), 0);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  int r = vhd_check_io(io, VHD_CHECK_REPAIR, NULL, NULL, &res);
  cr_assert(r == 0 || r == -EROFS, "repair on a backend without pwrite: %d (%s)", r,
            vhd_last_error());
  vhd_io_close(io);
  fake_destroy(&f);
}
