/* SPDX-License-Identifier: BSD-3-Clause */
/* Reading and writing VHDs through the public API (lib/vhd/vhd_rw.c),
 * checked against an in-memory model of the disk: random writes, zeroes
 * and trims of random sizes and alignments, for every disk type and
 * several block sizes; then the image is reopened from its bytes and
 * compared again, and vhd_check must find nothing wrong. Plus the
 * behaviours a model cannot show: thin provisioning, exact differencing
 * bitmaps, block status, and the size rules of create. */
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
#include "driver.h"
#include "image.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

static uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static uint64_t rng_state;
static uint64_t rnd(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* --- Scratch directory for the tests that need files (parents) ------------ */

static void setup(void) { scratch_make("vhdrw"); }
static void teardown(void) { scratch_remove(); }

/* --- Helpers -------------------------------------------------------------- */

static vhd_image *create_mem(enum vhd_disk_type type, uint64_t size, uint32_t bs, vhd_io **io_out)
{
  struct vhd_create_params p;
  vhd_io *io;
  vhd_image *img;
  vhd_create_params_init(&p);
  p.type = type;
  p.size = size;
  p.block_size = bs;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "model.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "create: %s", vhd_last_error());
  if (io_out)
    *io_out = io;
  return img;
}

static vhd_image *create_file(const char *path, enum vhd_disk_type type, uint64_t size,
                              uint32_t bs, const char *parent)
{
  struct vhd_create_params p;
  vhd_io *io;
  vhd_image *img;
  vhd_create_params_init(&p);
  p.type = type;
  p.size = size;
  p.block_size = bs;
  p.parent = parent;
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDWR | VHD_IO_CREATE, &io), 0, "%s",
               vhd_last_error());
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "create %s: %s", path, vhd_last_error());
  return img;
}

static vhd_image *open_file(const char *path, unsigned flags)
{
  vhd_io *io;
  vhd_image *img;
  cr_assert_eq(vhd_io_open_file(path, (flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : VHD_IO_RDONLY,
                                &io), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, flags, &img), 0, "open %s: %s", path,
               vhd_last_error());
  return img;
}

static void compare_all(vhd_image *img, const uint8_t *model, uint64_t size, const char *when)
{
  uint8_t *buf = malloc(size);
  cr_assert_eq(vhd_pread(img, buf, size, 0), 0, "%s: %s", when, vhd_last_error());
  for (uint64_t i = 0; i < size; i++)
    if (buf[i] != model[i])
      cr_assert_fail("%s: byte %llu is 0x%02x, model says 0x%02x (seed %llu)", when,
                     (unsigned long long)i, buf[i], model[i], (unsigned long long)rng_state);
  free(buf);
}

static void expect_clean(vhd_io *io, const char *when)
{
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0, "%s", vhd_last_error());
  cr_assert_eq(res.corruptions, 0u, "%s: %u corruptions", when, res.corruptions);
  cr_assert_eq(res.leaks, 0u, "%s: %u leaks (%llu bytes)", when, res.leaks,
               (unsigned long long)res.leaked_bytes);
  cr_assert_eq(res.warnings, 0u, "%s: %u warnings", when, res.warnings);
}

/* Random operations on img, mirrored into model. */
static void random_ops(vhd_image *img, uint8_t *model, uint64_t size, uint32_t bs, int ops)
{
  uint64_t max_len = 3 * (uint64_t)bs < 300 * KiB ? 3 * (uint64_t)bs : 300 * KiB;
  uint8_t *buf = malloc(max_len);
  for (int op = 0; op < ops; op++) {
    uint64_t len = 1 + rnd_below(max_len);
    uint64_t off;
    /* Mostly aligned requests, some ragged ones. */
    if (rnd_below(4)) {
      len = (len + 511) / 512 * 512;
      off = rnd_below(size / 512) * 512;
    } else {
      off = rnd_below(size);
    }
    if (off + len > size)
      len = size - off;
    if (len == 0)
      continue;
    unsigned kind = (unsigned)rnd_below(100);
    if (kind < 45) {
      if (rnd_below(5) == 0)
        memset(buf, 0, len);
      else
        for (uint64_t i = 0; i < len; i++)
          buf[i] = (uint8_t)(rnd() | 1);
      cr_assert_eq(vhd_pwrite(img, buf, len, off), 0, "write %llu@%llu: %s",
                   (unsigned long long)len, (unsigned long long)off, vhd_last_error());
      memcpy(model + off, buf, len);
    } else if (kind < 60) {
      unsigned flags = rnd_below(2) ? VHD_ZERO_MAY_TRIM : 0;
      cr_assert_eq(vhd_zero(img, off, len, flags), 0, "zero %llu@%llu: %s",
                   (unsigned long long)len, (unsigned long long)off, vhd_last_error());
      memset(model + off, 0, len);
    } else if (kind < 68) {
      cr_assert_eq(vhd_flush(img), 0, "flush: %s", vhd_last_error());
    } else {
      cr_assert_eq(vhd_pread(img, buf, len, off), 0, "%s", vhd_last_error());
      if (memcmp(buf, model + off, len) != 0)
        cr_assert_fail("read %llu@%llu differs from the model",
                       (unsigned long long)len, (unsigned long long)off);
    }
  }
  free(buf);
}

