/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_compact and vhd_get_layout through the public API, VHD and VHDX.
 *
 * The oracle is an in-memory model of the virtual disk: every write made
 * to an image is made to the model too, and after a compact (and after
 * reopening the file) the whole disk must read as the model does. On top:
 * the file gives back at least the freed blocks (VHD: its length; VHDX:
 * host blocks, st_blocks), vhd_check finds nothing wrong, a differencing
 * block of zeros over parent data stays visible as zeros, and a compact
 * stopped half-way (cancelled, or every prefix of its writes that reached
 * the disk when the machine "crashed") leaves an image that reads the
 * same. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd.h"
#include "scratch.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void setup(void) { scratch_make("compact"); }
static void teardown(void) { scratch_remove(); }

/* --- Helpers ---------------------------------------------------------------- */

/* A disk and its model: the bytes it must read as. */
struct disk {
  vhd_image *img;
  uint8_t *model;
  uint64_t size;
  uint32_t bs;
};

static void disk_create(struct disk *d, const char *name, enum vhd_format fmt,
                        enum vhd_disk_type type, uint64_t size, uint32_t bs,
                        const char *parent, const uint8_t *parent_model)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = type;
  p.size = size;
  p.block_size = bs;
  p.parent = parent;
  cr_assert_eq(vhd_create(spath(name), &p, &d->img), 0, "create %s: %s", name,
               vhd_last_error());
  d->size = size;
  d->bs = bs;
  d->model = calloc(1, size);
  cr_assert_not_null(d->model);
  if (parent_model)
    memcpy(d->model, parent_model, size);
}

static void fill_random(uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(rnd() | 1);   /* never a zero byte */
}

/* Write n bytes at off: random data, or zeros when zero is set. */
static void disk_write(struct disk *d, uint64_t off, size_t n, bool zero)
{
  uint8_t *buf = malloc(n);
  cr_assert_not_null(buf);
  if (zero)
    memset(buf, 0, n);
  else
    fill_random(buf, n);
  cr_assert_eq(vhd_pwrite(d->img, buf, n, off), 0, "write: %s", vhd_last_error());
  memcpy(d->model + off, buf, n);
  free(buf);
}

static void expect_model(vhd_image *img, const uint8_t *model, uint64_t size, const char *when)
{
  uint8_t *buf = malloc(size);
  cr_assert_not_null(buf);
  cr_assert_eq(vhd_pread(img, buf, size, 0), 0, "%s: read: %s", when, vhd_last_error());
  for (uint64_t off = 0; off < size; off += 512)
    if (memcmp(buf + off, model + off, 512) != 0)
      cr_assert_fail("%s: sector at offset %llu differs from the model", when,
                     (unsigned long long)off);
  free(buf);
}

static void expect_clean(const char *path)
{
  struct vhd_check_result res;
  cr_assert_eq(vhd_check(path, 0, NULL, NULL, &res), 0, "check: %s", vhd_last_error());
  cr_expect_eq(res.corruptions, 0, "%s: %u corruptions", path, res.corruptions);
  cr_expect_eq(res.leaks, 0, "%s: %u leaks", path, res.leaks);
}

static uint64_t host_bytes(const char *path)
{
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  return (uint64_t)st.st_blocks * 512;
}

static uint64_t file_size(const char *path)
{
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  return (uint64_t)st.st_size;
}

static uint64_t allocated_blocks(vhd_image *img)
{
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  return info.allocated_blocks;
}

static void reopen(struct disk *d, const char *name)
{
  cr_assert_eq(vhd_close(d->img), 0, "close: %s", vhd_last_error());
  cr_assert_eq(vhd_open(spath(name), VHD_OPEN_RDWR, &d->img), 0, "reopen: %s",
               vhd_last_error());
}

/* --- Dynamic images ----------------------------------------------------------- */

/* 16 blocks of 1 MiB, all written, then blocks 1, 2, 5 and 15 (the last,
 * so VHDX can cut its tail) zeroed by writes, and half of block 7. */
