/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_merge (lib/ops/merge.c) on real files: chains of two and three
 * images, VHD, VHDX and mixed, written at random with data, zeros and
 * trims while an in-memory model keeps what the top image reads. After a
 * merge the ancestor must read exactly as the model, check clean, and the
 * merged images must be gone. A merge cancelled half-way (through the
 * progress callback, which also reopens the child in the middle of the
 * copy) must leave the child reading as before and every image clean, and
 * a rerun must finish. A VHDX ancestor's other children must be refused
 * once the merge has changed it. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd.h"
#include "scratch.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define DISK (8 * MiB)

static uint64_t rng_state;
static uint64_t rnd(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* --- Scratch directory ------------------------------------------------- */

static void setup(void)
{
  scratch_make("vhdmerge");
  rng_state = 0x9E3779B97F4A7C15ull;
}
static void teardown(void) { scratch_remove(); }
static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* --- Building chains with a model --------------------------------------- */

static uint8_t *model;   /* what the newest image reads */

/* Create name (format from fmt) over parent (NULL: a base of DISK bytes). */
static vhd_image *make(const char *name, enum vhd_format fmt, const char *parent, uint32_t bs)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.block_size = bs;
  if (parent) {
    p.type = VHD_TYPE_DIFFERENCING;
    p.parent = spath(parent);
  } else {
    p.size = DISK;
  }
  vhd_image *img;
  cr_assert_eq(vhd_create(spath(name), &p, &img), 0, "create %s: %s", name, vhd_last_error());
  return img;
}

/* Random writes of data, zeros and trims, mirrored in the model. Sizes
 * and offsets are sector multiples and often cross block boundaries. */
static void scribble(vhd_image *img, unsigned ops)
{
  uint8_t *buf = malloc(512 * KiB);
  cr_assert_not_null(buf);
  for (unsigned i = 0; i < ops; i++) {
    uint64_t len = (1 + rnd_below(512)) * 512;
    uint64_t off = rnd_below((DISK - len) / 512) * 512;
    unsigned kind = (unsigned)rnd_below(6);
    if (kind < 4) {
      for (uint64_t j = 0; j < len; j++)
        buf[j] = (uint8_t)rnd();
      cr_assert_eq(vhd_pwrite(img, buf, len, off), 0, "%s", vhd_last_error());
      memcpy(model + off, buf, len);
    } else {
      int r = vhd_zero(img, off, len, kind == 4 ? 0 : VHD_ZERO_MAY_TRIM);
      cr_assert_eq(r, 0, "%s", vhd_last_error());
      memset(model + off, 0, len);
    }
  }
  free(buf);
  /* Whole aligned blocks too: VHDX keeps them as ZERO or UNMAPPED
   * states (which hide the parent) instead of data. */
  uint64_t off = rnd_below(DISK / MiB - 1) * MiB;
  cr_assert_eq(vhd_zero(img, off, 2 * MiB, VHD_ZERO_MAY_TRIM), 0, "%s", vhd_last_error());
  memset(model + off, 0, 2 * MiB);
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
}

/* A chain base <- mid <- ... <- names[n-1], each written at random. */
static void chain(unsigned n, const char *const *names, const enum vhd_format *fmts,
                  const uint32_t *bs)
{
  free(model);
  model = calloc(1, DISK);
  cr_assert_not_null(model);
  for (unsigned i = 0; i < n; i++) {
    vhd_image *img = make(names[i], fmts[i], i ? names[i - 1] : NULL, bs[i]);
    scribble(img, i == 0 ? 60 : 25);
    cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  }
}

static void expect_reads_model_with(const char *name, unsigned open_flags)
{
  vhd_image *img;
  cr_assert_eq(vhd_open(spath(name), VHD_OPEN_RDONLY | open_flags, &img), 0, "open %s: %s",
               name, vhd_last_error());
  uint8_t *buf = malloc(DISK);
  cr_assert_not_null(buf);
  cr_assert_eq(vhd_pread(img, buf, DISK, 0), 0, "%s", vhd_last_error());
  for (uint64_t off = 0; off < DISK; off += 512)
    if (memcmp(buf + off, model + off, 512) != 0)
      cr_assert_fail("%s differs from the model in the sector at %llu", name,
                     (unsigned long long)off);
  free(buf);
  vhd_close(img);
}