static void model_test(enum vhd_disk_type type, uint64_t size, uint32_t bs, uint64_t seed)
{
  vhd_io *io;
  rng_state = seed;
  vhd_image *img = create_mem(type, size, bs, &io);
  uint8_t *model = calloc(1, size);
  random_ops(img, model, size, bs ? bs : 2 * MiB, 250);
  compare_all(img, model, size, "before reopening");
  cr_assert_eq(vhd_flush(img), 0);
  void *bytes;
  size_t len;
  cr_assert_eq(vhd_io_memory_contents(io, &bytes, &len), 0);
  cr_assert_eq(vhd_close(img), 0);

  cr_assert_eq(vhd_io_new_memory(bytes, len, "model.vhd", VHD_IO_RDWR, &io), 0);
  expect_clean(io, "after the random operations");
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDWR, &img), 0, "%s", vhd_last_error());
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  cr_assert_eq(info.type, type);
  cr_assert_eq(info.virtual_size, size);
  compare_all(img, model, size, "after reopening");
  /* And more work on the reopened image. */
  random_ops(img, model, size, bs ? bs : 2 * MiB, 80);
  compare_all(img, model, size, "after more operations");
  cr_assert_eq(vhd_close(img), 0);
  free(bytes);
  free(model);
}

Test(vhd_rw, dynamic_model_2m_blocks) { model_test(VHD_TYPE_DYNAMIC, 9 * MiB + 3 * 512, 0, 1); }
Test(vhd_rw, dynamic_model_64k_blocks) { model_test(VHD_TYPE_DYNAMIC, 3 * MiB + 512, 64 * KiB, 2); }
Test(vhd_rw, dynamic_model_4k_blocks) { model_test(VHD_TYPE_DYNAMIC, 1 * MiB + 7 * 512, 4 * KiB, 3); }
Test(vhd_rw, dynamic_model_512_byte_blocks) { model_test(VHD_TYPE_DYNAMIC, 256 * KiB, 512, 4); }
Test(vhd_rw, fixed_model) { model_test(VHD_TYPE_FIXED, 5 * MiB + 512, 0, 5); }

/* A differencing image over a parent full of data, against the model. */
static void diff_model_test(uint32_t bs, uint64_t seed)
{
  const uint64_t size = 3 * MiB + 5 * 512;
  rng_state = seed;
  uint8_t *model = malloc(size);
  for (uint64_t i = 0; i < size; i++)
    model[i] = (uint8_t)(rnd() | 0x80);
  /* Leave one region of the parent unallocated (zeros). */
  memset(model + MiB, 0, 200 * KiB);
  vhd_image *parent = create_file(spath("base.vhd"), VHD_TYPE_DYNAMIC, size, bs, NULL);
  cr_assert_eq(vhd_pwrite(parent, model, MiB, 0), 0);
  cr_assert_eq(vhd_pwrite(parent, model + MiB + 200 * KiB, size - MiB - 200 * KiB,
                          MiB + 200 * KiB), 0);
  cr_assert_eq(vhd_close(parent), 0);

  vhd_image *child = create_file(spath("child.vhd"), VHD_TYPE_DIFFERENCING, 0, bs, "base.vhd");
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(child, &info), 0);
  cr_assert_eq(info.virtual_size, size);
  cr_assert_eq(info.chain_depth, 1u);
  compare_all(child, model, size, "fresh child");
  random_ops(child, model, size, bs, 250);
  compare_all(child, model, size, "child before reopening");
  cr_assert_eq(vhd_close(child), 0);

  child = open_file(spath("child.vhd"), VHD_OPEN_RDWR);
  compare_all(child, model, size, "child after reopening");
  random_ops(child, model, size, bs, 60);
  compare_all(child, model, size, "child after more operations");
  cr_assert_eq(vhd_close(child), 0);
  vhd_io *io;
  cr_assert_eq(vhd_io_open_file(spath("child.vhd"), VHD_IO_RDONLY, &io), 0);
  expect_clean(io, "child");
  vhd_io_close(io);
  free(model);
}