static void dynamic_case(enum vhd_format fmt, const char *name)
{
  struct disk d;
  const uint32_t bs = 1 * MiB;
  disk_create(&d, name, fmt, VHD_TYPE_DYNAMIC, 16 * MiB, bs, NULL, NULL);
  disk_write(&d, 0, 16 * MiB, false);
  static const unsigned zeroed[] = {1, 2, 5, 15};
  for (size_t i = 0; i < 4; i++)
    disk_write(&d, (uint64_t)zeroed[i] * bs, bs, true);
  disk_write(&d, 7ull * bs, bs / 2, true);
  reopen(&d, name);
  cr_assert_eq(allocated_blocks(d.img), 16);
  expect_model(d.img, d.model, d.size, "before compact");

  uint64_t size_before = file_size(spath(name)), host_before = host_bytes(spath(name));
  struct vhd_compact_result res;
  cr_assert_eq(vhd_compact(d.img, 0, NULL, NULL, &res), 0, "compact: %s", vhd_last_error());
  cr_expect_eq(res.blocks_freed, 4);
  cr_expect_eq(res.file_size_before, size_before);
  cr_expect_eq(allocated_blocks(d.img), 12);
  expect_model(d.img, d.model, d.size, "after compact");
  /* The image stays usable: a write into a freed block lands right. */
  disk_write(&d, 2ull * bs + 4096, 8192, false);
  expect_model(d.img, d.model, d.size, "after a write into a freed block");
  reopen(&d, name);
  expect_model(d.img, d.model, d.size, "reopened");
  cr_assert_eq(vhd_close(d.img), 0);
  expect_clean(spath(name));

  if (fmt == VHD_FORMAT_VHD) {
    /* Four blocks gone, one (the rewritten block 2) back: at least three
     * blocks and their bitmaps shorter. */
    cr_expect_leq(file_size(spath(name)) + 3ull * (bs + 512), size_before,
                  "VHD file %llu bytes, was %llu", (unsigned long long)file_size(spath(name)),
                  (unsigned long long)size_before);
    /* Each slot: the data 4 KiB-aligned, its one-sector bitmap padded. */
    cr_expect_eq(res.file_size_after + 4ull * (bs + 4096), size_before);
  } else {
    cr_expect_leq(res.host_bytes_after + 4ull * bs, host_before,
                  "VHDX host bytes %llu, were %llu", (unsigned long long)res.host_bytes_after,
                  (unsigned long long)host_before);
    cr_expect_lt(res.file_size_after, size_before, "the free tail block was not cut");
  }
  free(d.model);
}

Test(compact, vhd_dynamic, .init = setup, .fini = teardown)
{
  dynamic_case(VHD_FORMAT_VHD, "d.vhd");
}

Test(compact, vhdx_dynamic, .init = setup, .fini = teardown)
{
  dynamic_case(VHD_FORMAT_VHDX, "d.vhdx");
}

/* A second compact finds nothing more; a compact of a fixed image frees
 * nothing; a read-only image is refused. */
