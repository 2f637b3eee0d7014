/* SPDX-License-Identifier: BSD-3-Clause */
/* Crash safety of VHD writes (the ordering rules of lib/vhd/vhd_rw.c).
 *
 * A recording backend keeps the bytes that are durable (as of the last
 * flush) and the writes issued since. Whenever the driver flushes, and at
 * the end of each round of writes, crash images are made from the durable
 * bytes plus a random subset of the pending writes (any subset may reach
 * the disk before a crash). Every crash image must open, vhd_check must
 * find no corruption (leaks are allowed), and every sector must read
 * either as it was at the last completed vhd_flush or as it is now.
 * Also: no flush per allocation, and nothing pending after vhd_flush. */
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

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static void setup(void) { scratch_make("vhdcrash"); }
static void teardown(void) { scratch_remove(); }

/* --- The recording backend ---------------------------------------------------- */

enum { W_DATA, W_ZERO, W_SIZE };
struct pending {
  int kind;
  uint64_t off, len;
  uint8_t *data;
};

struct rec {
  uint8_t *cur;
  uint64_t len;
  uint8_t *dur;
  uint64_t dur_len;
  struct pending *log;
  size_t nlog, logcap;
  unsigned flushes;
  bool recording;
  void (*on_flush)(struct rec *);
};

static void grow(uint8_t **buf, uint64_t *len, uint64_t want)
{
  if (want > *len) {
    *buf = realloc(*buf, want ? want : 1);
    cr_assert_not_null(*buf);
    memset(*buf + *len, 0, want - *len);
  }
  *len = want > *len ? want : *len;
}

static void apply(uint8_t **buf, uint64_t *len, const struct pending *w)
{
  switch (w->kind) {
  case W_DATA:
    grow(buf, len, w->off + w->len);
    memcpy(*buf + w->off, w->data, w->len);
    break;
  case W_ZERO:
    if (w->off < *len)
      memset(*buf + w->off, 0, (w->off + w->len > *len ? *len : w->off + w->len) - w->off);
    break;
  case W_SIZE:
    if (w->off > *len)
      grow(buf, len, w->off);
    *len = w->off;
    break;
  }
}

static void record(struct rec *r, int kind, uint64_t off, uint64_t len, const void *data)
{
  struct pending w = { kind, off, len, NULL };
  if (data) {
    w.data = malloc(len ? len : 1);
    memcpy(w.data, data, len);
  }
  apply(&r->cur, &r->len, &w);
  if (!r->recording) {
    free(w.data);
    return;
  }
  if (r->nlog == r->logcap) {
    r->logcap = r->logcap ? 2 * r->logcap : 64;
    r->log = realloc(r->log, r->logcap * sizeof *r->log);
  }
  r->log[r->nlog++] = w;
}

static void drop_log(struct rec *r)
{
  for (size_t i = 0; i < r->nlog; i++)
    free(r->log[i].data);
  r->nlog = 0;
}

static int rec_pread(void *o, void *buf, size_t n, uint64_t off)
{
  struct rec *r = o;
  memset(buf, 0, n);
  if (off < r->len)
    memcpy(buf, r->cur + off, (off + n > r->len ? r->len : off + n) - off);
  return 0;
}
static int rec_pwrite(void *o, const void *buf, size_t n, uint64_t off)
{
  record(o, W_DATA, off, n, buf);
  return 0;
}
static int rec_flush(void *o)
{
  struct rec *r = o;
  if (r->on_flush)
    r->on_flush(r);
  r->flushes++;
  drop_log(r);
  r->dur = realloc(r->dur, r->len ? r->len : 1);
  memcpy(r->dur, r->cur, r->len);
  r->dur_len = r->len;
  return 0;
}
static int rec_get_size(void *o, uint64_t *size)
{
  *size = ((struct rec *)o)->len;
  return 0;
}
static int rec_set_size(void *o, uint64_t size)
{
  record(o, W_SIZE, size, 0, NULL);
  return 0;
}
static int rec_punch(void *o, uint64_t off, uint64_t len)
{
  record(o, W_ZERO, off, len, NULL);
  return 0;
}
static int rec_open_related(void *o, const char *path, unsigned flags, vhd_io **out)
{
  (void)o;
  char full[PATH_MAX];
  if (snprintf(full, sizeof full, "%s/%s", scratch, path) >= (int)sizeof full)
    return -ENAMETOOLONG;
  return vhd_io_open_file(full, flags, out);
}
static void rec_close(void *o) { (void)o; }

static const struct vhd_io_ops rec_ops = {
  .pread = rec_pread, .pwrite = rec_pwrite, .flush = rec_flush, .get_size = rec_get_size,
  .set_size = rec_set_size, .punch_hole = rec_punch, .open_related = rec_open_related,
  .close = rec_close,
};

