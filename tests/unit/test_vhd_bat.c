/* SPDX-License-Identifier: BSD-3-Clause */
/* The BAT and the layout it describes (lib/vhd/bat.c and the checks of
 * vhd_open.c): entries past the end of the file, over metadata or over
 * each other, tables too small for the disk or too large for the file;
 * blocks out of order with padding between them; leaks found by check. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "vhd.h"
#include "vhd/bat.h"
#include "vhd/footer.h"

#define MiB (1u << 20)

static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static void put_be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }
static uint32_t sum_csum(const uint8_t *p, size_t len, size_t off)
{
  uint32_t s = 0;
  for (size_t i = 0; i < len; i++)
    if (i < off || i >= off + 4)
      s += p[i];
  return ~s;
}

/* --- vhd_bat_validate on its own ---------------------------------------- */

struct findings {
  unsigned n;
  char last[512];
};

static void collect(void *opaque, enum vhd_check_severity sev, const char *msg)
{
  struct findings *f = opaque;
  if (sev == VHD_CHECK_CORRUPTION) {
    f->n++;
    snprintf(f->last, sizeof f->last, "%s", msg);
  }
}

static struct vhd_bat make_bat(const uint32_t *entries, uint32_t n)
{
  struct vhd_bat bat;
  cr_assert_eq(vhd_bat_init_empty("bat.vhd", 1536, n, &bat), 0);
  memcpy(bat.entry, entries, n * sizeof *entries);
  return bat;
}

/* Blocks of 8 sectors (bitmap 1 + 7 data, a toy geometry); metadata up to
 * sector 8; the footer at sector 100. */
static const struct vhd_file_range toy_meta[] = {
  { 0, 512, "the footer copy" },
  { 512, 1536, "the dynamic header" },
  { 1536, 1536 + 4 * 8, "the BAT" },
};
#define TOY_BLOCK (8u * 512)
#define TOY_LIMIT (100u * 512)

Test(vhd_bat, valid_layout_passes)
{
  const uint32_t e[8] = { 8, VHD_BAT_UNUSED, 40, 16, VHD_BAT_UNUSED, 92, 24, VHD_BAT_UNUSED };
  struct vhd_bat bat = make_bat(e, 8);
  cr_assert_eq(vhd_bat_validate(&bat, "toy.vhd", TOY_BLOCK, toy_meta, 3, TOY_LIMIT, NULL), 0,
               "%s", vhd_last_error());
  cr_assert_eq(vhd_bat_count_used(&bat, 8), 5u);
  cr_assert_eq(vhd_bat_blocks_end(&bat, TOY_BLOCK), 100u * 512);
  vhd_bat_free(&bat);
}

static void expect_bad(const uint32_t *e, uint32_t n, const char *needle, uint32_t cleared)
{
  struct vhd_bat bat = make_bat(e, n);
  int r = vhd_bat_validate(&bat, "toy.vhd", TOY_BLOCK, toy_meta, 3, TOY_LIMIT, NULL);
  cr_assert_eq(r, -EINVAL);
  cr_assert_not_null(strstr(vhd_last_error(), "toy.vhd"), "%s", vhd_last_error());
  cr_assert_not_null(strstr(vhd_last_error(), needle), "want \"%s\" in \"%s\"", needle,
                     vhd_last_error());
  vhd_bat_free(&bat);

  /* With a collector: reported once, the entry dropped, the rest kept. */
  struct findings f = { 0, "" };
  struct vhd_check_result res;
  memset(&res, 0, sizeof res);
  struct vhd_diag d = { .report = collect, .opaque = &f, .result = &res };
  bat = make_bat(e, n);
  cr_assert_eq(vhd_bat_validate(&bat, "toy.vhd", TOY_BLOCK, toy_meta, 3, TOY_LIMIT, &d), 0);
  cr_assert_eq(f.n, 1u, "%u findings, last: %s", f.n, f.last);
  cr_assert_eq(res.corruptions, 1u);
  cr_assert_eq(bat.entry[cleared], VHD_BAT_UNUSED);
  for (uint32_t i = 0; i < n; i++)
    if (i != cleared)
      cr_assert_eq(bat.entry[i], e[i], "entry %u changed", i);
  vhd_bat_free(&bat);
}

