/* SPDX-License-Identifier: BSD-3-Clause */
/* Zeroing is one policy in the image layer (issue 14): a fast zero that
 * cannot be done cheaply over its whole range fails before any byte of the
 * file changes (no block freed, no VHDX data write GUID renewed), on every
 * format; a plain zero of the same range succeeds, frees the whole blocks
 * it may trim and reads as zeros, and a differencing layer keeps hiding its
 * parent. Files are compared byte for byte before and after. */
#include "scratch.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "vhd.h"

#define MiB (1024ull * 1024)
#define BS MiB
#define SIZE (8 * MiB)

static void setup(void) { scratch_make("zeropolicy"); }
static void teardown(void) { scratch_remove(); }

static vhd_image *make(const char *name, enum vhd_format fmt, enum vhd_disk_type type,
                       const char *parent)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = type;
  p.size = parent ? 0 : SIZE;
  p.block_size = type == VHD_TYPE_FIXED ? 0 : BS;
  p.parent = parent ? spath(parent) : NULL;
  p.flags = VHD_CREATE_OVERWRITE;
  vhd_image *img;
  cr_assert_eq(vhd_create(spath(name), &p, &img), 0, "create %s: %s", name, vhd_last_error());
  return img;
}

static void fill(vhd_image *img, uint64_t off, uint64_t len, uint8_t seed)
{
  uint8_t *buf = malloc(len);
  cr_assert_not_null(buf);
  for (uint64_t i = 0; i < len; i++)
    buf[i] = (uint8_t)(seed + i * 13 + i / 512);
  cr_assert_eq(vhd_pwrite(img, buf, len, off), 0, "%s", vhd_last_error());
  free(buf);
}

/* The whole file, for a byte-for-byte comparison. */
static uint64_t allocated(vhd_image *img)
{
  struct vhd_info in;
  cr_assert_eq(vhd_get_info(img, &in), 0);
  return in.allocated_blocks;
}

static void expect_zeros(vhd_image *img, uint64_t off, uint64_t len, const char *what)
{
  uint8_t *b = malloc(len);
  cr_assert_not_null(b);
  cr_assert_eq(vhd_pread(img, b, len, off), 0, "%s", vhd_last_error());
  for (uint64_t i = 0; i < len; i++)
    cr_assert_eq(b[i], 0, "%s: byte %llu reads %#x, not zero", what,
                 (unsigned long long)(off + i), b[i]);
  free(b);
}