static vhd_io *rec_io(struct rec *r, const char *name, unsigned flags)
{
  vhd_io *io;
  char full[PATH_MAX];
  cr_assert_lt(snprintf(full, sizeof full, "%s/%s", scratch, name), (int)sizeof full);
  cr_assert_eq(vhd_io_new(&rec_ops, r, full, flags, &io), 0);
  return io;
}

/* --- Crash images ------------------------------------------------------------- */

static uint64_t disk_size;
static uint8_t *model_old, *model_new;  /* at the last vhd_flush, and now */
static unsigned crash_images, crash_leaks, crash_warnings;

static void check_crash_image(const struct rec *r, bool everything)
{
  struct rec snap = { 0 };
  snap.cur = malloc(r->dur_len ? r->dur_len : 1);
  memcpy(snap.cur, r->dur, r->dur_len);
  snap.len = r->dur_len;
  for (size_t i = 0; i < r->nlog; i++)
    if (everything || below(2))
      apply(&snap.cur, &snap.len, &r->log[i]);

  vhd_io *io = rec_io(&snap, "crash.vhd", VHD_IO_RDONLY);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_assert_eq(res.corruptions, 0u, "crash image %u: %u corruptions", crash_images,
               res.corruptions);
  crash_leaks += res.leaks;
  crash_warnings += res.warnings;
  vhd_image *img;
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_VHD, VHD_OPEN_RDONLY, &img), 0,
               "crash image %u does not open: %s", crash_images, vhd_last_error());
  uint8_t *got = malloc(disk_size);
  cr_assert_eq(vhd_pread(img, got, disk_size, 0), 0, "%s", vhd_last_error());
  for (uint64_t s = 0; s < disk_size; s += 512)
    if (memcmp(got + s, model_old + s, 512) != 0 && memcmp(got + s, model_new + s, 512) != 0)
      cr_assert_fail("crash image %u: sector %llu is neither old nor new", crash_images,
                     (unsigned long long)(s / 512));
  vhd_close(img);
  free(got);
  free(snap.cur);
  crash_images++;
}

static void crash_points(struct rec *r)
{
  for (int i = 0; i < 4; i++)
    check_crash_image(r, i == 0);
}

/* --- The scenario -------------------------------------------------------------- */

static void run(vhd_image *img, struct rec *r, bool differencing)
{
  uint8_t *buf = malloc(512 * KiB), *touched = calloc(1, disk_size / 512);
  r->recording = true;
  r->on_flush = crash_points;
  for (int round = 0; round < 6; round++) {
    memset(touched, 0, disk_size / 512);
    unsigned flushes = r->flushes;
    for (int op = 0; op < 14; op++) {
      uint64_t first = below(disk_size / 512), n = 1 + below(400);
      if (first + n > disk_size / 512)
        n = disk_size / 512 - first;
      /* Each sector changes at most once per round, so "old or new" is
       * a complete description of what a crash may show. */
      bool clash = false;
      for (uint64_t s = first; s < first + n; s++)
        clash |= touched[s];
      if (clash)
        continue;
      memset(touched + first, 1, n);
      uint64_t off = first * 512, len = n * 512;
      if (op % 5 == 4) {
        cr_assert_eq(vhd_zero(img, off, len, VHD_ZERO_MAY_TRIM), 0, "%s", vhd_last_error());
        memset(model_new + off, 0, len);
      } else {
        for (uint64_t i = 0; i < len; i++)
          buf[i] = (uint8_t)(rnd() | 1);
        if (op % 7 == 3)
          memset(buf, 0, len);
        cr_assert_eq(vhd_pwrite(img, buf, len, off), 0, "%s", vhd_last_error());
        memcpy(model_new + off, buf, len);
      }
    }
    cr_assert_eq(r->flushes, flushes, "writes flushed by themselves (%u times)",
                 r->flushes - flushes);
    crash_points(r);
    cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
    cr_assert_eq(r->nlog, 0u, "%zu writes still pending after vhd_flush", r->nlog);
    memcpy(model_old, model_new, disk_size);
    /* What is durable now is exactly the model. */
    check_crash_image(r, true);
  }
  (void)differencing;
  r->on_flush = NULL;
  free(buf);
  free(touched);
}

static void finish(vhd_image *img, struct rec *r)
{
  cr_assert_eq(vhd_close(img), 0);
  drop_log(r);
  free(r->log);
  free(r->cur);
  free(r->dur);
  free(model_old);
  free(model_new);
  cr_log_info("%u crash images, %u leaks, %u warnings", crash_images, crash_leaks,
              crash_warnings);
  cr_assert_gt(crash_images, 50u);
}