Test(vhd_bat, entry_past_end_of_file)
{
  const uint32_t e[4] = { 8, 200, 16, VHD_BAT_UNUSED };
  expect_bad(e, 4, "BAT entry 1 points at sector 200 (offset 102400), past the end of the "
             "file's data at offset 51200", 1);
  /* Starting inside, ending over the footer. */
  const uint32_t e2[4] = { 8, 95, 16, VHD_BAT_UNUSED };
  expect_bad(e2, 4, "BAT entry 1 points at sector 95, so its block (offset 48640, 4096 "
             "bytes) runs past the end of the file's data at offset 51200", 1);
  /* The largest sector number: the arithmetic must not wrap. */
  const uint32_t e3[4] = { 8, 0xFFFFFFFEu, 16, VHD_BAT_UNUSED };
  expect_bad(e3, 4, "past the end", 1);
}

Test(vhd_bat, entry_zero_in_a_file_smaller_than_a_block)
{
  /* The block at sector 0 both overlaps the footer copy and runs past the
   * end; the overlap is what is wrong with an entry of 0. */
  const uint32_t e[2] = { 0, VHD_BAT_UNUSED };
  struct vhd_bat bat = make_bat(e, 2);
  cr_assert_eq(vhd_bat_validate(&bat, "toy.vhd", TOY_BLOCK, toy_meta, 3, 6 * 512, NULL),
               -EINVAL);
  cr_assert_not_null(strstr(vhd_last_error(), "overlaps the footer copy"), "%s",
                     vhd_last_error());
  cr_assert_null(strstr(vhd_last_error(), "past the end"), "%s", vhd_last_error());
  vhd_bat_free(&bat);
}

Test(vhd_bat, entry_over_metadata)
{
  const uint32_t a[3] = { 8, 0, 16 };
  expect_bad(a, 3, "BAT entry 1 points at sector 0, so its block (offset 0, 4096 bytes) "
             "overlaps the footer copy", 1);
  const uint32_t b[3] = { 1, 8, 16 };
  expect_bad(b, 3, "overlaps the dynamic header", 0);
  const uint32_t c[3] = { 8, 16, 3 };
  expect_bad(c, 3, "overlaps the BAT", 2);
}

Test(vhd_bat, entries_overlap_each_other)
{
  const uint32_t same[3] = { 8, 40, 8 };
  expect_bad(same, 3, "BAT entries 0 and 2 overlap", 2);
  const uint32_t inside[4] = { 40, 8, 44, 16 };
  expect_bad(inside, 4, "BAT entries 0 and 2 overlap (sectors 40 and 44)", 2);
}

/* --- Through open -------------------------------------------------------- */

/* A dynamic image in memory with blocks 0 and 2 of four written. */
static void *make_image(size_t *len, uint32_t block_size)
{
  struct vhd_create_params p;
  vhd_io *io;
  vhd_image *img;
  vhd_create_params_init(&p);
  p.size = 4 * (uint64_t)block_size;
  p.block_size = block_size;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "made.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  uint8_t buf[4096];
  memset(buf, 0x5a, sizeof buf);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 0), 0);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 2 * (uint64_t)block_size), 0);
  cr_assert_eq(vhd_flush(img), 0);
  void *data;
  cr_assert_eq(vhd_io_memory_contents(io, &data, len), 0);
  vhd_close(img);
  return data;
}

static int open_bytes(const void *data, size_t len, const char *name, vhd_image **img)
{
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(data, len, name, VHD_IO_RDONLY, &io), 0);
  return vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, img);
}

static void expect_open_fails(const void *data, size_t len, const char *name, const char *needle)
{
  vhd_image *img = NULL;
  int r = open_bytes(data, len, name, &img);
  cr_assert_lt(r, 0, "%s opened", name);
  cr_assert_not_null(strstr(vhd_last_error(), name), "%s", vhd_last_error());
  cr_assert_not_null(strstr(vhd_last_error(), needle), "want \"%s\" in \"%s\"", needle,
                     vhd_last_error());
}

static void fix_header(uint8_t *data)
{
  uint8_t *h = data + 512;
  put_be32(h + 36, sum_csum(h, 1024, 36));
}