Test(vhd_rw, differencing_model_64k_blocks, .init = setup, .fini = teardown)
{
  diff_model_test(64 * KiB, 11);
}
Test(vhd_rw, differencing_model_2m_blocks, .init = setup, .fini = teardown)
{
  diff_model_test(2 * MiB, 12);
}

/* --- Thin provisioning ------------------------------------------------------ */

static uint64_t allocated(vhd_image *img)
{
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  return info.allocated_blocks;
}

static size_t mem_size(vhd_io *io)
{
  void *p;
  size_t n;
  cr_assert_eq(vhd_io_memory_contents(io, &p, &n), 0);
  free(p);
  return n;
}

Test(vhd_rw, zero_writes_allocate_nothing)
{
  vhd_io *io;
  vhd_image *img = create_mem(VHD_TYPE_DYNAMIC, 8 * MiB, 0, &io);
  size_t empty = mem_size(io);
  uint8_t *zeros = calloc(1, 3 * MiB), *data = malloc(4096);
  cr_assert_eq(vhd_pwrite(img, zeros, 3 * MiB, 512), 0);
  cr_assert_eq(vhd_pwrite(img, zeros, 100, 7 * MiB + 3), 0);
  cr_assert_eq(vhd_flush(img), 0);
  cr_assert_eq(allocated(img), 0u);
  cr_assert_eq(mem_size(io), empty, "zero writes grew the file");

  memset(data, 0xab, 4096);
  cr_assert_eq(vhd_pwrite(img, data, 4096, 2 * MiB + 8192), 0);
  cr_assert_eq(allocated(img), 1u);
  /* The data goes on the next 4 KiB boundary after the old footer's place,
   * the bitmap right before it, the footer after it. */
  cr_assert_eq(mem_size(io), (empty + 4095) / 4096 * 4096 + 2 * MiB + 512,
               "one block = padding, bitmap, data");
  /* Zeros into an allocated block are stored (the block stays). */
  cr_assert_eq(vhd_pwrite(img, zeros, 4096, 2 * MiB + 8192), 0);
  cr_assert_eq(allocated(img), 1u);
  cr_assert_eq(vhd_pread(img, data, 4096, 2 * MiB + 8192), 0);
  cr_assert(memcmp(data, zeros, 4096) == 0);
  cr_assert_eq(vhd_close(img), 0);
  free(zeros);
  free(data);
}

/* The bitmap of a new dynamic block marks every sector; data written to
 * the middle of a block leaves the rest as zeros. */
Test(vhd_rw, dynamic_block_layout)
{
  vhd_io *io;
  vhd_image *img = create_mem(VHD_TYPE_DYNAMIC, 4 * MiB, 0, &io);
  uint8_t data[1024];
  memset(data, 0x3c, sizeof data);
  cr_assert_eq(vhd_pwrite(img, data, sizeof data, 2 * MiB + 4096), 0);
  cr_assert_eq(vhd_flush(img), 0);
  uint8_t *b;
  size_t n;
  cr_assert_eq(vhd_io_memory_contents(io, (void **)&b, &n), 0);
  const uint8_t *h = b + 512;
  uint32_t e = be32(b + be64(h + 16) + 4);
  cr_assert_eq(be32(b + be64(h + 16)), 0xFFFFFFFFu);
  cr_assert_neq(e, 0xFFFFFFFFu);
  const uint8_t *blk = b + (uint64_t)e * 512;
  for (int i = 0; i < 512; i++)
    cr_assert_eq(blk[i], 0xff, "bitmap byte %d", i);
  for (size_t i = 0; i < 2 * MiB; i++) {
    uint8_t want = (i >= 4096 && i < 4096 + sizeof data) ? 0x3c : 0;
    if (blk[512 + i] != want)
      cr_assert_fail("data byte %zu is 0x%02x", i, blk[512 + i]);
  }
  /* The block ends where the footer starts. */
  cr_assert_eq((uint64_t)e * 512 + 512 + 2 * MiB, n - 512);
  cr_assert_eq(memcmp(b + n - 512, "conectix", 8), 0);
  free(b);
  vhd_close(img);
}