Test(vhd_crash, dynamic, .init = setup, .fini = teardown)
{
  struct rec r = { 0 };
  struct vhd_create_params p;
  vhd_image *img;
  disk_size = 3 * MiB + 512;
  model_old = calloc(1, disk_size);
  model_new = calloc(1, disk_size);
  vhd_create_params_init(&p);
  p.size = disk_size;
  p.block_size = 128 * KiB;
  cr_assert_eq(vhd_create_io(rec_io(&r, "dyn.vhd", VHD_IO_RDWR), &p, &img), 0, "%s",
               vhd_last_error());
  run(img, &r, false);
  finish(img, &r);
}

/* Freed block slots taking new blocks (slots.h): whole blocks trimmed and
 * others written in each round, so that from the second round on new
 * blocks land in slots freed by an earlier round. A crash must never show
 * one block's data in another, so every sector still reads old or new. */
Test(vhd_crash, slot_reuse, .init = setup, .fini = teardown)
{
  struct rec r = { 0 };
  struct vhd_create_params p;
  vhd_image *img;
  const uint64_t bs = 128 * KiB;
  disk_size = 32 * bs;
  model_old = calloc(1, disk_size);
  model_new = calloc(1, disk_size);
  vhd_create_params_init(&p);
  p.size = disk_size;
  p.block_size = (uint32_t)bs;
  cr_assert_eq(vhd_create_io(rec_io(&r, "reuse.vhd", VHD_IO_RDWR), &p, &img), 0, "%s",
               vhd_last_error());
  uint8_t *buf = malloc(bs);
  for (uint64_t b = 0; b < 16; b++) {
    memset(buf, (int)(0x40 + b), bs);
    cr_assert_eq(vhd_pwrite(img, buf, bs, b * bs), 0);
    memcpy(model_new + b * bs, buf, bs);
  }
  cr_assert_eq(vhd_flush(img), 0);
  memcpy(model_old, model_new, disk_size);
  uint64_t size_before = r.len;
  struct vhd_info in;
  cr_assert_eq(vhd_get_info(img, &in), 0);
  uint64_t initial = in.allocated_blocks, peak = initial;
  r.recording = true;
  r.on_flush = crash_points;
  for (int round = 0; round < 8; round++) {
    bool touched[32] = { false };
    for (int op = 0; op < 6; op++) {
      uint64_t b = below(32);
      if (touched[b])
        continue;
      touched[b] = true;
      if (op % 2 == 0) {
        cr_assert_eq(vhd_discard(img, b * bs, bs), 0, "%s", vhd_last_error());
        memset(model_new + b * bs, 0, bs);
      } else {
        for (uint64_t i = 0; i < bs; i++)
          buf[i] = (uint8_t)(rnd() | 1);
        cr_assert_eq(vhd_pwrite(img, buf, bs, b * bs), 0, "%s", vhd_last_error());
        memcpy(model_new + b * bs, buf, bs);
      }
      cr_assert_eq(vhd_get_info(img, &in), 0);
      if (in.allocated_blocks > peak)
        peak = in.allocated_blocks;
    }
    crash_points(&r);
    cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
    memcpy(model_old, model_new, disk_size);
    check_crash_image(&r, true);
  }
  r.on_flush = NULL;
  /* Slots were reused: the file holds at most the most blocks ever
   * allocated at once, plus the writes of one round (a slot freed in a
   * round waits for its flush). */
  uint64_t grown = r.len > size_before ? (r.len - size_before) / (bs + 512) : 0;
  cr_log_info("file %llu -> %llu bytes, blocks %llu initially, %llu at most",
              (unsigned long long)size_before, (unsigned long long)r.len,
              (unsigned long long)initial, (unsigned long long)peak);
  cr_expect_leq(grown, peak - initial + 3, "the file grew by %llu blocks: freed slots were "
                "not reused", (unsigned long long)grown);
  free(buf);
  finish(img, &r);
}

Test(vhd_crash, differencing, .init = setup, .fini = teardown)
{
  struct rec r = { 0 };
  struct vhd_create_params p;
  vhd_image *img;
  vhd_io *io;
  disk_size = 2 * MiB;
  model_old = malloc(disk_size);
  model_new = malloc(disk_size);
  for (uint64_t i = 0; i < disk_size; i++)
    model_old[i] = (uint8_t)(rnd() | 0x80);
  memcpy(model_new, model_old, disk_size);

  char path[PATH_MAX];
  cr_assert_lt(snprintf(path, sizeof path, "%s/base.vhd", scratch), (int)sizeof path);
  vhd_create_params_init(&p);
  p.size = disk_size;
  p.block_size = 256 * KiB;
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDWR | VHD_IO_CREATE, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pwrite(img, model_old, disk_size, 0), 0);
  cr_assert_eq(vhd_close(img), 0);

  p.type = VHD_TYPE_DIFFERENCING;
  p.size = 0;
  p.parent = "base.vhd";
  cr_assert_eq(vhd_create_io(rec_io(&r, "child.vhd", VHD_IO_RDWR), &p, &img), 0, "%s",
               vhd_last_error());
  run(img, &r, true);
  finish(img, &r);
}
