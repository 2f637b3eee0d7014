/* SPDX-License-Identifier: BSD-3-Clause */
/* Trim is not zero (issue 19): a discard never writes data and never
 * allocates, partial trims add up to a freed block, and freed block slots
 * take new blocks before the file grows. */
#include "scratch.h"

#include <criterion/criterion.h>
#include <sys/stat.h>

#include "fakeio.h"

#define MiB (1024ull * 1024)

static void setup(void) { scratch_make("trim"); }
static void teardown(void) { scratch_remove(); fake_free_all(); }

static vhd_image *make(const char *name, enum vhd_format fmt, uint32_t bs, const char *parent)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = parent ? VHD_TYPE_DIFFERENCING : VHD_TYPE_DYNAMIC;
  p.size = parent ? 0 : 128 * MiB;
  p.block_size = bs;
  p.parent = parent ? spath(parent) : NULL;
  vhd_image *img;
  cr_assert_eq(vhd_create(spath(name), &p, &img), 0, "create %s: %s", name, vhd_last_error());
  return img;
}

static void fill(vhd_image *img, uint64_t off, uint64_t len, uint8_t seed)
{
  uint8_t *buf = malloc(len);
  cr_assert_not_null(buf);
  for (uint64_t i = 0; i < len; i++)
    buf[i] = (uint8_t)(seed + i * 7 + i / 4096);
  cr_assert_eq(vhd_pwrite(img, buf, len, off), 0, "%s", vhd_last_error());
  free(buf);
}

static uint64_t allocated(vhd_image *img)
{
  struct vhd_info in;
  cr_assert_eq(vhd_get_info(img, &in), 0);
  return in.allocated_blocks;
}

static uint64_t file_size(const char *name)
{
  struct stat st;
  cr_assert_eq(stat(spath(name), &st), 0);
  return (uint64_t)st.st_size;
}

/* A 64 MiB dynamic image in a counting backend that cannot punch. */
static vhd_image *make_fake(struct fake *f, enum vhd_format fmt, uint32_t bs)
{
  memset(f, 0, sizeof *f);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = VHD_TYPE_DYNAMIC;
  p.size = 64 * MiB;
  p.block_size = bs;
  vhd_image *img;
  cr_assert_eq(vhd_create_io(fake_io(f, "fake", VHD_IO_RDWR), &p, &img), 0, "%s",
               vhd_last_error());
  return img;
}

/* Through a counting backend: partial discards of a present block change
 * nothing but host pages (the fake cannot punch, so nothing at all). */
static void partial_writes_nothing(enum vhd_format fmt, uint32_t bs)
{
  struct fake f;
  vhd_image *img = make_fake(&f, fmt, bs);
  fill(img, 0, 2 * bs, 1);
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  uint64_t blocks = allocated(img);
  unsigned changes = f.changes;
  size_t size = f.size;
  for (uint64_t off = 4096; off < bs - 8192; off += bs / 8)
    cr_assert_eq(vhd_discard(img, off, 8192), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_discard(img, bs + 512, bs - 1024), 0, "%s", vhd_last_error());
  cr_expect_eq(f.changes, changes, "a partial discard wrote %u times", f.changes - changes);
  cr_expect_eq(allocated(img), blocks, "allocated blocks changed");
  cr_expect_eq(f.size, size, "file size changed");
  cr_assert_eq(vhd_close(img), 0);
  fake_destroy(&f);
}

Test(trim, vhd_partial_writes_nothing, .init = setup, .fini = teardown)
{
  partial_writes_nothing(VHD_FORMAT_VHD, 2 * MiB);
}

Test(trim, vhdx_partial_writes_nothing, .init = setup, .fini = teardown)
{
  partial_writes_nothing(VHD_FORMAT_VHDX, 2 * MiB);
}

/* In a child, a trim over the parent's data allocates nothing; over the
 * child's own partial data it frees nothing either. */