static void nothing_case(enum vhd_format fmt, const char *name)
{
  struct disk d;
  disk_create(&d, name, fmt, VHD_TYPE_FIXED, 4 * MiB, 0, NULL, NULL);
  disk_write(&d, MiB, MiB, true);
  struct vhd_compact_result res;
  cr_assert_eq(vhd_compact(d.img, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.blocks_freed, 0);
  cr_expect_eq(res.file_size_after, res.file_size_before);
  cr_assert_eq(vhd_close(d.img), 0);
  cr_assert_eq(vhd_open(spath(name), VHD_OPEN_RDONLY, &d.img), 0);
  cr_expect_eq(vhd_compact(d.img, 0, NULL, NULL, &res), -EROFS);
  cr_expect(strstr(vhd_last_error(), name) != NULL, "message: %s", vhd_last_error());
  vhd_close(d.img);
  free(d.model);
}

Test(compact, fixed_frees_nothing, .init = setup, .fini = teardown)
{
  nothing_case(VHD_FORMAT_VHD, "f.vhd");
  nothing_case(VHD_FORMAT_VHDX, "f.vhdx");
}

Test(compact, second_run_frees_nothing, .init = setup, .fini = teardown)
{
  struct disk d;
  disk_create(&d, "again.vhd", VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 8 * MiB, 512 * KiB, NULL,
              NULL);
  disk_write(&d, 0, 8 * MiB, false);
  disk_write(&d, 0, 2 * MiB, true);
  struct vhd_compact_result res;
  cr_assert_eq(vhd_compact(d.img, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.blocks_freed, 4);
  cr_assert_eq(vhd_compact(d.img, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.blocks_freed, 0);
  cr_expect_eq(res.file_size_after, res.file_size_before);
  expect_model(d.img, d.model, d.size, "after two compacts");
  cr_assert_eq(vhd_close(d.img), 0);
  expect_clean(spath("again.vhd"));
  free(d.model);
}

/* --- Differencing images ------------------------------------------------------ */

/* Parent: data in blocks 0-3, nothing in 4-7. Child: zeros over block 1
 * (hide parent data), data then zeros in block 5 (zeros over zeros),
 * data in block 6, zeros over half of block 2. Only block 5 may go in a
 * VHD; a VHDX also turns block 1 into a ZERO block. The parent file is
 * never written. */
static void differencing_case(enum vhd_format fmt, const char *pname, const char *cname)
{
  struct disk p, c;
  const uint32_t bs = 1 * MiB;
  disk_create(&p, pname, fmt, VHD_TYPE_DYNAMIC, 8 * MiB, bs, NULL, NULL);
  disk_write(&p, 0, 4 * MiB, false);
  cr_assert_eq(vhd_close(p.img), 0);
  uint64_t parent_size = file_size(spath(pname));
  uint8_t *parent_bytes = malloc(parent_size);
  FILE *f = fopen(spath(pname), "rb");
  cr_assert(f && fread(parent_bytes, 1, parent_size, f) == parent_size);
  fclose(f);

  disk_create(&c, cname, fmt, VHD_TYPE_DIFFERENCING, 8 * MiB, bs, spath(pname), p.model);
  disk_write(&c, 1ull * bs, bs, true);
  disk_write(&c, 5ull * bs, bs, false);
  disk_write(&c, 5ull * bs, bs, true);
  disk_write(&c, 6ull * bs, bs, false);
  disk_write(&c, 2ull * bs, bs / 2, true);
  reopen(&c, cname);
  uint64_t before = allocated_blocks(c.img);
  cr_assert_eq(before, 4);
  expect_model(c.img, c.model, c.size, "child before compact");

  struct vhd_compact_result res;
  cr_assert_eq(vhd_compact(c.img, 0, NULL, NULL, &res), 0, "compact: %s", vhd_last_error());
  bool vhdx = fmt == VHD_FORMAT_VHDX;
  cr_expect_eq(res.blocks_freed, vhdx ? 2 : 1);
  cr_expect_eq(allocated_blocks(c.img), vhdx ? 2 : 3);
  expect_model(c.img, c.model, c.size, "child after compact");
  reopen(&c, cname);
  expect_model(c.img, c.model, c.size, "child reopened");
  cr_assert_eq(vhd_close(c.img), 0);
  expect_clean(spath(cname));
  expect_clean(spath(pname));

  uint8_t *now = malloc(parent_size);
  f = fopen(spath(pname), "rb");
  cr_assert(f && fread(now, 1, parent_size, f) == parent_size);
  fclose(f);
  cr_expect(file_size(spath(pname)) == parent_size && memcmp(now, parent_bytes, parent_size) == 0,
            "the parent file changed");
  free(now);
  free(parent_bytes);
  free(p.model);
  free(c.model);
}

Test(compact, vhd_differencing_keeps_hidden_parent, .init = setup, .fini = teardown)
{
  differencing_case(VHD_FORMAT_VHD, "p.vhd", "c.vhd");
}

Test(compact, vhdx_differencing_keeps_hidden_parent, .init = setup, .fini = teardown)
{
  differencing_case(VHD_FORMAT_VHDX, "p.vhdx", "c.vhdx");
}

/* A compact of a base image does not change what it reads, so a VHDX
 * child stays linked to it (its data write GUID is kept). */
Test(compact, vhdx_child_stays_linked, .init = setup, .fini = teardown)
{
  struct disk p, c;
  disk_create(&p, "base.vhdx", VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, 4 * MiB, MiB, NULL, NULL);
  disk_write(&p, 0, 4 * MiB, false);
  disk_write(&p, MiB, MiB, true);
  cr_assert_eq(vhd_close(p.img), 0);
  disk_create(&c, "child.vhdx", VHD_FORMAT_VHDX, VHD_TYPE_DIFFERENCING, 4 * MiB, 0,
              spath("base.vhdx"), p.model);
  cr_assert_eq(vhd_close(c.img), 0);
  cr_assert_eq(vhd_open(spath("base.vhdx"), VHD_OPEN_RDWR, &p.img), 0);
  struct vhd_compact_result res;
  cr_assert_eq(vhd_compact(p.img, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.blocks_freed, 1);
  cr_assert_eq(vhd_close(p.img), 0);
  cr_assert_eq(vhd_open(spath("child.vhdx"), VHD_OPEN_RDONLY, &c.img), 0,
               "child after compacting its parent: %s", vhd_last_error());
  expect_model(c.img, c.model, c.size, "child");
  vhd_close(c.img);
  free(p.model);
  free(c.model);
}

/* --- Cancel ---------------------------------------------------------------------- */

struct cancel_at {
  uint64_t calls, stop;
};
static int cancel_cb(void *opaque, uint64_t done, uint64_t total)
{
  struct cancel_at *c = opaque;
  cr_assert_leq(done, total);
  return ++c->calls >= c->stop;
}

/* Cancelled after k progress steps for every k: the image is valid, reads
 * the same, and a full compact afterwards reaches the same result. */
static void cancel_case(enum vhd_format fmt, const char *name)
{
  for (uint64_t stop = 1; stop < 30; stop = stop * 3 / 2 + 1) {
    struct disk d;
    disk_create(&d, name, fmt, VHD_TYPE_DYNAMIC, 12 * MiB, MiB, NULL, NULL);
    disk_write(&d, 0, 12 * MiB, false);
    for (unsigned b = 0; b < 12; b += 3)
      disk_write(&d, (uint64_t)b * MiB, MiB, true);
    reopen(&d, name);
    struct cancel_at c = { 0, stop };
    struct vhd_compact_result res;
    int r = vhd_compact(d.img, 0, cancel_cb, &c, &res);
    cr_assert(r == 0 || r == -ECANCELED, "stop %llu: %d %s", (unsigned long long)stop, r,
              vhd_last_error());
    expect_model(d.img, d.model, d.size, "after a cancelled compact");
    reopen(&d, name);
    expect_model(d.img, d.model, d.size, "reopened after a cancelled compact");
    cr_assert_eq(vhd_compact(d.img, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
    cr_expect_eq(allocated_blocks(d.img), 8);
    expect_model(d.img, d.model, d.size, "after the rerun");
    cr_assert_eq(vhd_close(d.img), 0);
    expect_clean(spath(name));
    cr_assert_eq(unlink(spath(name)), 0);
    free(d.model);
  }
}

Test(compact, vhd_cancel, .init = setup, .fini = teardown)
{
  cancel_case(VHD_FORMAT_VHD, "x.vhd");
}

Test(compact, vhdx_cancel, .init = setup, .fini = teardown)
{
  cancel_case(VHD_FORMAT_VHDX, "x.vhdx");
}

/* --- Raw ------------------------------------------------------------------------ */

Test(compact, raw_punches_zero_ranges, .init = setup, .fini = teardown)
{
  struct disk d;
  disk_create(&d, "r.raw", VHD_FORMAT_RAW, VHD_TYPE_NONE, 4 * MiB, 0, NULL, NULL);
  disk_write(&d, 0, 4 * MiB, false);
  disk_write(&d, MiB, 2 * MiB, true);
  cr_assert_eq(vhd_flush(d.img), 0);
  struct vhd_compact_result res;
  cr_assert_eq(vhd_compact(d.img, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  expect_model(d.img, d.model, d.size, "raw after compact");
  cr_expect_eq(res.file_size_after, 4 * MiB);
  cr_expect_leq(res.host_bytes_after + 2 * MiB, res.host_bytes_before);
  vhd_close(d.img);
  free(d.model);
}

/* --- Layout ---------------------------------------------------------------------- */

/* Blocks written back to front lie in the file in reverse order: every
 * one after the first (in virtual order) is out of place. The minimum
 * size ends with the last block any layer holds data in. */
static void layout_case(enum vhd_format fmt, const char *base, const char *child)
{
  struct disk d, c;
  disk_create(&d, base, fmt, VHD_TYPE_DYNAMIC, 16 * MiB, MiB, NULL, NULL);
  for (int b = 3; b >= 0; b--)
    disk_write(&d, (uint64_t)b * MiB, 4096, false);
  struct vhd_layout lay;
  cr_assert_eq(vhd_get_layout(d.img, &lay), 0, "%s", vhd_last_error());
  cr_expect_eq(lay.data_blocks, 4);
  cr_expect_eq(lay.fragmented_blocks, 3);
  cr_expect_eq(lay.fragmentation_pct, 75);
  cr_expect_eq(lay.min_size, 4 * MiB);
  disk_write(&d, 9ull * MiB + 512, 512, false);
  cr_assert_eq(vhd_get_layout(d.img, &lay), 0);
  cr_expect_eq(lay.min_size, 10 * MiB);
  cr_assert_eq(vhd_close(d.img), 0);

  /* The child holds less than its parent: the parent's data counts. */
  disk_create(&c, child, fmt, VHD_TYPE_DIFFERENCING, 16 * MiB, 0, spath(base), d.model);
  disk_write(&c, 512, 512, false);
  cr_assert_eq(vhd_get_layout(c.img, &lay), 0, "%s", vhd_last_error());
  cr_expect_eq(lay.data_blocks, 1);
  cr_expect_eq(lay.fragmented_blocks, 0);
  cr_expect_eq(lay.min_size, 10 * MiB);
  cr_assert_eq(vhd_close(c.img), 0);
  free(d.model);
  free(c.model);
}

Test(layout, vhd, .init = setup, .fini = teardown)
{
  layout_case(VHD_FORMAT_VHD, "l.vhd", "lc.vhd");
}

Test(layout, vhdx, .init = setup, .fini = teardown)
{
  layout_case(VHD_FORMAT_VHDX, "l.vhdx", "lc.vhdx");
}

Test(layout, empty_and_fixed, .init = setup, .fini = teardown)
{
  struct disk d;
  struct vhd_layout lay;
  disk_create(&d, "e.vhdx", VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, 8 * MiB, MiB, NULL, NULL);
  cr_assert_eq(vhd_get_layout(d.img, &lay), 0);
  cr_expect_eq(lay.min_size, 0);
  cr_expect_eq(lay.data_blocks, 0);
  cr_expect_eq(lay.fragmentation_pct, 0);
  vhd_close(d.img);
  free(d.model);
  disk_create(&d, "f.vhd", VHD_FORMAT_VHD, VHD_TYPE_FIXED, 8 * MiB, 0, NULL, NULL);
  cr_assert_eq(vhd_get_layout(d.img, &lay), 0);
  /* A fixed disk holds every byte: nothing can be cut without looking. */
  cr_expect_eq(lay.data_blocks, 0);
  cr_expect_leq(lay.min_size, 8 * MiB);
  vhd_close(d.img);
  free(d.model);
}

/* --- Crashes ------------------------------------------------------------------- */

/* A backend that keeps what is durable (as of the last flush) apart from
 * the changes issued since. At every flush, before it takes effect, crash
 * images are built from the durable bytes plus a random subset of the
 * pending changes (any of them may have reached the disk), in order. Each
 * must open, check without corruption and read as the model: compact
 * never changes what the disk reads, so there is only one right answer. */
struct change {
  uint64_t off, len;   /* len == UINT64_MAX: set the size to off */
  uint8_t *data;       /* NULL: zeros (a punched hole) */
};
struct crashio {
  uint8_t *cur, *dur;
  uint64_t cur_len, dur_len;
  struct change *pend;
  size_t npend, cap;
  const uint8_t *model;
  uint64_t disk_size;
  unsigned images;     /* crash images checked */
};

static void put_bytes(uint8_t **buf, uint64_t *len, const struct change *c)
{
  if (c->len == UINT64_MAX) {
    *buf = realloc(*buf, c->off ? c->off : 1);
    if (c->off > *len)
      memset(*buf + *len, 0, c->off - *len);
    *len = c->off;
    return;
  }
  if (c->off + c->len > *len) {
    if (!c->data)
      return;   /* a hole past the end changes nothing */
    *buf = realloc(*buf, c->off + c->len);
    memset(*buf + *len, 0, c->off + c->len - *len);
    *len = c->off + c->len;
  }
  if (c->data)
    memcpy(*buf + c->off, c->data, c->len);
  else
    memset(*buf + c->off, 0, c->len);
}

static void crash_note(struct crashio *f, uint64_t off, uint64_t len, const void *data)
{
  struct change c = { off, len, NULL };
  if (data) {
    c.data = malloc(len);
    memcpy(c.data, data, len);
  }
  put_bytes(&f->cur, &f->cur_len, &c);
  if (f->npend == f->cap) {
    f->cap = f->cap ? 2 * f->cap : 64;
    f->pend = realloc(f->pend, f->cap * sizeof *f->pend);
  }
  f->pend[f->npend++] = c;
}

static void check_crash_image(struct crashio *f, const uint8_t *bytes, uint64_t len)
{
  vhd_io *io;
  vhd_image *img;
  struct vhd_check_result res;
  cr_assert_eq(vhd_io_new_memory(bytes, len, "crash", VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions, 0, "crash image %u: %u corruptions", f->images,
               res.corruptions);
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, &img), 0,
               "crash image %u does not open: %s", f->images, vhd_last_error());
  expect_model(img, f->model, f->disk_size, "crash image");
  vhd_close(img);
  f->images++;
}

static int crash_flush(void *o)
{
  struct crashio *f = o;
  /* Some of the pending changes, then all (none is the last image). */
  for (int k = 1; k < 3 && f->model; k++) {
    uint8_t *img = malloc(f->dur_len ? f->dur_len : 1);
    uint64_t len = f->dur_len;
    memcpy(img, f->dur, len);
    for (size_t i = 0; i < f->npend; i++)
      if (k == 2 || (k == 1 && (rnd() & 1)))   /* none, some, all */
        put_bytes(&img, &len, &f->pend[i]);
    check_crash_image(f, img, len);
    free(img);
  }
  for (size_t i = 0; i < f->npend; i++) {
    put_bytes(&f->dur, &f->dur_len, &f->pend[i]);
    free(f->pend[i].data);
  }
  f->npend = 0;
  return 0;
}

static int crash_pread(void *o, void *buf, size_t n, uint64_t off)
{
  struct crashio *f = o;
  memset(buf, 0, n);
  if (off < f->cur_len)
    memcpy(buf, f->cur + off, (off + n > f->cur_len ? f->cur_len : off + n) - off);
  return 0;
}
static int crash_pwrite(void *o, const void *buf, size_t n, uint64_t off)
{
  crash_note(o, off, n, buf);
  return 0;
}
static int crash_get_size(void *o, uint64_t *size)
{
  *size = ((struct crashio *)o)->cur_len;
  return 0;
}
static int crash_set_size(void *o, uint64_t size)
{
  crash_note(o, size, UINT64_MAX, NULL);
  return 0;
}
static int crash_punch(void *o, uint64_t off, uint64_t len)
{
  crash_note(o, off, len, NULL);
  return 0;
}
static void crash_close(void *o) { (void)o; }

static const struct vhd_io_ops crash_ops = {
  .pread = crash_pread,
  .pwrite = crash_pwrite,
  .flush = crash_flush,
  .get_size = crash_get_size,
  .set_size = crash_set_size,
  .punch_hole = crash_punch,
  .close = crash_close,
};

static void crash_case(enum vhd_format fmt, uint32_t bs, unsigned nblocks)
{
  struct crashio f;
  memset(&f, 0, sizeof f);
  vhd_io *io;
  vhd_image *img;
  struct vhd_create_params p;
  const uint64_t size = (uint64_t)nblocks * bs;
  uint8_t *model = calloc(1, size), *buf = malloc(bs);
  vhd_create_params_init(&p);
  p.format = fmt;
  p.size = size;
  p.block_size = bs;
  cr_assert_eq(vhd_io_new(&crash_ops, &f, "crash.img", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  /* Every block written, then a zero pattern with runs of 1, 2 and 3. */
  uint64_t zeros = 0;
  for (uint64_t b = 0; b < nblocks; b++) {
    static const bool zero[32] = {0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1,
                                  1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1};
    fill_random(buf, bs);
    cr_assert_eq(vhd_pwrite(img, buf, bs, b * bs), 0);
    if (zero[b]) {
      memset(buf, 0, bs);
      zeros++;
    }
    cr_assert_eq(vhd_pwrite(img, buf, bs, b * bs), 0);
    memcpy(model + b * bs, buf, bs);
  }
  cr_assert_eq(vhd_flush(img), 0);
  f.model = model;
  f.disk_size = size;
  struct vhd_compact_result res;
  cr_assert_eq(vhd_compact(img, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_expect_eq(res.blocks_freed, zeros);
  cr_expect_gt(f.images, 4, "only %u crash images", f.images);
  expect_model(img, model, size, "after compact");
  vhd_close(img);
  for (size_t i = 0; i < f.npend; i++)
    free(f.pend[i].data);
  free(f.pend);
  free(f.cur);
  free(f.dur);
  free(model);
  free(buf);
}

Test(compact, vhd_crash_at_every_flush)
{
  crash_case(VHD_FORMAT_VHD, 64 * KiB, 32);
}

Test(compact, vhdx_crash_at_every_flush)
{
  crash_case(VHD_FORMAT_VHDX, MiB, 10);
}