Test(vhd_rw, zero_and_trim_dynamic)
{
  vhd_io *io;
  vhd_image *img = create_mem(VHD_TYPE_DYNAMIC, 8 * MiB, 0, &io);
  size_t empty = mem_size(io);
  uint8_t *data = malloc(8 * MiB), *got = malloc(8 * MiB);
  memset(data, 0x42, 8 * MiB);
  cr_assert_eq(vhd_pwrite(img, data, 8 * MiB, 0), 0);
  cr_assert_eq(allocated(img), 4u);

  /* Without MAY_TRIM an allocated block stays allocated. */
  cr_assert_eq(vhd_zero(img, 0, 2 * MiB, 0), 0);
  cr_assert_eq(allocated(img), 4u);
  /* FAST cannot zero an allocated block without writing. */
  cr_assert_eq(vhd_zero(img, 2 * MiB, 2 * MiB, VHD_ZERO_FAST), -ENOTSUP);
  /* MAY_TRIM frees whole blocks, zeroes partial ones. */
  cr_assert_eq(vhd_zero(img, 2 * MiB + 4096, 6 * MiB - 4096, VHD_ZERO_MAY_TRIM | VHD_ZERO_FAST),
               -ENOTSUP, "the partial block needs writes");
  cr_assert_eq(vhd_zero(img, 2 * MiB + 4096, 6 * MiB - 4096, VHD_ZERO_MAY_TRIM), 0);
  cr_assert_eq(allocated(img), 2u);
  memset(data, 0, 2 * MiB);
  memset(data + 2 * MiB + 4096, 0, 6 * MiB - 4096);
  cr_assert_eq(vhd_pread(img, got, 8 * MiB, 0), 0);
  cr_assert(memcmp(got, data, 8 * MiB) == 0);

  /* Freeing the blocks at the end gives the space back at flush. */
  cr_assert_eq(vhd_zero(img, 0, 8 * MiB, VHD_ZERO_MAY_TRIM), 0);
  cr_assert_eq(allocated(img), 0u);
  /* Nothing left to write: FAST succeeds on unallocated blocks. */
  cr_assert_eq(vhd_zero(img, 0, 8 * MiB, VHD_ZERO_FAST), 0);
  cr_assert_eq(vhd_flush(img), 0);
  cr_assert_eq(mem_size(io), empty, "the file did not shrink back");
  cr_assert_eq(vhd_pread(img, got, 8 * MiB, 0), 0);
  memset(data, 0, 8 * MiB);
  cr_assert(memcmp(got, data, 8 * MiB) == 0);
  /* And the image can grow again. */
  memset(data + 5 * MiB, 0x17, 512);
  cr_assert_eq(vhd_pwrite(img, data + 5 * MiB, 512, 5 * MiB), 0);
  cr_assert_eq(vhd_flush(img), 0);
  void *bytes;
  size_t n;
  cr_assert_eq(vhd_io_memory_contents(io, &bytes, &n), 0);
  cr_assert_eq(vhd_close(img), 0);
  cr_assert_eq(vhd_io_new_memory(bytes, n, "trimmed.vhd", VHD_IO_RDONLY, &io), 0);
  expect_clean(io, "trimmed");
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_VHD, 0, &img), 0);
  cr_assert_eq(vhd_pread(img, got, 8 * MiB, 0), 0);
  cr_assert(memcmp(got, data, 8 * MiB) == 0);
  vhd_close(img);
  free(bytes);
  free(data);
  free(got);
}

/* --- Differencing ----------------------------------------------------------- */

/* One sector written into a child: the rest of the block still reads from
 * the parent, and the bitmap on disk marks exactly that sector. */