Test(vhd_bat, open_refuses_bad_entries)
{
  size_t len;
  uint8_t *data = make_image(&len, MiB);
  uint8_t *h = data + 512, *bat = data + be64(h + 16);
  vhd_image *img;
  cr_assert_eq(open_bytes(data, len, "good.vhd", &img), 0, "%s", vhd_last_error());
  vhd_close(img);

  uint32_t saved = be32(bat + 4);
  put_be32(bat + 4, (uint32_t)(len / 512) + 7);
  char want[128];
  snprintf(want, sizeof want, "BAT entry 1 points at sector %u (offset %zu), past the end",
           (uint32_t)(len / 512) + 7, (len / 512 + 7) * 512);
  expect_open_fails(data, len, "past.vhd", want);
  put_be32(bat + 4, be32(bat));
  expect_open_fails(data, len, "twice.vhd", "overlap");
  put_be32(bat + 4, saved);

  /* Table too small for the disk. */
  put_be32(h + 28, 3);
  fix_header(data);
  expect_open_fails(data, len, "small.vhd", "BAT too small");
  /* A hostile entry count is refused before anything is allocated. */
  put_be32(h + 28, 0xFFFFFFFFu);
  fix_header(data);
  expect_open_fails(data, len, "huge.vhd", "max_table_entries");
  put_be32(h + 28, 1u << 20);
  fix_header(data);
  expect_open_fails(data, len, "long.vhd", "extends past the end of the file");
  free(data);
}

/* vhd_check keeps going after a bad entry and reports every finding. */
Test(vhd_bat, check_reports_all_bad_entries)
{
  size_t len;
  uint8_t *data = make_image(&len, MiB);
  uint8_t *bat = data + be64(data + 512 + 16);
  put_be32(bat + 4, 0xFFFFFF00u);    /* past EOF */
  put_be32(bat + 12, be32(bat));     /* same block as entry 0 */
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(data, len, "two-bad.vhd", VHD_IO_RDONLY, &io), 0);
  struct findings f = { 0, "" };
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, 0, collect, &f, &res), 0);
  cr_assert_eq(res.corruptions, 2u, "%u corruptions, last: %s", res.corruptions, f.last);
  cr_assert_eq(res.format, VHD_FORMAT_VHD);
  vhd_io_close(io);
  free(data);
}

/* Space after the last block that nothing references: a leak with its
 * size. Padding shorter than a block (Hyper-V aligns blocks) is not. */