/* Blocks 0-3 full of data, flushed and closed; reopened read-write. */
static vhd_image *filled(const char *name, enum vhd_format fmt, enum vhd_disk_type type)
{
  vhd_image *img = make(name, fmt, type, NULL);
  fill(img, 0, 4 * BS, 3);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_open(spath(name), VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  return img;
}

/* 2.5 blocks from block 0: two whole blocks that could be freed, then half
 * of an allocated one that only writes can zero. */
static void fast_zero_changes_nothing(enum vhd_format fmt, enum vhd_disk_type type,
                                      unsigned flags)
{
  vhd_image *img = filled("a", fmt, type);
  size_t n0, n1;
  uint8_t *before = read_whole_file(spath("a"), &n0);
  struct vhd_info in0, in1;
  cr_assert_eq(vhd_get_info(img, &in0), 0);
  int r = vhd_zero(img, 0, 2 * BS + BS / 2, VHD_ZERO_FAST | flags);
  cr_assert_eq(r, -ENOTSUP, "fast zero over 2.5 blocks returned %d (%s)", r, vhd_last_error());
  cr_assert_eq(vhd_get_info(img, &in1), 0);
  cr_assert_eq(in1.allocated_blocks, in0.allocated_blocks, "a refused fast zero freed blocks");
  cr_assert_eq(memcmp(in0.data_write_id, in1.data_write_id, 16), 0,
               "a refused fast zero renewed the data write GUID");
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  uint8_t *after = read_whole_file(spath("a"), &n1);
  cr_assert_eq(n1, n0, "a refused fast zero changed the file size");
  cr_assert_eq(memcmp(before, after, n0), 0, "a refused fast zero changed the file");
  free(before);
  free(after);
}

Test(zero_policy, vhdx_dynamic_fast_multi_block, .init = setup, .fini = teardown)
{
  fast_zero_changes_nothing(VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, VHD_ZERO_MAY_TRIM);
  fast_zero_changes_nothing(VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, 0);
}

Test(zero_policy, vhdx_fixed_fast_multi_block, .init = setup, .fini = teardown)
{
  fast_zero_changes_nothing(VHD_FORMAT_VHDX, VHD_TYPE_FIXED, 0);
}

Test(zero_policy, vhd_dynamic_fast_multi_block, .init = setup, .fini = teardown)
{
  fast_zero_changes_nothing(VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, VHD_ZERO_MAY_TRIM);
  fast_zero_changes_nothing(VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 0);
}

/* A plain zero of the same range succeeds: the two whole blocks go (with
 * may-trim), the half block is written, everything reads as zeros and the
 * rest is unchanged. */
static void plain_zero_frees(enum vhd_format fmt)
{
  vhd_image *img = filled("a", fmt, VHD_TYPE_DYNAMIC);
  uint64_t blocks = allocated(img);
  uint8_t *keep = malloc(BS);
  cr_assert_not_null(keep);
  cr_assert_eq(vhd_pread(img, keep, BS, 3 * BS), 0);
  cr_assert_eq(vhd_zero(img, 0, 2 * BS + BS / 2, VHD_ZERO_MAY_TRIM), 0, "%s", vhd_last_error());
  cr_assert_eq(allocated(img), blocks - 2, "blocks %llu -> %llu: the whole blocks stayed",
               (unsigned long long)blocks, (unsigned long long)allocated(img));
  expect_zeros(img, 0, 2 * BS + BS / 2, "zeroed range");
  uint8_t *now = malloc(BS);
  cr_assert_not_null(now);
  cr_assert_eq(vhd_pread(img, now, BS, 3 * BS), 0);
  cr_assert_eq(memcmp(keep, now, BS), 0, "block 3 changed");
  /* Without may-trim the blocks stay allocated. */
  cr_assert_eq(vhd_zero(img, 3 * BS, BS, 0), 0, "%s", vhd_last_error());
  expect_zeros(img, 3 * BS, BS, "zeroed block 3");
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  struct vhd_check_result res;
  cr_assert_eq(vhd_check(spath("a"), 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_assert_eq(res.corruptions + res.leaks, 0, "the image does not check clean");
  free(keep);
  free(now);
}

Test(zero_policy, vhdx_plain_multi_block, .init = setup, .fini = teardown)
{
  plain_zero_frees(VHD_FORMAT_VHDX);
}

Test(zero_policy, vhd_plain_multi_block, .init = setup, .fini = teardown)
{
  plain_zero_frees(VHD_FORMAT_VHD);
}

/* A differencing layer stores its zeros: the parent's data stays hidden,
 * with or without may-trim, and a fast zero is refused untouched. */
static void child_hides_parent(enum vhd_format fmt)
{
  vhd_image *base = make("base", fmt, VHD_TYPE_DYNAMIC, NULL);
  fill(base, 0, 4 * BS, 9);
  cr_assert_eq(vhd_close(base), 0);
  vhd_image *child = make("child", fmt, VHD_TYPE_DIFFERENCING, "base");
  fill(child, BS, BS, 5);
  cr_assert_eq(vhd_close(child), 0);
  cr_assert_eq(vhd_open(spath("child"), VHD_OPEN_RDWR, &child), 0, "%s", vhd_last_error());
  size_t n0, n1;
  uint8_t *before = read_whole_file(spath("child"), &n0);
  int r = vhd_zero(child, BS / 2, 2 * BS, VHD_ZERO_FAST | VHD_ZERO_MAY_TRIM);
  if (fmt == VHD_FORMAT_VHD)
    cr_assert_eq(r, -ENOTSUP, "a VHD child's fast zero returned %d", r);
  else
    cr_assert(r == 0 || r == -ENOTSUP, "%d", r);
  if (r == -ENOTSUP) {
    uint8_t *after = read_whole_file(spath("child"), &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "a refused fast zero changed the child");
    free(after);
  }
  free(before);
  cr_assert_eq(vhd_zero(child, BS / 2, 2 * BS, VHD_ZERO_MAY_TRIM), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_zero(child, 3 * BS, BS, 0), 0, "%s", vhd_last_error());
  expect_zeros(child, BS / 2, 2 * BS, "child's zeroed range");
  expect_zeros(child, 3 * BS, BS, "child's zeroed block 3");
  cr_assert_eq(vhd_close(child), 0);
  cr_assert_eq(vhd_open(spath("child"), VHD_OPEN_RDONLY, &child), 0, "%s", vhd_last_error());
  expect_zeros(child, BS / 2, 2 * BS, "child's zeroed range after reopen");
  expect_zeros(child, 3 * BS, BS, "child's zeroed block 3 after reopen");
  cr_assert_eq(vhd_close(child), 0);
}

Test(zero_policy, vhd_child_hides_parent, .init = setup, .fini = teardown)
{
  child_hides_parent(VHD_FORMAT_VHD);
}

Test(zero_policy, vhdx_child_hides_parent, .init = setup, .fini = teardown)
{
  child_hides_parent(VHD_FORMAT_VHDX);
}