Test(vhd_rw, differencing_bitmap_is_exact, .init = setup, .fini = teardown)
{
  const uint64_t size = 4 * MiB;
  uint8_t *pat = malloc(size), *got = malloc(size);
  for (uint64_t i = 0; i < size; i++)
    pat[i] = (uint8_t)(i / 512 + 1);
  vhd_image *parent = create_file(spath("p.vhd"), VHD_TYPE_DYNAMIC, size, 0, NULL);
  cr_assert_eq(vhd_pwrite(parent, pat, size, 0), 0);
  cr_assert_eq(vhd_close(parent), 0);

  vhd_image *child = create_file(spath("c.vhd"), VHD_TYPE_DIFFERENCING, 0, 0, "p.vhd");
  uint8_t sector[512];
  memset(sector, 0xEE, sizeof sector);
  cr_assert_eq(vhd_pwrite(child, sector, 512, 5 * 512), 0);
  memcpy(pat + 5 * 512, sector, 512);
  cr_assert_eq(vhd_pread(child, got, size, 0), 0);
  cr_assert(memcmp(got, pat, size) == 0, "child does not read parent + one sector");

  /* Block status: the sector is this layer's, its neighbours the parent's. */
  unsigned st;
  uint64_t run;
  int layer;
  cr_assert_eq(vhd_block_status(child, 0, size, &st, &run, &layer), 0);
  cr_assert_eq(st, VHD_STATUS_DATA);
  cr_assert_eq(layer, 1);
  cr_assert_eq(run, 5 * 512u);
  cr_assert_eq(vhd_block_status(child, 5 * 512, size - 5 * 512, &st, &run, &layer), 0);
  cr_assert_eq(layer, 0);
  cr_assert_eq(run, 512u);
  cr_assert_eq(vhd_block_status(child, 6 * 512, size - 6 * 512, &st, &run, &layer), 0);
  cr_assert_eq(layer, 1);

  /* A second sector in the same (allocated) block, then zeros, which must
   * hide the parent rather than expose it. */
  memset(sector, 0xDD, sizeof sector);
  cr_assert_eq(vhd_pwrite(child, sector, 512, 7 * 512), 0);
  memcpy(pat + 7 * 512, sector, 512);
  cr_assert_eq(vhd_zero(child, 3 * MiB, 4096, VHD_ZERO_MAY_TRIM), 0);
  memset(pat + 3 * MiB, 0, 4096);
  cr_assert_eq(vhd_close(child), 0);

  child = open_file(spath("c.vhd"), VHD_OPEN_RDONLY);
  cr_assert_eq(vhd_pread(child, got, size, 0), 0);
  cr_assert(memcmp(got, pat, size) == 0, "content changed across reopening");
  cr_assert_eq(vhd_close(child), 0);

  /* The bitmaps on disk, read straight from the file. */
  FILE *f = fopen(spath("c.vhd"), "rb");
  fseek(f, 0, SEEK_END);
  size_t n = (size_t)ftell(f);
  uint8_t *b = malloc(n);
  fseek(f, 0, SEEK_SET);
  cr_assert_eq(fread(b, 1, n, f), n);
  fclose(f);
  const uint8_t *h = b + 512, *bat = b + be64(h + 16);
  const uint8_t *bm0 = b + (uint64_t)be32(bat) * 512, *bm1 = b + (uint64_t)be32(bat + 4) * 512;
  cr_assert_eq(bm0[0], 0x05, "sectors 5 and 7 -> 0x05, got 0x%02x", bm0[0]);
  for (int i = 1; i < 512; i++)
    cr_assert_eq(bm0[i], 0, "block 0 bitmap byte %d", i);
  /* 3 MiB = block 1, sector 2048 of 4096: bits 2048..2055 -> byte 256. */
  for (int i = 0; i < 512; i++)
    cr_assert_eq(bm1[i], i == 256 ? 0xff : 0, "block 1 bitmap byte %d", i);
  free(b);
  free(pat);
  free(got);
}

