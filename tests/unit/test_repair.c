/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_check with VHD_CHECK_REPAIR, in memory: what is broken is fixed and
 * counted, the result describes the repaired image, the content read back
 * is the content written (the model), and what cannot be fixed safely is
 * left alone. A VHDX crash image with a pending log is made by replaying a
 * prefix of the writes a real flush did (fakeio.h). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakeio.h"
#include "vhd.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define DISK (4 * MiB)

struct findings {
  unsigned repaired, not_repaired;
  char text[4096];
};

static void collect(void *opaque, enum vhd_check_severity sev, const char *msg)
{
  struct findings *f = opaque;
  if (sev == VHD_CHECK_INFO && strstr(msg, "repaired: ") == msg)
    f->repaired++;
  if (sev == VHD_CHECK_INFO && strstr(msg, "not repaired: ") == msg)
    f->not_repaired++;
  size_t n = strlen(f->text);
  snprintf(f->text + n, sizeof f->text - n, "%s\n", msg);
}

struct bytes {
  uint8_t *data;
  size_t len;
};

/* The model: a pattern in the first 1.5 MiB of the disk, zeros after. */
static uint8_t *model(void)
{
  uint8_t *m = calloc(1, DISK);
  for (size_t i = 0; i < 3 * MiB / 2; i++)
    m[i] = (uint8_t)(i * 7 + i / 4096);
  return m;
}

static struct bytes make(enum vhd_format format, uint32_t block_size)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = format;
  p.size = DISK;
  p.block_size = block_size;
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "r.img", VHD_IO_RDWR, &io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  uint8_t *m = model();
  cr_assert_eq(vhd_pwrite(img, m, DISK, 0), 0, "%s", vhd_last_error());
  free(m);
  cr_assert_eq(vhd_flush(img), 0);
  struct bytes b;
  void *data;
  cr_assert_eq(vhd_io_memory_contents(io, &data, &b.len), 0);
  b.data = data;
  vhd_close(img);
  return b;
}

/* Run the check (repairing when asked) over a copy; *b becomes the file
 * as the check left it. */
static struct vhd_check_result run(struct bytes *b, unsigned flags, struct findings *f)
{
  memset(f, 0, sizeof *f);
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(b->data, b->len, "r.img",
                                 flags ? VHD_IO_RDWR : VHD_IO_RDONLY, &io), 0);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, flags, collect, f, &res), 0, "%s", vhd_last_error());
  void *data;
  free(b->data);
  cr_assert_eq(vhd_io_memory_contents(io, &data, &b->len), 0);
  b->data = data;
  vhd_io_close(io);
  return res;
}

static void assert_reads_as_model(const struct bytes *b)
{
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(b->data, b->len, "r.img", VHD_IO_RDONLY, &io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, &img), 0, "%s",
               vhd_last_error());
  uint8_t *got = malloc(DISK), *m = model();
  cr_assert_eq(vhd_pread(img, got, DISK, 0), 0);
  cr_assert(memcmp(got, m, DISK) == 0, "content differs from the model");
  free(got);
  free(m);
  vhd_close(img);
}

/* Repair, then the result must say clean with `repairs` changes, a plain
 * check must agree, and the content must be the model. */
static void repair_to_clean(struct bytes *b, unsigned min_repairs)
{
  struct findings f;
  struct vhd_check_result res = run(b, VHD_CHECK_REPAIR, &f);
  cr_assert_eq(res.corruptions, 0u, "%s", f.text);
  cr_assert_eq(res.leaks, 0u, "%s", f.text);
  cr_assert_geq(res.repairs, min_repairs, "%s", f.text);
  cr_assert_eq(f.repaired, res.repairs, "every repair is reported: %s", f.text);
  res = run(b, 0, &f);
  cr_assert_eq(res.corruptions + res.leaks + res.warnings, 0u, "%s", f.text);
  assert_reads_as_model(b);
}

static void be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

Test(repair, vhd_footer_rewritten_from_its_copy)
{
  struct bytes b = make(VHD_FORMAT_VHD, 512 * KiB);
  uint8_t *orig = malloc(b.len);
  size_t len = b.len;
  memcpy(orig, b.data, b.len);
  memset(b.data + b.len - 512, 0, 512);
  repair_to_clean(&b, 1);
  cr_assert(b.len == len && memcmp(b.data, orig, len) == 0, "not the undamaged file");
  free(orig);
  free(b.data);
}

Test(repair, vhd_copy_rewritten_from_the_footer)
{
  struct bytes b = make(VHD_FORMAT_VHD, 512 * KiB);
  b.data[70] ^= 0xff;   /* inside unique_id: bad checksum */
  repair_to_clean(&b, 1);
  cr_assert(memcmp(b.data, b.data + b.len - 512, 512) == 0, "copy differs from the footer");
  free(b.data);
}

