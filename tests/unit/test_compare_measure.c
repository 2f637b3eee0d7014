/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_compare reads only what block status says may differ (issue 16:
 * holes are not read), and finds the first differing sector; vhd_measure
 * agrees with the VHD specification's layout of a dynamic image, worked
 * out here by hand. */
#include <criterion/criterion.h>

#include "fakeio.h"

#define MiB (1024ull * 1024)

/* Bytes the library read from the images under test. */
static uint64_t bytes_read;

static int counting_pread(void *o, void *buf, size_t count, uint64_t offset)
{
  bytes_read += count;
  return fake_pread(o, buf, count, offset);
}

static bool page_is_zero(const struct fake *f, uint64_t pos)
{
  static const uint8_t zeros[4096];
  uint64_t n = f->size - pos < 4096 ? f->size - pos : 4096;
  return memcmp(f->data + pos, zeros, n) == 0;
}

/* A sparse file's SEEK_DATA: data is every 4 KiB page that is not zeros. */
static int page_find_data(void *o, uint64_t offset, uint64_t *data, uint64_t *hole)
{
  const struct fake *f = o;
  uint64_t pos = offset / 4096 * 4096;
  while (pos < f->size && page_is_zero(f, pos))
    pos += 4096;
  *data = pos < f->size ? (pos > offset ? pos : offset) : f->size;
  while (pos < f->size && !page_is_zero(f, pos))
    pos += 4096;
  *hole = pos < f->size ? pos : f->size;
  return 0;
}

static const struct vhd_io_ops counting_ops = {
  .pread = counting_pread,
  .get_size = fake_get_size,
  .find_data = page_find_data,
  .close = fake_close,
};

static void teardown(void) { fake_free_all(); }

/* An image of size bytes (dynamic, or raw) holding 4 KiB of data at
 * size * 3 / 8, and, when poke is not 0, one byte changed at that offset. */