Test(vhd_rw, differencing_info_and_parent_link, .init = setup, .fini = teardown)
{
  vhd_image *parent = create_file(spath("pp.vhd"), VHD_TYPE_DYNAMIC, 3 * MiB, 0, NULL);
  struct vhd_info pinfo, cinfo;
  cr_assert_eq(vhd_get_info(parent, &pinfo), 0);
  cr_assert_eq(vhd_close(parent), 0);
  vhd_image *child = create_file(spath("cc.vhd"), VHD_TYPE_DIFFERENCING, 0, 0, "pp.vhd");
  cr_assert_eq(vhd_get_info(child, &cinfo), 0);
  cr_assert_eq(cinfo.type, VHD_TYPE_DIFFERENCING);
  cr_assert_eq(memcmp(cinfo.parent_id, pinfo.id, 16), 0);
  cr_assert_str_eq(cinfo.parent_hint, ".\\pp.vhd");
  cr_assert_not_null(cinfo.parent_path);
  cr_assert_str_eq(cinfo.creator, "win 10.0 (Wi2k)");
  cr_assert_eq(cinfo.total_blocks, 2u);
  cr_assert_eq(cinfo.allocated_blocks, 0u);
  cr_assert_not_null(vhd_get_parent(child));
  cr_assert_eq(vhd_close(child), 0);
}

/* --- Create ------------------------------------------------------------------ */

Test(vhd_rw, create_sizes)
{
  vhd_io *io;
  struct vhd_info info;
  /* Exact size, rounded up to a sector; geometry from the algorithm. */
  vhd_image *img = create_mem(VHD_TYPE_DYNAMIC, 10 * MiB + 1, 0, &io);
  cr_assert_eq(vhd_get_info(img, &info), 0);
  cr_assert_eq(info.virtual_size, 10 * MiB + 512);
  cr_assert_str_eq(info.creator, "win 10.0 (Wi2k)");
  cr_assert_eq(info.block_size, 2 * MiB);
  cr_assert_eq(info.total_blocks, 6u);
  cr_assert_eq(info.cylinders, 301);
  vhd_close(img);

  /* Virtual PC compatible: rounded up to a CHS product, creator "vpc ". */
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.size = 1000 * MiB;
  p.flags = VHD_CREATE_CHS_ROUND;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "vpc.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_get_info(img, &info), 0);
  uint64_t chs = (uint64_t)info.cylinders * info.heads * info.sectors_per_track * 512;
  cr_assert_eq(info.virtual_size, chs);
  cr_assert_geq(info.virtual_size, 1000 * MiB);
  cr_assert_lt(info.virtual_size, 1000 * MiB + 16 * 255 * 512);
  cr_assert_eq(strncmp(info.creator, "vpc ", 4), 0, "%s", info.creator);
  vhd_close(img);

  /* Fixed: data area plus footer, nothing else. */
  img = create_mem(VHD_TYPE_FIXED, 3 * MiB, 0, &io);
  cr_assert_eq(mem_size(io), 3 * MiB + 512);
  cr_assert_eq(vhd_get_info(img, &info), 0);
  cr_assert_eq(info.type, VHD_TYPE_FIXED);
  cr_assert_eq(info.block_size, 0u);
  vhd_close(img);
}

Test(vhd_rw, create_refuses_bad_parameters)
{
  struct vhd_create_params p;
  vhd_io *io;
  vhd_image *img;
  vhd_create_params_init(&p);
  p.size = 2041ull << 30;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "big.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), -EFBIG);
  cr_assert_not_null(strstr(vhd_last_error(), "2040 GiB"), "%s", vhd_last_error());
  p.size = 2040ull << 30;
  p.type = VHD_TYPE_FIXED;
  p.size += 512;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "big-fixed.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), -EFBIG);

  p.type = VHD_TYPE_DYNAMIC;
  p.size = 8 * MiB;
  p.block_size = 512 * MiB;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "huge-blocks.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), -EINVAL);
  cr_assert_not_null(strstr(vhd_last_error(), "block size"), "%s", vhd_last_error());
  p.block_size = 256;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "tiny-blocks.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), -EINVAL);

  /* The largest allowed dynamic disk creates (its BAT is 4 MiB). */
  p.size = 2040ull << 30;
  p.block_size = 0;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "max.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  uint8_t buf[4096];
  memset(buf, 9, sizeof buf);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, (2040ull << 30) - 4096), 0);
  cr_assert_eq(vhd_pread(img, buf, sizeof buf, (2040ull << 30) - 8192), 0);
  for (int i = 0; i < 4096; i++)
    cr_assert_eq(buf[i], 0);
  cr_assert_eq(vhd_close(img), 0);
}

