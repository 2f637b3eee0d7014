/* SPDX-License-Identifier: BSD-3-Clause */
/* A callback that calls back into the image it is called for (issue 14 C):
 * a progress callback reading the image being compacted or resized used to
 * make the operation return 0 and then hang vhd_close (the read took the
 * read lock over the operation's write lock, which the host refused
 * unseen, and its unlock released the operation's lock). Now the call from
 * the callback fails with -EDEADLK and a message, the operation goes on,
 * and the image closes. A timeout turns a hang into a failure. */
#include "scratch.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vhd.h"

#define MiB (1024ull * 1024)

static void setup(void) { scratch_make("reentry"); }
static void teardown(void) { scratch_remove(); }

struct probe {
  vhd_image *img;
  unsigned calls;
  int read, write, flush;
  char message[512];
};

static int reenter(void *opaque, uint64_t done, uint64_t total)
{
  (void)done;
  (void)total;
  struct probe *p = opaque;
  uint8_t b[512];
  if (p->calls++ == 0) {
    p->read = vhd_pread(p->img, b, sizeof b, 0);
    strncpy(p->message, vhd_last_error(), sizeof p->message - 1);
    memset(b, 1, sizeof b);
    p->write = vhd_pwrite(p->img, b, sizeof b, 0);
    p->flush = vhd_flush(p->img);
  }
  return 0;
}

static vhd_image *make(enum vhd_format fmt)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.size = 16 * MiB;
  p.block_size = 2 * MiB;
  vhd_image *img;
  cr_assert_eq(vhd_create(spath("a"), &p, &img), 0, "%s", vhd_last_error());
  static uint8_t data[4 * MiB];
  memset(data, 0x5a, sizeof data);
  memset(data + 2 * MiB, 0, 2 * MiB);   /* block 1 allocated but zeros: compact frees it */
  cr_assert_eq(vhd_pwrite(img, data, sizeof data, 0), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_flush(img), 0);
  return img;
}

static void expect_refused(struct probe *p)
{
  cr_assert_gt(p->calls, 0, "the progress callback was never called");
  cr_assert_eq(p->read, -EDEADLK, "a read from the callback returned %d", p->read);
  cr_assert(strstr(p->message, "callback"), "the message does not say why: %s", p->message);
  cr_assert_eq(p->write, -EDEADLK, "a write from the callback returned %d", p->write);
  cr_assert_eq(p->flush, -EDEADLK, "a flush from the callback returned %d", p->flush);
}

static void compact_case(enum vhd_format fmt)
{
  struct probe p = { 0 };
  p.img = make(fmt);
  struct vhd_compact_result res;
  cr_assert_eq(vhd_compact(p.img, 0, reenter, &p, &res), 0, "%s", vhd_last_error());
  expect_refused(&p);
  /* The image is usable and closes (the lock was left as it should be). */
  uint8_t b[512];
  cr_assert_eq(vhd_pread(p.img, b, sizeof b, 0), 0, "%s", vhd_last_error());
  cr_assert_eq(b[0], 0x5a, "the write from the callback went through");
  cr_assert_eq(vhd_close(p.img), 0, "%s", vhd_last_error());
}

Test(reentry, compact_vhd, .init = setup, .fini = teardown, .timeout = 20)
{
  compact_case(VHD_FORMAT_VHD);
}

Test(reentry, compact_vhdx, .init = setup, .fini = teardown, .timeout = 20)
{
  compact_case(VHD_FORMAT_VHDX);
}

Test(reentry, resize_vhd, .init = setup, .fini = teardown, .timeout = 20)
{
  struct probe p = { 0 };
  p.img = make(VHD_FORMAT_VHD);
  int r = vhd_resize(p.img, 64 * MiB, 0, reenter, &p);
  cr_assert_eq(r, 0, "%s", vhd_last_error());
  if (p.calls)
    expect_refused(&p);
  cr_assert_eq(vhd_close(p.img), 0, "%s", vhd_last_error());
}
