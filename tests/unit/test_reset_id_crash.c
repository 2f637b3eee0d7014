/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_reset_id's format part stopped by a crash after any prefix of its
 * changes (fakeio.h's log, replayed): every such file opens read-only,
 * checks without corruption, reads the content it had, and carries either
 * the old identity or the new one, never a mix (VHDX: the Virtual Disk ID
 * and the data_write_guid change together or not at all as far as
 * children see: the data_write_guid is what they link to). Once the
 * driver call returned, the new id is there. VHD dynamic (two footers),
 * VHD fixed (one) and VHDX (metadata log and two headers). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"
#include "fakeio.h"
#include "image.h"
#include "vhd.h"

#define MiB (1024u * 1024u)
#define DISK (4 * MiB)

static void teardown(void) { fake_free_all(); }

struct identity {
  uint8_t id[16], link[16];   /* link: what a child names (VHDX data_write_id) */
};

static void identity_of(vhd_image *img, struct identity *out)
{
  struct vhd_info in;
  cr_assert_eq(vhd_get_info(img, &in), 0, "%s", vhd_last_error());
  memcpy(out->id, in.id, 16);
  memcpy(out->link, in.format == VHD_FORMAT_VHDX ? in.data_write_id : in.id, 16);
}

static void run_case(enum vhd_format fmt, enum vhd_disk_type type)
{
  /* An image holding data, made without a log. */
  struct fake start = { 0 };
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = type;
  p.size = DISK;
  p.block_size = fmt == VHD_FORMAT_VHDX ? MiB : 512 * 1024;
  vhd_image *img = NULL;
  cr_assert_eq(vhd_create_io(fake_io(&start, "start", VHD_IO_RDWR), &p, &img), 0, "%s",
               vhd_last_error());
  uint8_t *content = fake_realloc(NULL, DISK);
  memset(content, 0, DISK);
  for (size_t i = MiB; i < MiB + DISK / 2; i++)
    content[i] = (uint8_t)(i * 7 + i / 4096) | 1;
  cr_assert_eq(vhd_pwrite(img, content + MiB, DISK / 2, MiB), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  /* The session: open read-write, the driver's reset, close. */
  struct fake logf = { .log = 1 };
  cr_assert_eq(fake_resize(&logf, start.size), 0);
  memcpy(logf.data, start.data, start.size);
  struct identity old, new;
  cr_assert_eq(vhd_open_io(fake_io(&logf, "session", VHD_IO_RDWR), VHD_FORMAT_AUTO,
                           VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  identity_of(img, &old);
  cr_assert_eq(image_lock(img, true), 0);
  cr_assert_eq(image_unlock(img, img->drv->reset_id(img)), 0, "%s", vhd_last_error());
  size_t done_at = logf.nlog;
  identity_of(img, &new);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_assert_neq(memcmp(old.id, new.id, 16), 0, "the id did not change");
  cr_assert_neq(memcmp(old.link, new.link, 16), 0, "the id children link to did not change");
  cr_assert_gt(logf.nlog, 0u);

  uint8_t *got = fake_realloc(NULL, DISK);
  for (size_t k = 0; k <= logf.nlog; k++) {
    struct fake f;
    cr_assert_eq(fake_replay(&f, &start, &logf, k), 0);
    char name[64];
    snprintf(name, sizeof name, "crash-after-%zu-of-%zu", k, logf.nlog);
    vhd_io *io = fake_io(&f, name, VHD_IO_RDONLY);
    struct vhd_check_result res;
    cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0, "%s: %s", name, vhd_last_error());
    cr_assert_eq(res.corruptions, 0u, "%s: %u corruptions", name, res.corruptions);
    cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, &img), 0,
                 "%s: does not open: %s", name, vhd_last_error());
    cr_assert_eq(vhd_pread(img, got, DISK, 0), 0, "%s: %s", name, vhd_last_error());
    cr_assert_eq(memcmp(got, content, DISK), 0, "%s: the content changed", name);
    struct identity now;
    identity_of(img, &now);
    bool was = memcmp(now.link, old.link, 16) == 0, is = memcmp(now.link, new.link, 16) == 0;
    cr_assert(was || is, "%s: the id children link to is neither the old nor the new", name);
    if (k >= done_at)
      cr_assert(is && memcmp(now.id, new.id, 16) == 0, "%s: the new id is lost", name);
    vhd_close(img);
    fake_destroy(&f);
  }
  fake_destroy(&logf);
  fake_destroy(&start);
}

Test(reset_id_crash, vhd_dynamic, .fini = teardown) { run_case(VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC); }
Test(reset_id_crash, vhd_fixed, .fini = teardown) { run_case(VHD_FORMAT_VHD, VHD_TYPE_FIXED); }
Test(reset_id_crash, vhdx_dynamic, .fini = teardown) { run_case(VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC); }