/* A fixed disk maps holes of the host file as zeros. */
Test(vhd_rw, fixed_block_status, .init = setup, .fini = teardown)
{
  vhd_image *img = create_file(spath("fixed.vhd"), VHD_TYPE_FIXED, 8 * MiB, 0, NULL);
  uint8_t buf[4096];
  memset(buf, 1, sizeof buf);
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 4 * MiB), 0);
  cr_assert_eq(vhd_flush(img), 0);
  unsigned st;
  uint64_t run;
  int layer;
  cr_assert_eq(vhd_block_status(img, 4 * MiB, 4096, &st, &run, &layer), 0);
  cr_assert_eq(st, VHD_STATUS_DATA);
  cr_assert_eq(vhd_block_status(img, 0, 8 * MiB, &st, &run, &layer), 0);
  /* On file systems with SEEK_HOLE the start is a hole; without, data. */
  cr_assert(st == VHD_STATUS_ZERO || st == VHD_STATUS_DATA);
  if (st == VHD_STATUS_ZERO)
    cr_assert_leq(run, 4 * MiB);
  cr_assert_eq(vhd_close(img), 0);
}

/* --- Damaged but usable footers ---------------------------------------------- */

/* A dynamic image as bytes, with a pattern in block 0. */
static void *pattern_image(size_t *len, enum vhd_disk_type type, uint8_t **pattern)
{
  vhd_io *io;
  vhd_image *img = create_mem(type, 4 * MiB, 0, &io);
  uint8_t *pat = calloc(1, 4 * MiB);
  for (size_t i = 0; i < MiB; i++)
    pat[i] = (uint8_t)(i % 253 + 1);
  cr_assert_eq(vhd_pwrite(img, pat, MiB, 0), 0);
  cr_assert_eq(vhd_flush(img), 0);
  void *data;
  cr_assert_eq(vhd_io_memory_contents(io, &data, len), 0);
  cr_assert_eq(vhd_close(img), 0);
  *pattern = pat;
  return data;
}

static void reopen_and_compare(const void *data, size_t len, const uint8_t *model, unsigned flags,
                               vhd_image **out, vhd_io **io_out)
{
  vhd_io *io;
  vhd_image *img;
  cr_assert_eq(vhd_io_new_memory(data, len, "damaged.vhd",
                                 (flags & VHD_OPEN_RDWR) ? VHD_IO_RDWR : VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, flags, &img), 0, "%s", vhd_last_error());
  compare_all(img, model, 4 * MiB, "damaged image");
  *out = img;
  if (io_out)
    *io_out = io;
}

/* Images from before Virtual PC 2004 end with a 511-byte footer. */
Test(vhd_rw, short_footer)
{
  size_t len;
  uint8_t *pat;
  for (int type = VHD_TYPE_FIXED; type <= VHD_TYPE_DYNAMIC; type++) {
    void *data = pattern_image(&len, (enum vhd_disk_type)type, &pat);
    vhd_image *img;
    vhd_io *io;
    reopen_and_compare(data, len - 1, pat, VHD_OPEN_RDWR, &img, &io);
    /* Writing (a new block for the dynamic disk) keeps the image valid. */
    memset(pat + 3 * MiB, 0x99, 4096);
    cr_assert_eq(vhd_pwrite(img, pat + 3 * MiB, 4096, 3 * MiB), 0);
    cr_assert_eq(vhd_flush(img), 0);
    void *after;
    size_t after_len;
    cr_assert_eq(vhd_io_memory_contents(io, &after, &after_len), 0);
    cr_assert_eq(vhd_close(img), 0);
    cr_assert(after_len % 512 == 0 || after_len % 512 == 511);
    reopen_and_compare(after, after_len, pat, 0, &img, NULL);
    vhd_close(img);
    free(after);
    free(data);
    free(pat);
  }
}

/* The last sector lost: the copy at offset 0 is used (with a warning),
 * and the first flush after a change puts a footer back at the end. */