static void expect_reads_model(const char *name) { expect_reads_model_with(name, 0); }

static void expect_clean(const char *name)
{
  struct vhd_check_result res;
  cr_assert_eq(vhd_check(spath(name), 0, NULL, NULL, &res), 0, "check %s: %s", name,
               vhd_last_error());
  cr_expect_eq(res.corruptions, 0, "%s: %u corruptions", name, res.corruptions);
  cr_expect_eq(res.leaks, 0, "%s: %u leaks", name, res.leaks);
}

static void merge_ok(const char *child, const char *into)
{
  int r = vhd_merge(spath(child), into ? spath(into) : NULL, 0, NULL, NULL);
  cr_assert_eq(r, 0, "merge %s: %s", child, vhd_last_error());
}

#define VHD VHD_FORMAT_VHD
#define VHDX VHD_FORMAT_VHDX

TestSuite(merge, .init = setup, .fini = teardown);

/* --- Two levels ------------------------------------------------------------ */

static void two_levels(enum vhd_format base_fmt, enum vhd_format child_fmt, uint32_t bs)
{
  const char *names[] = { "base", "child" };
  enum vhd_format fmts[] = { base_fmt, child_fmt };
  uint32_t sizes[] = { bs, bs };
  chain(2, names, fmts, sizes);
  expect_reads_model("child");
  merge_ok("child", NULL);
  cr_expect(!exists(spath("child")), "the merged child is still there");
  expect_reads_model("base");
  expect_clean("base");
}

Test(merge, vhd_into_parent) { two_levels(VHD, VHD, 64 * KiB); }
Test(merge, vhdx_into_parent) { two_levels(VHDX, VHDX, MiB); }
Test(merge, vhd_child_into_vhdx_parent) { two_levels(VHDX, VHD, MiB); }

/* --- Three levels ----------------------------------------------------------- */

static void three_levels(const enum vhd_format *fmts, const uint32_t *bs, bool into_base)
{
  const char *names[] = { "base", "mid", "top" };
  chain(3, names, fmts, bs);
  expect_reads_model("top");
  if (into_base) {
    merge_ok("top", "base");
    cr_expect(!exists(spath("mid")), "the intermediate image is still there");
    expect_reads_model("base");
    expect_clean("base");
  } else {
    merge_ok("top", NULL);
    cr_expect(exists(spath("base")) && exists(spath("mid")));
    expect_reads_model("mid");
    expect_clean("mid");
    expect_clean("base");
  }
  cr_expect(!exists(spath("top")), "the merged child is still there");
}

Test(merge, vhd_three_into_base)
{
  enum vhd_format f[] = { VHD, VHD, VHD };
  uint32_t bs[] = { 64 * KiB, 32 * KiB, 128 * KiB };
  three_levels(f, bs, true);
}

Test(merge, vhdx_three_into_base)
{
  enum vhd_format f[] = { VHDX, VHDX, VHDX };
  uint32_t bs[] = { MiB, 2 * MiB, MiB };
  three_levels(f, bs, true);
}

Test(merge, vhdx_three_into_middle)
{
  enum vhd_format f[] = { VHDX, VHDX, VHDX };
  uint32_t bs[] = { MiB, MiB, MiB };
  three_levels(f, bs, false);
}

Test(merge, mixed_three_into_base)
{
  enum vhd_format f[] = { VHDX, VHD, VHD };
  uint32_t bs[] = { MiB, 64 * KiB, 512 * KiB };
  three_levels(f, bs, true);
}

Test(merge, mixed_three_into_middle)
{
  enum vhd_format f[] = { VHDX, VHD, VHD };
  uint32_t bs[] = { MiB, 64 * KiB, 512 * KiB };
  three_levels(f, bs, false);
}

/* --- Interrupted merges ------------------------------------------------------ */