Test(vhd_bat, check_reports_tail_leak)
{
  size_t len;
  uint8_t *data = make_image(&len, MiB);
  struct vhd_check_result res;
  vhd_io *io;

  cr_assert_eq(vhd_io_new_memory(data, len, "clean.vhd", VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions + res.leaks + res.warnings, 0u);
  vhd_io_close(io);

  size_t extra = MiB + 512 + 4096, big = len + extra;
  uint8_t *leaky = calloc(1, big);
  memcpy(leaky, data, len - 512);
  memcpy(leaky + big - 512, data + len - 512, 512);
  cr_assert_eq(vhd_io_new_memory(leaky, big, "leaky.vhd", VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions, 0u);
  cr_assert_eq(res.leaks, 1u);
  cr_assert_eq(res.leaked_bytes, extra);
  vhd_io_close(io);

  /* It still opens and reads, and a write goes after the leaked space
   * (which might hold anything) rather than into it. */
  memset(leaky + len - 512, 0xEE, extra);
  cr_assert_eq(vhd_io_new_memory(leaky, big, "leaky.vhd", VHD_IO_RDWR, &io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_VHD, VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  uint8_t buf[4096];
  memset(buf, 0x11, 512);
  cr_assert_eq(vhd_pwrite(img, buf, 512, MiB + 1024), 0);
  cr_assert_eq(vhd_pread(img, buf, sizeof buf, MiB), 0);
  for (size_t i = 0; i < sizeof buf; i++)
    cr_assert_eq(buf[i], i >= 1024 && i < 1536 ? 0x11 : 0, "byte %zu", i);
  vhd_close(img);
  free(leaky);
  free(data);
}

/* Blocks out of order, with padding so the data is 4 KiB aligned (what
 * recent Windows writes), and a BAT larger than the disk needs (blktap). */
Test(vhd_bat, blocks_out_of_order_and_padded)
{
  const uint32_t bs = 64 * 1024;
  const uint64_t disk = 4 * (uint64_t)bs;
  const uint32_t entries = 6;   /* two more than the disk needs */
  /* Block order in the file: 2, then 0, then nothing for 1 and 3. */
  const uint64_t block2 = 8192 - 512, block0 = block2 + bs + 4096;
  const size_t len = (size_t)(block0 + 512 + bs + 3584 + 512);
  uint8_t *file = calloc(1, len);
  uint8_t footer[512];

  memset(footer, 0, sizeof footer);
  memcpy(footer, "conectix", 8);
  put_be32(footer + 8, 2);
  put_be32(footer + 12, 0x00010000);
  put_be64(footer + 16, 512);
  memcpy(footer + 28, "win ", 4);
  memcpy(footer + 36, "Wi2k", 4);
  put_be64(footer + 40, disk);
  put_be64(footer + 48, disk);
  put_be32(footer + 60, 3);
  put_be32(footer + 64, sum_csum(footer, 512, 64));
  memcpy(file, footer, 512);
  memcpy(file + len - 512, footer, 512);

  uint8_t *h = file + 512;
  memcpy(h, "cxsparse", 8);
  put_be64(h + 8, UINT64_MAX);
  put_be64(h + 16, 1536);
  put_be32(h + 24, 0x00010000);
  put_be32(h + 28, entries);
  put_be32(h + 32, bs);
  put_be32(h + 36, sum_csum(h, 1024, 36));
  memset(file + 1536, 0xff, 512);
  put_be32(file + 1536 + 0, (uint32_t)(block0 / 512));
  put_be32(file + 1536 + 8, (uint32_t)(block2 / 512));
  /* Windows-style partial bitmaps: dynamic reads must not depend on them. */
  memset(file + block0, 0xff, 16);
  memset(file + block2, 0x0f, 16);
  for (uint32_t i = 0; i < bs; i++) {
    file[block0 + 512 + i] = (uint8_t)(i % 251);
    file[block2 + 512 + i] = (uint8_t)(i % 13 + 100);
  }
  cr_assert_eq((block0 + 512) % 4096, 0u);
  cr_assert_eq((block2 + 512) % 4096, 0u);

  vhd_io *io;
  vhd_image *img;
  cr_assert_eq(vhd_io_new_memory(file, len, "aligned.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  uint8_t *got = malloc(disk), *want = calloc(1, disk);
  for (uint32_t i = 0; i < bs; i++) {
    want[i] = (uint8_t)(i % 251);
    want[2 * bs + i] = (uint8_t)(i % 13 + 100);
  }
  cr_assert_eq(vhd_pread(img, got, disk, 0), 0);
  cr_assert_eq(memcmp(got, want, disk), 0);

  /* New blocks go after everything, and the layout stays valid. */
  memset(want + bs + 100 * 512, 0x77, 3 * 512);
  cr_assert_eq(vhd_pwrite(img, want + bs + 100 * 512, 3 * 512, bs + 100 * 512), 0);
  memset(want + 3 * bs, 0x66, bs);
  cr_assert_eq(vhd_pwrite(img, want + 3 * bs, bs, 3 * bs), 0);
  /* Writes into the partially marked block of another tool. */
  memset(want + 2 * bs + 4096, 0x55, 8192);
  cr_assert_eq(vhd_pwrite(img, want + 2 * bs + 4096, 8192, 2 * bs + 4096), 0);
  cr_assert_eq(vhd_flush(img), 0);
  cr_assert_eq(vhd_pread(img, got, disk, 0), 0);
  cr_assert_eq(memcmp(got, want, disk), 0);
  void *after;
  size_t after_len;
  cr_assert_eq(vhd_io_memory_contents(io, &after, &after_len), 0);
  vhd_close(img);

  /* The block of the other tool now marks the written sectors. */
  const uint8_t *bm2 = (const uint8_t *)after + block2;
  cr_assert_eq(bm2[1], 0xff, "sectors 8..15 of block 2 are not marked");
  cr_assert_eq(bm2[2], 0xff, "sectors 16..23 of block 2 are not marked");
  cr_assert_eq(bm2[3], 0x0f, "sectors 24..31 of block 2 changed");

  struct vhd_check_result res;
  cr_assert_eq(vhd_io_new_memory(after, after_len, "aligned-after.vhd", VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions, 0u);
  cr_assert_eq(res.leaks, 0u);
  vhd_io_close(io);
  cr_assert_eq(open_bytes(after, after_len, "aligned-after.vhd", &img), 0);
  cr_assert_eq(vhd_pread(img, got, disk, 0), 0);
  cr_assert_eq(memcmp(got, want, disk), 0);
  vhd_close(img);
  free(after);
  free(got);
  free(want);
  free(file);
}