Test(repair, vhd_bat_entries_past_the_end_are_cleared)
{
  struct bytes b = make(VHD_FORMAT_VHD, 512 * KiB);
  /* Blocks 4..7 of the 8 are unallocated in the model. */
  be32(b.data + 1536 + 4 * 5, 0x00800000);
  be32(b.data + 1536 + 4 * 7, 0x7fffffff);
  struct findings f;
  struct bytes probe = { memcpy(malloc(b.len), b.data, b.len), b.len };
  struct vhd_check_result res = run(&probe, 0, &f);
  free(probe.data);
  cr_assert_eq(res.corruptions, 2u, "%s", f.text);
  repair_to_clean(&b, 2);
  free(b.data);
}

Test(repair, vhd_header_checksum)
{
  struct bytes b = make(VHD_FORMAT_VHD, 512 * KiB);
  b.data[512 + 1000] ^= 1;   /* a reserved byte of the dynamic header */
  repair_to_clean(&b, 1);
  free(b.data);
}

Test(repair, vhd_overlapping_blocks_are_left_alone)
{
  struct bytes b = make(VHD_FORMAT_VHD, 512 * KiB);
  /* Entry 1 made to point at block 0's place: two claimants. */
  memcpy(b.data + 1536 + 4, b.data + 1536, 4);
  uint8_t *before = malloc(b.len);
  size_t before_len = b.len;
  memcpy(before, b.data, b.len);
  struct findings f;
  struct vhd_check_result res = run(&b, VHD_CHECK_REPAIR, &f);
  cr_assert_geq(res.corruptions, 1u, "%s", f.text);
  cr_assert_geq(f.not_repaired, 1u, "%s", f.text);
  /* Block 1's old place is unreferenced now: the tail must not be cut
   * under it, nor the entry cleared. */
  cr_assert(b.len == before_len && memcmp(b.data, before, b.len) == 0,
            "a repair that could lose data was made: %s", f.text);
  free(before);
  free(b.data);
}

Test(repair, clean_images_are_not_touched)
{
  enum vhd_format fmts[] = { VHD_FORMAT_VHD, VHD_FORMAT_VHDX };
  for (int i = 0; i < 2; i++) {
    struct bytes b = make(fmts[i], fmts[i] == VHD_FORMAT_VHD ? 512 * KiB : MiB);
    uint8_t *orig = malloc(b.len);
    size_t len = b.len;
    memcpy(orig, b.data, b.len);
    struct findings f;
    struct vhd_check_result res = run(&b, VHD_CHECK_REPAIR, &f);
    cr_assert_eq(res.repairs, 0u, "%s", f.text);
    cr_assert(b.len == len && memcmp(b.data, orig, len) == 0, "a clean image was changed");
    free(orig);
    free(b.data);
  }
}