struct interrupt {
  const char *child;
  uint64_t stop_at;
  unsigned calls;
};

/* Halfway through the copy, the child must open and read as before; then
 * the merge is cancelled. The ancestor is locked for writing meanwhile, so
 * only a force-share reader may look (as another process would need -U). */
static int interrupt_cb(void *opaque, uint64_t done, uint64_t total)
{
  struct interrupt *in = opaque;
  (void)total;
  in->calls++;
  if (done < in->stop_at)
    return 0;
  vhd_image *img;
  int r = vhd_open(spath(in->child), VHD_OPEN_RDONLY, &img);
  cr_expect_eq(r, -EBUSY, "a reader opened the chain while merge writes its ancestor "
               "(%d: %s)", r, vhd_last_error());
  if (r == 0)
    vhd_close(img);
  expect_reads_model_with(in->child, VHD_OPEN_FORCE_SHARE);
  return 1;
}

static void interrupted(enum vhd_format fmt, uint32_t bs)
{
  const char *names[] = { "base", "mid", "top" };
  enum vhd_format f[] = { fmt, fmt, fmt };
  uint32_t sizes[] = { bs, bs, bs };
  chain(3, names, f, sizes);
  struct interrupt in = { "top", DISK / 2, 0 };
  int r = vhd_merge(spath("top"), spath("base"), 0, interrupt_cb, &in);
  cr_assert_eq(r, -ECANCELED, "merge returned %d: %s", r, vhd_last_error());
  cr_assert(in.calls > 1);
  cr_assert(exists(spath("top")) && exists(spath("mid")));
  expect_reads_model("top");
  expect_clean("top");
  expect_clean("mid");
  expect_clean("base");
  merge_ok("top", "base");
  expect_reads_model("base");
  expect_clean("base");
}

Test(merge, vhd_interrupted_then_rerun) { interrupted(VHD, 64 * KiB); }
Test(merge, vhdx_interrupted_then_rerun) { interrupted(VHDX, MiB); }

/* --- Identity of a VHDX ancestor ---------------------------------------------- */

Test(merge, vhdx_sibling_refused_after_merge)
{
  const char *names[] = { "base", "child" };
  enum vhd_format f[] = { VHDX, VHDX };
  uint32_t bs[] = { MiB, MiB };
  chain(2, names, f, bs);
  vhd_image *sib = make("sibling", VHDX, "base", MiB);
  cr_assert_eq(vhd_close(sib), 0);
  struct vhd_info before, after;
  vhd_image *img;
  cr_assert_eq(vhd_open(spath("base"), VHD_OPEN_RDONLY, &img), 0);
  cr_assert_eq(vhd_get_info(img, &before), 0);
  vhd_close(img);
  merge_ok("child", NULL);
  cr_assert_eq(vhd_open(spath("base"), VHD_OPEN_RDONLY, &img), 0);
  cr_assert_eq(vhd_get_info(img, &after), 0);
  vhd_close(img);
  cr_expect(memcmp(before.data_write_id, after.data_write_id, 16) != 0,
            "the merged ancestor kept its data write GUID");
  int r = vhd_open(spath("sibling"), VHD_OPEN_RDONLY, &img);
  cr_expect_eq(r, -EINVAL, "a stale sibling opened (%d)", r);
  if (r == 0)
    vhd_close(img);
}

/* --- Refusals ------------------------------------------------------------------- */

Test(merge, refuses_what_it_cannot_do)
{
  const char *names[] = { "base", "child" };
  enum vhd_format f[] = { VHD, VHD };
  uint32_t bs[] = { 64 * KiB, 64 * KiB };
  chain(2, names, f, bs);
  vhd_image *other = make("other", VHD, NULL, 64 * KiB);
  cr_assert_eq(vhd_close(other), 0);

  cr_expect_eq(vhd_merge(spath("base"), NULL, 0, NULL, NULL), -EINVAL);
  cr_expect(strstr(vhd_last_error(), "not a differencing image") != NULL, "%s",
            vhd_last_error());
  cr_expect_eq(vhd_merge(spath("child"), spath("other"), 0, NULL, NULL), -EINVAL);
  cr_expect(strstr(vhd_last_error(), "not in this image's chain") != NULL, "%s",
            vhd_last_error());
  cr_expect_eq(vhd_merge(spath("child"), spath("child"), 0, NULL, NULL), -EINVAL);
  cr_expect_eq(vhd_merge(spath("child"), NULL, 0x80, NULL, NULL), -EINVAL);
  cr_expect_eq(vhd_merge(spath("missing"), NULL, 0, NULL, NULL), -ENOENT);
  /* Nothing changed. */
  cr_expect(exists(spath("child")));
  expect_reads_model("child");
}