Test(vhd_rw, missing_footer_uses_copy)
{
  size_t len;
  uint8_t *pat;
  uint8_t *data = pattern_image(&len, VHD_TYPE_DYNAMIC, &pat);
  memset(data + len - 512, 0, 512);
  vhd_image *img;
  vhd_io *io;
  reopen_and_compare(data, len, pat, 0, &img, NULL);
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  cr_assert_geq(info.warnings, 1u);
  vhd_close(img);

  struct vhd_check_result res;
  cr_assert_eq(vhd_io_new_memory(data, len, "nofooter.vhd", VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_check_io(io, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions, 0u);
  cr_assert_geq(res.warnings, 1u);
  vhd_io_close(io);

  reopen_and_compare(data, len, pat, VHD_OPEN_RDWR, &img, &io);
  memset(pat + 2 * MiB + 512, 0x44, 512);
  cr_assert_eq(vhd_pwrite(img, pat + 2 * MiB + 512, 512, 2 * MiB + 512), 0);
  cr_assert_eq(vhd_flush(img), 0);
  void *after;
  size_t after_len;
  cr_assert_eq(vhd_io_memory_contents(io, &after, &after_len), 0);
  cr_assert_eq(vhd_close(img), 0);
  cr_assert_eq(memcmp((uint8_t *)after + after_len - 512, "conectix", 8), 0);
  cr_assert_eq(vhd_io_new_memory(after, after_len, "repaired.vhd", VHD_IO_RDONLY, &io), 0);
  expect_clean(io, "repaired");
  vhd_io_close(io);
  reopen_and_compare(after, after_len, pat, 0, &img, NULL);
  vhd_close(img);
  free(after);
  free(data);
  free(pat);
}

/* A zeroed footer copy at offset 0 is only a warning (the footer at the
 * end is authoritative) and is rewritten once the image changes. */
Test(vhd_rw, damaged_footer_copy)
{
  size_t len;
  uint8_t *pat;
  uint8_t *data = pattern_image(&len, VHD_TYPE_DYNAMIC, &pat);
  memset(data, 0, 512);
  vhd_image *img;
  vhd_io *io;
  reopen_and_compare(data, len, pat, VHD_OPEN_RDWR, &img, &io);
  memset(pat + 3 * MiB, 0x21, 512);
  cr_assert_eq(vhd_pwrite(img, pat + 3 * MiB, 512, 3 * MiB), 0);
  cr_assert_eq(vhd_flush(img), 0);
  void *after;
  size_t after_len;
  cr_assert_eq(vhd_io_memory_contents(io, &after, &after_len), 0);
  cr_assert_eq(vhd_close(img), 0);
  cr_assert_eq(memcmp(after, (uint8_t *)after + after_len - 512, 512), 0,
               "the copy at offset 0 was not rewritten");
  cr_assert_eq(vhd_io_new_memory(after, after_len, "copy-fixed.vhd", VHD_IO_RDONLY, &io), 0);
  expect_clean(io, "copy rewritten");
  vhd_io_close(io);
  free(after);
  free(data);
  free(pat);
}

/* Under the shared lock the driver writes into blocks already allocated
 * and asks for the exclusive lock only to allocate. It used to answer
 * "exclusive" for every write (its "can write here" was the same value as
 * WRITE_NEEDS_EXCLUSIVE), so every write of a dynamic VHD through the
 * nbdkit plugin was serialized behind the image's write lock. */
Test(vhd_rw, shared_lock_writes_in_place)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHD;
  p.size = 16u << 20;
  vhd_io *io;
  vhd_image *img;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "shared.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  uint8_t buf[4096], rb[4096];
  memset(buf, 0x42, sizeof buf);
  cr_assert_eq(img->drv->write(img, buf, sizeof buf, 0, false), WRITE_NEEDS_EXCLUSIVE,
               "an allocating write went ahead under the shared lock");
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 0), 0);
  memset(buf, 0x43, sizeof buf);
  cr_assert_eq(img->drv->write(img, buf, sizeof buf, 8192, false), 0,
               "a write into an allocated block needed the exclusive lock");
  cr_assert_eq(vhd_pread(img, rb, sizeof rb, 8192), 0);
  cr_assert_eq(rb[0], 0x43);
  cr_assert_eq(img->drv->write(img, buf, sizeof buf, 4u << 20, false), WRITE_NEEDS_EXCLUSIVE);
  cr_assert_eq(vhd_close(img), 0);
}