Test(repair, refused_without_write_access_and_for_unknown_flags)
{
  struct bytes b = make(VHD_FORMAT_VHD, 512 * KiB);
  vhd_io *io;
  struct vhd_check_result res;
  cr_assert_eq(vhd_io_new_memory(b.data, b.len, "ro.vhd", VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_check_io(io, VHD_CHECK_REPAIR, NULL, NULL, &res), -EROFS);
  cr_assert_not_null(strstr(vhd_last_error(), "ro.vhd"));
  cr_assert_eq(vhd_check_io(io, 0x80, NULL, NULL, &res), -EINVAL);
  vhd_io_close(io);
  free(b.data);
}

Test(repair, vhdx_header_and_region_copies)
{
  struct bytes b = make(VHD_FORMAT_VHDX, MiB);
  memset(b.data + 128 * KiB, 0, 4);            /* header 2's signature */
  b.data[192 * KiB + 200] ^= 0x10;             /* region table 1 */
  repair_to_clean(&b, 2);
  free(b.data);
}

Test(repair, vhdx_tail_leak_given_back)
{
  struct bytes b = make(VHD_FORMAT_VHDX, MiB);
  size_t len = b.len;
  b.data = realloc(b.data, len + 3 * MiB);
  memset(b.data + len, 0, 3 * MiB);
  b.len = len + 3 * MiB;
  repair_to_clean(&b, 1);
  cr_assert_eq(b.len, len);
  free(b.data);
}

/* The file as it stood after the first `n` changes of the log. */
static struct bytes replay_prefix(const uint8_t *base, size_t base_len, const struct fake *f,
                                  size_t n)
{
  struct bytes b = { malloc(base_len), base_len };
  memcpy(b.data, base, base_len);
  for (size_t i = 0; i < n; i++) {
    const struct fake_change *c = &f->changelog[i];
    size_t end = c->op == FAKE_SET_SIZE ? (size_t)c->offset : (size_t)c->offset + c->len;
    if (c->op == FAKE_FLUSH || (c->op == FAKE_WRITE && end <= b.len)) {
      /* no change of length */
    } else {
      b.data = realloc(b.data, end ? end : 1);
      if (end > b.len)
        memset(b.data + b.len, 0, end - b.len);
      b.len = end;
    }
    if (c->op == FAKE_WRITE)
      memcpy(b.data + c->offset, c->data, c->len);
  }
  return b;
}

Test(repair, vhdx_crash_with_a_pending_log_is_replayed)
{
  /* An image holding the model's first MiB; then the rest is written and
   * flushed through the log, every change recorded. */
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = DISK;
  p.block_size = MiB;
  struct fake fk;
  memset(&fk, 0, sizeof fk);
  vhd_io *io = fake_io(&fk, "crash.vhdx", VHD_IO_RDWR);
  vhd_image *img;
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  uint8_t *m = model();
  cr_assert_eq(vhd_pwrite(img, m, MiB, 0), 0);
  cr_assert_eq(vhd_flush(img), 0);
  uint8_t *base = malloc(fk.size);
  size_t base_len = fk.size;
  memcpy(base, fk.data, fk.size);
  fk.log = 1;
  cr_assert_eq(vhd_pwrite(img, m + MiB, DISK - MiB, MiB), 0);
  cr_assert_eq(vhd_flush(img), 0);
  vhd_close(img);
  free(m);

  /* The first crash point where the header names a log to replay. */
  bool found = false;
  for (size_t n = 1; n <= fk.nlog && !found; n++) {
    struct bytes b = replay_prefix(base, base_len, &fk, n);
    struct findings f;
    struct bytes probe = { memcpy(malloc(b.len), b.data, b.len), b.len };
    struct vhd_check_result res = run(&probe, 0, &f);
    free(probe.data);
    if (res.log_needs_replay) {
      found = true;
      assert_reads_as_model(&b);   /* read-only: replayed in memory */
      repair_to_clean(&b, 1);
      struct vhd_check_result after = run(&b, 0, &f);
      cr_assert_eq(after.log_needs_replay, 0, "the log is still pending: %s", f.text);
    }
    free(b.data);
  }
  cr_assert(found, "no crash point left a pending log (%zu changes)", fk.nlog);
  free(base);
  fake_destroy(&fk);
  fake_free_all();
}

/* A crash at any point of a repair leaves a file that opens and reads as
 * the model, as the damaged one did: the repair runs on a recording
 * backend and every prefix of its writes is opened. */
static void repair_crash_points(struct bytes *damaged)
{
  struct fake fk;
  memset(&fk, 0, sizeof fk);
  cr_assert_eq(fake_resize(&fk, damaged->len), 0);
  memcpy(fk.data, damaged->data, damaged->len);
  fk.log = 1;
  vhd_io *io = fake_io(&fk, "r.img", VHD_IO_RDWR);
  struct vhd_check_result res;
  struct findings f;
  memset(&f, 0, sizeof f);
  cr_assert_eq(vhd_check_io(io, VHD_CHECK_REPAIR, collect, &f, &res), 0, "%s",
               vhd_last_error());
  vhd_io_close(io);
  cr_assert_geq(res.repairs, 1u, "%s", f.text);
  cr_assert_eq(res.corruptions + res.leaks, 0u, "%s", f.text);
  for (size_t n = 0; n <= fk.nlog; n++) {
    struct bytes b = replay_prefix(damaged->data, damaged->len, &fk, n);
    assert_reads_as_model(&b);
    free(b.data);
  }
  fake_destroy(&fk);
  fake_free_all();
}

Test(repair, vhd_every_crash_point_reads_as_before)
{
  struct bytes b = make(VHD_FORMAT_VHD, 512 * KiB);
  /* Footer gone under 2 MiB of junk after the last block: the footer is
   * written at its place again, then the file is cut. */
  size_t len = b.len;
  b.data = realloc(b.data, len + 2 * MiB);
  memset(b.data + len - 512, 0x5a, 2 * MiB + 512);
  b.len = len + 2 * MiB;
  repair_crash_points(&b);
  free(b.data);
}

Test(repair, vhdx_every_crash_point_reads_as_before)
{
  struct bytes b = make(VHD_FORMAT_VHDX, MiB);
  memset(b.data + 64 * KiB, 0, 4);          /* header 1 */
  b.data[256 * KiB + 300] ^= 0x01;          /* region table 2 */
  size_t len = b.len;
  b.data = realloc(b.data, len + 2 * MiB);
  memset(b.data + len, 0, 2 * MiB);
  b.len = len + 2 * MiB;
  repair_crash_points(&b);
  free(b.data);
}