/* --- The plan and the link-id open flags ------------------------------------- */

static bool same_path(const char *a, const char *b)
{
  char *ra = a ? realpath(a, NULL) : NULL, *rb = b ? realpath(b, NULL) : NULL;
  bool same = ra && rb && strcmp(ra, rb) == 0;
  free(ra);
  free(rb);
  return same;
}

/* What vhd_merge_plan_get says is what vhd_merge then does. */
Test(merge, plan_is_what_merge_does)
{
  const char *names[] = { "base", "mid", "top" };
  enum vhd_format f[] = { VHDX, VHD, VHD };
  uint32_t bs[] = { MiB, 64 * KiB, 64 * KiB };
  chain(3, names, f, bs);
  vhd_merge_plan *plan;
  cr_assert_eq(vhd_merge_plan_get(spath("top"), NULL, &plan), 0, "%s", vhd_last_error());
  cr_expect(same_path(vhd_merge_plan_ancestor(plan), spath("mid")));
  cr_expect(same_path(vhd_merge_plan_removed(plan, 0), spath("top")));
  cr_expect_null(vhd_merge_plan_removed(plan, 1));
  vhd_merge_plan_free(plan);
  cr_assert_eq(vhd_merge_plan_get(spath("top"), spath("base"), &plan), 0, "%s",
               vhd_last_error());
  cr_expect(same_path(vhd_merge_plan_ancestor(plan), spath("base")));
  cr_expect(same_path(vhd_merge_plan_removed(plan, 0), spath("top")));
  cr_expect(same_path(vhd_merge_plan_removed(plan, 1), spath("mid")));
  cr_expect_null(vhd_merge_plan_removed(plan, 2));
  vhd_merge_plan_free(plan);
  cr_expect_eq(vhd_merge_plan_get(spath("top"), spath("top"), &plan), -EINVAL);
  cr_expect_null(plan);
  merge_ok("top", "base");
  cr_expect(!exists(spath("top")) && !exists(spath("mid")) && exists(spath("base")));
  expect_reads_model("base");
}

/* VHD_OPEN_KEEP_LINK_ID: writing a VHDX parent keeps its child linked;
 * VHD_OPEN_RENEW_LINK_ID: the open alone unlinks every child. */
Test(merge, link_id_open_flags)
{
  const char *names[] = { "base", "child" };
  enum vhd_format f[] = { VHDX, VHDX };
  uint32_t bs[] = { MiB, MiB };
  chain(2, names, f, bs);
  vhd_image *img;
  uint8_t sector[512] = { 1 };
  cr_assert_eq(vhd_open(spath("base"), VHD_OPEN_RDWR | VHD_OPEN_KEEP_LINK_ID, &img), 0, "%s",
               vhd_last_error());
  cr_assert_eq(vhd_pwrite(img, sector, sizeof sector, 0), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_open(spath("child"), VHD_OPEN_RDONLY, &img), 0,
               "the child of a parent written with KEEP_LINK_ID: %s", vhd_last_error());
  vhd_close(img);
  cr_assert_eq(vhd_open(spath("base"), VHD_OPEN_RDWR | VHD_OPEN_RENEW_LINK_ID, &img), 0, "%s",
               vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_expect_eq(vhd_open(spath("child"), VHD_OPEN_RDONLY, &img), -EINVAL,
               "the child of a parent opened with RENEW_LINK_ID still opens");
}