static void child_allocates_nothing(enum vhd_format fmt, const char *base, const char *child)
{
  vhd_image *img = make(base, fmt, 2 * MiB, NULL);
  fill(img, 0, 8 * MiB, 3);
  cr_assert_eq(vhd_close(img), 0);
  img = make(child, fmt, 2 * MiB, base);
  fill(img, 2 * MiB + 4096, 4096, 9);
  cr_assert_eq(vhd_flush(img), 0);
  uint64_t blocks = allocated(img);
  uint64_t size = file_size(child);
  cr_assert_eq(vhd_discard(img, 0, 2 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_discard(img, 4 * MiB + 4096, 1 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_discard(img, 2 * MiB, 1 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_flush(img), 0);
  cr_expect_eq(allocated(img), blocks, "a trim in a child allocated or freed blocks");
  cr_expect_eq(file_size(child), size, "a trim in a child grew the file");
  /* The parent's data still shows where the child holds nothing. */
  uint8_t a[4096], b[4096];
  vhd_image *par;
  cr_assert_eq(vhd_open(spath(base), VHD_OPEN_RDONLY, &par), 0);
  cr_assert_eq(vhd_pread(par, a, sizeof a, 8192), 0);
  cr_assert_eq(vhd_pread(img, b, sizeof b, 8192), 0);
  cr_expect_eq(memcmp(a, b, sizeof a), 0, "the parent's data changed under a trim");
  vhd_close(par);
  cr_assert_eq(vhd_close(img), 0);
}

Test(trim, vhd_child_allocates_nothing, .init = setup, .fini = teardown)
{
  child_allocates_nothing(VHD_FORMAT_VHD, "base.vhd", "child.vhd");
}

Test(trim, vhdx_child_allocates_nothing, .init = setup, .fini = teardown)
{
  child_allocates_nothing(VHD_FORMAT_VHDX, "base.vhdx", "child.vhdx");
}

/* 32 partial trims that together cover a block free it. */
static void partials_add_up(enum vhd_format fmt, const char *name, uint32_t bs)
{
  vhd_image *img = make(name, fmt, bs, NULL);
  fill(img, 0, 3 * (uint64_t)bs, 5);
  cr_assert_eq(vhd_flush(img), 0);
  uint64_t blocks = allocated(img);
  uint64_t piece = bs / 32;
  /* Out of order, as a file system sends them. */
  for (unsigned i = 0; i < 32; i++) {
    unsigned k = (i * 13) % 32;
    cr_assert_eq(vhd_discard(img, bs + k * piece, piece), 0, "%s", vhd_last_error());
    if (i < 31)
      cr_assert_eq(allocated(img), blocks, "freed after %u of 32 pieces", i + 1);
  }
  cr_expect_eq(allocated(img), blocks - 1, "32 pieces covering block 1 did not free it");
  /* A write between trims keeps a block: its data is live again. */
  cr_assert_eq(vhd_discard(img, 2 * (uint64_t)bs, bs / 2), 0);
  fill(img, 2 * (uint64_t)bs + 4096, 4096, 7);
  cr_assert_eq(vhd_discard(img, 2 * (uint64_t)bs + bs / 2, bs / 2), 0);
  cr_expect_eq(allocated(img), blocks - 1, "a block written after a trim was freed");
  cr_assert_eq(vhd_close(img), 0);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check(spath(name), 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.corruptions + res.leaks, 0u);
}

Test(trim, vhd_partials_add_up, .init = setup, .fini = teardown)
{
  partials_add_up(VHD_FORMAT_VHD, "t.vhd", 2 * MiB);
}

Test(trim, vhdx_partials_add_up, .init = setup, .fini = teardown)
{
  partials_add_up(VHD_FORMAT_VHDX, "t.vhdx", 32 * MiB);
}

/* Freed slots take new blocks: discard + write of the same amount leaves
 * the file size as it was, in this open and after a reopen. */
static void slots_reused(enum vhd_format fmt, const char *name)
{
  vhd_image *img = make(name, fmt, 2 * MiB, NULL);
  fill(img, 0, 16 * MiB, 11);
  cr_assert_eq(vhd_close(img), 0);
  uint64_t size = file_size(name);
  cr_assert_eq(vhd_open(spath(name), VHD_OPEN_RDWR, &img), 0);
  cr_assert_eq(vhd_discard(img, 4 * MiB, 4 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_flush(img), 0);
  fill(img, 40 * MiB, 2 * MiB, 13);
  cr_assert_eq(vhd_close(img), 0);
  cr_expect_eq(file_size(name), size, "the file grew from %llu to %llu",
               (unsigned long long)size, (unsigned long long)file_size(name));
  /* The other freed slot is found again at open. */
  cr_assert_eq(vhd_open(spath(name), VHD_OPEN_RDWR, &img), 0);
  struct vhd_info in;
  cr_assert_eq(vhd_get_info(img, &in), 0);
  cr_expect_gt(in.free_slot_bytes, 0, "info reports no free slot");
  fill(img, 50 * MiB, 2 * MiB, 17);
  cr_assert_eq(vhd_get_info(img, &in), 0);
  cr_expect_eq(in.free_slot_bytes, 0);
  uint8_t buf[4096];
  cr_assert_eq(vhd_pread(img, buf, sizeof buf, 50 * MiB + 2 * MiB - 4096), 0);
  cr_assert_eq(vhd_close(img), 0);
  cr_expect_eq(file_size(name), size, "the file grew after a reopen");
  struct vhd_check_result res;
  cr_assert_eq(vhd_check(spath(name), 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.corruptions + res.leaks, 0u);
}

Test(trim, vhd_slots_reused, .init = setup, .fini = teardown)
{
  slots_reused(VHD_FORMAT_VHD, "r.vhd");
}

Test(trim, vhdx_slots_reused, .init = setup, .fini = teardown)
{
  slots_reused(VHD_FORMAT_VHDX, "r.vhdx");
}

/* On a host that cannot punch, a freed slot keeps its old bytes: check
 * calls it a leak, and a new block that takes it gets zeros written where
 * it does not write itself, never the old data. */
static void unpunched_slot(enum vhd_format fmt)
{
  struct fake f;
  vhd_image *img = make_fake(&f, fmt, 2 * MiB);
  fill(img, 0, 6 * MiB, 21);
  cr_assert_eq(vhd_discard(img, 2 * MiB, 2 * MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);
  size_t size = f.size;

  struct vhd_check_result res;
  vhd_io *ro = fake_io(&f, "fake", VHD_IO_RDONLY);
  cr_assert_eq(vhd_check_io(ro, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  vhd_io_close(ro);
  cr_expect_eq(res.corruptions, 0u);
  cr_expect_eq(res.leaks, 1u, "a freed slot holding old data is not a leak");

  cr_assert_eq(vhd_open_io(fake_io(&f, "fake", VHD_IO_RDWR), fmt, VHD_OPEN_RDWR, &img), 0, "%s",
               vhd_last_error());
  uint8_t small[4096];
  memset(small, 0x77, sizeof small);
  cr_assert_eq(vhd_pwrite(img, small, sizeof small, 40 * MiB), 0, "%s", vhd_last_error());
  uint8_t *back = malloc(2 * MiB);
  cr_assert_not_null(back);
  cr_assert_eq(vhd_pread(img, back, 2 * MiB, 40 * MiB), 0);
  for (size_t i = sizeof small; i < 2 * MiB; i++)
    cr_assert_eq(back[i], 0, "byte %zu of the new block shows old data 0x%02x", i, back[i]);
  free(back);
  cr_assert_eq(vhd_close(img), 0);
  cr_expect_eq(f.size, size, "the file grew instead of reusing the slot");
  ro = fake_io(&f, "fake", VHD_IO_RDONLY);
  cr_assert_eq(vhd_check_io(ro, 0, NULL, NULL, &res), 0);
  vhd_io_close(ro);
  cr_expect_eq(res.corruptions + res.leaks, 0u);
  fake_destroy(&f);
}

Test(trim, vhd_unpunched_slot, .init = setup, .fini = teardown)
{
  unpunched_slot(VHD_FORMAT_VHD);
}

Test(trim, vhdx_unpunched_slot, .init = setup, .fini = teardown)
{
  unpunched_slot(VHD_FORMAT_VHDX);
}