static void make(struct fake *f, enum vhd_format fmt, uint64_t size, uint64_t poke)
{
  memset(f, 0, sizeof *f);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.size = size;
  vhd_image *img;
  cr_assert_eq(vhd_create_io(fake_io(f, "img", VHD_IO_RDWR), &p, &img), 0, "%s",
               vhd_last_error());
  uint8_t data[4096];
  memset(data, 0x5a, sizeof data);
  cr_assert_eq(vhd_pwrite(img, data, sizeof data, size * 3 / 8), 0, "%s", vhd_last_error());
  if (poke)
    cr_assert_eq(vhd_pwrite(img, "!", 1, poke), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
}

static vhd_image *open_counted(struct fake *f)
{
  vhd_io *io;
  cr_assert_eq(vhd_io_new(&counting_ops, f, "counted", VHD_IO_RDONLY, &io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, &img), 0, "%s",
               vhd_last_error());
  return img;
}

/* limit: what reading the allocated blocks costs (block status tells
 * allocation by block in a dynamic image: 2 MiB for VHD, 32 MiB for VHDX;
 * a pair holds three, one read only up to its difference) and the
 * metadata; reading the disks whole would be 512 MiB. */
static void compare_reads_little(enum vhd_format fa, enum vhd_format fb, uint64_t limit)
{
  struct fake a, b;
  uint64_t poke = 200 * MiB + 512 + 77;
  make(&a, fa, 256 * MiB, 0);
  make(&b, fb, 256 * MiB, poke);
  vhd_image *ia = open_counted(&a), *ib = open_counted(&b);
  bytes_read = 0;
  struct vhd_compare_result res;
  cr_assert_eq(vhd_compare(ia, ib, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.differ, 1);
  cr_expect_eq(res.offset, 200 * MiB + 512, "first difference at %llu",
               (unsigned long long)res.offset);
  cr_expect_leq(bytes_read, limit, "read %llu bytes", (unsigned long long)bytes_read);
  bytes_read = 0;
  cr_assert_eq(vhd_compare(ia, ia, VHD_COMPARE_STRICT, NULL, NULL, &res), 0, "%s",
               vhd_last_error());
  cr_expect_eq(res.differ, 0);
  cr_expect_eq(res.offset, UINT64_MAX);
  cr_expect_leq(bytes_read, limit, "read %llu bytes", (unsigned long long)bytes_read);
  vhd_close(ia);
  vhd_close(ib);
}

/* Raw disks: without block status every byte would be read (48 MiB). */
Test(compare, raw_holes_are_not_read, .fini = teardown)
{
  struct fake a, b;
  make(&a, VHD_FORMAT_RAW, 24 * MiB, 0);
  make(&b, VHD_FORMAT_RAW, 24 * MiB, 20 * MiB + 512 + 77);
  vhd_image *ia = open_counted(&a), *ib = open_counted(&b);
  bytes_read = 0;
  struct vhd_compare_result res;
  cr_assert_eq(vhd_compare(ia, ib, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.offset, 20 * MiB + 512);
  cr_expect_leq(bytes_read, 64 * 1024, "read %llu bytes", (unsigned long long)bytes_read);
  vhd_close(ia);
  vhd_close(ib);
}

Test(compare, vhd_reads_only_data, .fini = teardown)
{
  compare_reads_little(VHD_FORMAT_VHD, VHD_FORMAT_VHD, 3 * 2 * MiB);
}

Test(compare, vhdx_against_vhd_reads_only_data, .fini = teardown)
{
  compare_reads_little(VHD_FORMAT_VHDX, VHD_FORMAT_VHD, 2 * 32 * MiB + 3 * 2 * MiB);
}

/* Dynamic VHD (specification: footer copy 512, dynamic header 1024, BAT
 * of 4-byte entries in whole sectors, each block a sector bitmap in whole
 * sectors then the data, the footer 512), each block's data on a 4 KiB
 * boundary with the padding before its bitmap, as Windows lays it out. */
static uint64_t vhd_spec_size(uint64_t size, uint64_t bs, uint64_t blocks_present)
{
  uint64_t entries = (size + bs - 1) / bs;
  uint64_t bat = (entries * 4 + 511) / 512 * 512;
  uint64_t bitmap = (bs / 512 / 8 + 511) / 512 * 512;
  uint64_t end = 512 + 1024 + bat;
  for (uint64_t b = 0; b < blocks_present; b++)
    end = (end + bitmap + 4095) / 4096 * 4096 + bs;
  return end + 512;
}

Test(measure, dynamic_vhd_as_the_specification_lays_it_out, .fini = teardown)
{
  static const struct { uint64_t size, bs; } cases[] = {
    { 16 * MiB, 2 * MiB }, { 100 * MiB + 512, 2 * MiB }, { 3 * MiB, 512 * 1024 },
    { 1024 * MiB, 1 * MiB },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct vhd_create_params p;
    vhd_create_params_init(&p);
    p.size = cases[i].size;
    p.block_size = (uint32_t)cases[i].bs;
    struct vhd_measure_result m;
    cr_assert_eq(vhd_measure(NULL, &p, &m), 0, "%s", vhd_last_error());
    uint64_t blocks = (p.size + p.block_size - 1) / p.block_size;
    cr_expect_eq(m.required, vhd_spec_size(p.size, p.block_size, 0),
                 "size %llu: required %llu", (unsigned long long)p.size,
                 (unsigned long long)m.required);
    cr_expect_eq(m.fully_allocated, vhd_spec_size(p.size, p.block_size, blocks),
                 "size %llu: fully allocated %llu", (unsigned long long)p.size,
                 (unsigned long long)m.fully_allocated);
  }
}

Test(measure, fixed_vhd_is_the_disk_and_a_footer, .fini = teardown)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.type = VHD_TYPE_FIXED;
  p.size = 1024 * 1024 * MiB;   /* 1 TiB: nothing of that size is held in memory */
  struct vhd_measure_result m;
  cr_assert_eq(vhd_measure(NULL, &p, &m), 0, "%s", vhd_last_error());
  cr_expect_eq(m.required, p.size + 512);
  cr_expect_eq(m.fully_allocated, p.size + 512);
}

Test(measure, needs_a_source_or_a_size, .fini = teardown)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  struct vhd_measure_result m;
  cr_expect_eq(vhd_measure(NULL, &p, &m), -EINVAL);
  cr_expect(strstr(vhd_last_error(), "size") != NULL, "%s", vhd_last_error());
}
