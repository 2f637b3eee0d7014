/* SPDX-License-Identifier: BSD-3-Clause */
/* Crash consistency: "a crash at any moment leaves an image that opens"
 * (DESIGN.md, data safety rules). A logging backend (fakeio.h) records every
 * change a writing session makes; the file is then rebuilt as it stood after
 * each prefix of those changes, as if the machine had stopped there. Every
 * such file must open read-only, and every sector must read as either its
 * content before the session or after it (never garbage, never zeros where a
 * parent's data belongs). After the session's vhd_flush has returned, the
 * new content must be there in full. The model is a plain byte array. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakeio.h"
#include "vhd.h"

#define MiB (1024u * 1024u)
#define DISK (4 * MiB)

static uint8_t *model_new(void)
{
  uint8_t *m = fake_realloc(NULL, DISK);   /* tracked: freed by teardown */
  cr_assert_not_null(m);
  memset(m, 0, DISK);
  return m;
}

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
  for (size_t i = 0; i < len; i++) {
    seed = seed * 1103515245u + 12345u;
    buf[i] = (uint8_t)(seed >> 16) | 1;   /* never zero: zeros would hide a lost write */
  }
}

struct w { uint64_t off; size_t len; };

static void write_all(vhd_image *img, uint8_t *model, const struct w *ws, size_t n, unsigned seed)
{
  static uint8_t buf[300000];
  for (size_t i = 0; i < n; i++) {
    for (size_t done = 0; done < ws[i].len; ) {
      size_t len = ws[i].len - done < sizeof buf ? ws[i].len - done : sizeof buf;
      pattern(buf, len, seed + (unsigned)(i * 1000 + done / sizeof buf));
      cr_assert_eq(vhd_pwrite(img, buf, len, ws[i].off + done), 0, "%s", vhd_last_error());
      memcpy(model + ws[i].off + done, buf, len);
      done += len;
    }
  }
}

static struct vhd_create_params params(enum vhd_format fmt, enum vhd_disk_type type, const char *parent)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = type;
  p.size = parent ? 0 : DISK;
  p.block_size = fmt == VHD_FORMAT_VHDX ? MiB : 512 * 1024;
  p.parent = parent;
  return p;
}

/* The session: reopen the image in `start` read-write, write, flush, close.
 * Fills the change log and tells at which change the flush had returned. */
static void session(const struct fake *start, struct fake *logf, uint8_t *after,
                    const struct w *ws, size_t n, size_t *flushed_at)
{
  *logf = (struct fake){ .log = 1 };
  cr_assert_eq(fake_resize(logf, start->size), 0);
  memcpy(logf->data, start->data, start->size);
  vhd_image *img = NULL;
  cr_assert_eq(vhd_open_io(fake_io(logf, "crash.img", VHD_IO_RDWR), VHD_FORMAT_AUTO,
                           VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  write_all(img, after, ws, n, 1000);
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  *flushed_at = logf->nlog;
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
}

static void check_prefixes(const struct fake *start, const struct fake *logf,
                           const uint8_t *before, const uint8_t *after, size_t flushed_at)
{
  uint8_t *got = model_new();
  cr_assert_gt(logf->nlog, 0u, "the session changed nothing");
  for (size_t k = 0; k <= logf->nlog; k++) {
    struct fake f;
    cr_assert_eq(fake_replay(&f, start, logf, k), 0);
    char name[64];
    snprintf(name, sizeof name, "crash-after-%zu-of-%zu", k, logf->nlog);
    vhd_image *img = NULL;
    int r = vhd_open_io(fake_io(&f, name, VHD_IO_RDONLY), VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, &img);
    cr_assert_eq(r, 0, "%s: does not open: %s", name, vhd_last_error());
    r = vhd_pread(img, got, DISK, 0);
    cr_assert_eq(r, 0, "%s: read fails: %s", name, vhd_last_error());
    for (size_t s = 0; s < DISK; s += 512) {
      int old = memcmp(got + s, before + s, 512) == 0;
      int new = memcmp(got + s, after + s, 512) == 0;
      cr_assert(old || new, "%s: sector %zu reads neither its old nor its new content", name, s / 512);
      if (k >= flushed_at)
        cr_assert(new, "%s: sector %zu lost after vhd_flush returned", name, s / 512);
    }
    vhd_close(img);
    fake_destroy(&f);
  }
  fake_free(got);
}

/* Writes that allocate blocks, fill parts of blocks, overwrite allocated data
 * and straddle block boundaries at odd offsets. No two touch the same sector:
 * a sector written twice may legitimately show the first write after a
 * crash, which the old-or-new rule would not allow. */
static const struct w session_writes[] = {
  { 512 * 1024 + 100, 5000 },          /* new block, unaligned */
  { 3 * MiB - 700, 1400 },             /* straddles a block boundary */
  { 0, 512 },                          /* into an allocated block */
  { 2 * 512 * 1024 + 4096, 200000 },   /* large, spans blocks */
  { DISK - 1, 1 },                     /* the last byte */
  { 1031, 1 },                         /* one byte inside an allocated sector */
};

static void crash_dynamic(enum vhd_format fmt)
{
  /* The image before the session: blocks 0 and 6 hold data. */
  struct fake start = { 0 };
  uint8_t *before = model_new();
  struct vhd_create_params p = params(fmt, VHD_TYPE_DYNAMIC, NULL);
  vhd_image *img = NULL;
  cr_assert_eq(vhd_create_io(fake_io(&start, "start.img", VHD_IO_RDWR), &p, &img), 0, "%s", vhd_last_error());
  struct w pre[] = { { 0, 4096 }, { 3 * MiB + 512, 9000 } };
  write_all(img, before, pre, 2, 1);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  uint8_t *after = model_new();
  memcpy(after, before, DISK);
  struct fake logf;
  size_t flushed_at;
  session(&start, &logf, after, session_writes, sizeof session_writes / sizeof session_writes[0], &flushed_at);
  check_prefixes(&start, &logf, before, after, flushed_at);
  fake_destroy(&logf);
  fake_destroy(&start);
  fake_free(before);
  fake_free(after);
}

static void crash_differencing(enum vhd_format fmt)
{
  /* The parent is a real file, reached through open_related. */
  char dir[PATH_MAX], parent[PATH_MAX + 16];
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/crash.XXXXXX", t && *t ? t : "/tmp");
  cr_assert_not_null(mkdtemp(dir));
  char *real = realpath(dir, NULL);
  snprintf(parent, sizeof parent, "%s/parent.%s", real, fmt == VHD_FORMAT_VHDX ? "vhdx" : "vhd");
  free(real);

  uint8_t *before = model_new();
  struct vhd_create_params p = params(fmt, VHD_TYPE_DYNAMIC, NULL);
  vhd_image *img = NULL;
  cr_assert_eq(vhd_create(parent, &p, &img), 0, "%s", vhd_last_error());
  /* Parent data everywhere the session writes, so a lost sector shows. */
  struct w pre[] = { { 0, DISK } };
  write_all(img, before, pre, 1, 7);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  struct fake start = { 0 };
  p = params(fmt, VHD_TYPE_DIFFERENCING, parent);
  cr_assert_eq(vhd_create_io(fake_io(&start, "child.img", VHD_IO_RDWR), &p, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());

  uint8_t *after = model_new();
  memcpy(after, before, DISK);
  struct fake logf;
  size_t flushed_at;
  session(&start, &logf, after, session_writes, sizeof session_writes / sizeof session_writes[0], &flushed_at);
  check_prefixes(&start, &logf, before, after, flushed_at);
  fake_destroy(&logf);
  fake_destroy(&start);
  fake_free(before);
  fake_free(after);
  unlink(parent);
  rmdir(dir);
}

static void free_fakes(void) { fake_free_all(); }
TestSuite(io_crash, .fini = free_fakes);

Test(io_crash, vhd_dynamic, .timeout = 240) { crash_dynamic(VHD_FORMAT_VHD); }
Test(io_crash, vhd_differencing, .timeout = 240) { crash_differencing(VHD_FORMAT_VHD); }
Test(io_crash, vhdx_dynamic, .timeout = 240) { crash_dynamic(VHD_FORMAT_VHDX); }
Test(io_crash, vhdx_differencing, .timeout = 240) { crash_differencing(VHD_FORMAT_VHDX); }
