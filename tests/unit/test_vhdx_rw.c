/* SPDX-License-Identifier: BSD-3-Clause */
/* VHDX reads and writes through the public API against an in-memory model:
 * random writes, zeros and trims of every alignment on dynamic and fixed
 * images with 512- and 4096-byte sectors and several block sizes, reopened
 * now and then; thin provisioning; trims that free blocks; writes under the
 * shared lock; differencing chains (files in a scratch directory); and a
 * file that only ever reaches the disk through the log. */
#define _GNU_SOURCE
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "test_vhdx_util.h"
#include "driver.h"
#include "image.h"

static char scratch[PATH_MAX];
static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}
static void setup(void)
{
  const char *t = getenv("TMPDIR");
  snprintf(scratch, sizeof scratch, "%s/vhdxrw.XXXXXX", t && *t ? t : "/tmp");
  cr_assert_not_null(mkdtemp(scratch));
}
static void teardown(void) { nftw(scratch, rm_one, 8, FTW_DEPTH | FTW_PHYS); }
static const char *spath(const char *name)
{
  static char buf[4][PATH_MAX + 64];
  static int n;
  char *b = buf[n++ % 4];
  snprintf(b, PATH_MAX + 64, "%s/%s", scratch, name);
  return b;
}

static uint64_t below(uint64_t n) { return n ? tv_rnd() % n : 0; }

/* A range for the next operation: mostly small, sometimes several blocks;
 * aligned to `align` bytes (1 = any). */
static void pick(uint64_t size, uint64_t align, uint64_t *off, uint64_t *len)
{
  uint64_t l = below(4) == 0 ? 1 + below(5 * MiB) : 1 + below(70000);
  if (l > size)
    l = size;
  uint64_t o = below(size - l + 1);
  if (align > 1) {
    o -= o % align;
    l = (l + align - 1) / align * align;
    if (o + l > size)
      l = size - o;
  }
  *off = o;
  *len = l;
}

struct model {
  uint64_t size;
  uint8_t *bytes;
};

static void expect_model(vhd_image *img, const struct model *m, const char *when)
{
  uint8_t *buf = malloc(4 * MiB);
  for (uint64_t off = 0; off < m->size; off += 4 * MiB) {
    uint64_t n = m->size - off < 4 * MiB ? m->size - off : 4 * MiB;
    cr_assert_eq(vhd_pread(img, buf, n, off), 0, "%s: %s", when, vhd_last_error());
    if (memcmp(buf, m->bytes + off, n) != 0) {
      uint64_t i = 0;
      while (buf[i] == m->bytes[off + i])
        i++;
      cr_assert_fail("%s: byte %llu reads %02x, model has %02x", when,
                     (unsigned long long)(off + i), buf[i], m->bytes[off + i]);
    }
  }
  free(buf);
}

/* Flush, take the bytes, close, open them again. */
static vhd_image *reopen(vhd_image *img, vhd_io **io)
{
  cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
  void *data;
  size_t len;
  cr_assert_eq(vhd_io_memory_contents(*io, &data, &len), 0);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  vhd_image *again;
  cr_assert_eq(tv_open(data, len, "model.vhdx", VHD_OPEN_RDWR, &again, io), 0, "reopen: %s",
               vhd_last_error());
  free(data);
  return again;
}

/* The sanitizer pass sets VHD_TEST_SMALL=1 (tests/CMakeLists.txt): there the
 * time goes into copying the whole image at every reopen, so the same
 * operations run on a disk half the size, as long as it still spans two
 * blocks or more and keeps its partial last block. */
static uint64_t model_size(uint64_t size, uint32_t block)
{
  const char *small = getenv("VHD_TEST_SMALL");
  if (!small || strcmp(small, "1") != 0)
    return size;
  uint64_t half = (size - size % block) / 2 / block * block;
  return half >= 2 * (uint64_t)block ? half + size % block : size;
}

static void random_model(enum vhd_disk_type type, uint64_t size, uint32_t block,
                         uint32_t lss, int ops, uint64_t seed)
{
  size = model_size(size, block);
  tv_rng_state = seed;
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.type = type;
  p.size = size;
  p.block_size = block;
  p.logical_sector_size = lss;
  vhd_io *io;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "model.vhdx", VHD_IO_RDWR, &io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "create: %s", vhd_last_error());
  struct model m = { size, calloc(1, size) };
  uint8_t *buf = malloc(5 * MiB + 70000);
  for (int i = 0; i < ops; i++) {
    uint64_t off, len;
    unsigned op = (unsigned)below(10);
    pick(size, below(2) ? lss : 1, &off, &len);
    if (op < 6) {
      bool zeros = below(5) == 0;
      for (uint64_t k = 0; k < len; k++)
        buf[k] = zeros ? 0 : (uint8_t)tv_rnd();
      cr_assert_eq(vhd_pwrite(img, buf, len, off), 0, "op %d write: %s", i, vhd_last_error());
      memcpy(m.bytes + off, buf, len);
    } else if (op < 8) {
      unsigned flags = below(2) ? VHD_ZERO_MAY_TRIM : 0;
      cr_assert_eq(vhd_zero(img, off, len, flags), 0, "op %d zero: %s", i, vhd_last_error());
      memset(m.bytes + off, 0, len);
    } else if (op == 8) {
      if (below(4) == 0)
        img = reopen(img, &io);
      else
        cr_assert_eq(vhd_flush(img), 0, "%s", vhd_last_error());
    } else {
      cr_assert_eq(vhd_pread(img, buf, len, off), 0, "op %d read: %s", i, vhd_last_error());
      cr_assert_eq(memcmp(buf, m.bytes + off, len), 0, "op %d: read of %llu bytes at %llu "
                   "differs from the model", i, (unsigned long long)len,
                   (unsigned long long)off);
    }
  }
  expect_model(img, &m, "before close");
  img = reopen(img, &io);
  expect_model(img, &m, "after reopen");
  /* The structures a check can see are sound. */
  void *data;
  size_t dlen;
  cr_assert_eq(vhd_io_memory_contents(io, &data, &dlen), 0);
  vhd_close(img);
  vhd_io *cio;
  cr_assert_eq(vhd_io_new_memory(data, dlen, "model.vhdx", VHD_IO_RDONLY, &cio), 0);
  struct vhd_check_result res;
  cr_assert_eq(vhd_check_io(cio, 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions, 0u);
  cr_assert_eq(res.log_needs_replay, 0);
  vhd_io_close(cio);
  free(data);
  free(buf);
  free(m.bytes);
}

Test(vhdx_rw, dynamic_512_1m) { random_model(VHD_TYPE_DYNAMIC, 40 * MiB + 3 * 512, MiB, 512, 300, 1); }
Test(vhdx_rw, dynamic_512_2m) { random_model(VHD_TYPE_DYNAMIC, 40 * MiB, 2 * MiB, 512, 300, 2); }
Test(vhdx_rw, dynamic_512_32m) { random_model(VHD_TYPE_DYNAMIC, 40 * MiB, 32 * MiB, 512, 200, 3); }
Test(vhdx_rw, dynamic_4k_1m) { random_model(VHD_TYPE_DYNAMIC, 40 * MiB + 4096, MiB, 4096, 300, 4); }
Test(vhdx_rw, dynamic_4k_8m) { random_model(VHD_TYPE_DYNAMIC, 40 * MiB, 8 * MiB, 4096, 300, 5); }
Test(vhdx_rw, fixed_512_2m) { random_model(VHD_TYPE_FIXED, 24 * MiB + 512, 2 * MiB, 512, 250, 6); }
Test(vhdx_rw, fixed_4k_1m) { random_model(VHD_TYPE_FIXED, 24 * MiB, MiB, 4096, 250, 7); }

/* --- allocation behaviour ------------------------------------------------- */

static vhd_image *new_dynamic(uint64_t size, uint32_t block, vhd_io **io)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = size;
  p.block_size = block;
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "alloc.vhdx", VHD_IO_RDWR, io), 0);
  vhd_image *img;
  cr_assert_eq(vhd_create_io(*io, &p, &img), 0, "%s", vhd_last_error());
  return img;
}

Test(vhdx_rw, zeros_into_unallocated_blocks_allocate_nothing)
{
  vhd_io *io;
  vhd_image *img = new_dynamic(16 * MiB, MiB, &io);
  void *before, *after;
  size_t blen, alen;
  cr_assert_eq(vhd_io_memory_contents(io, &before, &blen), 0);
  uint8_t *zeros = calloc(1, 3 * MiB);
  cr_assert_eq(vhd_pwrite(img, zeros, 3 * MiB, 5 * MiB + 512), 0);
  cr_assert_eq(vhd_zero(img, 9 * MiB, 2 * MiB + 4096, 0), 0);
  cr_assert_eq(vhd_flush(img), 0);
  cr_assert_eq(vhd_io_memory_contents(io, &after, &alen), 0);
  /* Not even the headers change: nothing visible happened. */
  cr_assert(alen == blen && memcmp(before, after, blen) == 0,
            "writing zeros into unallocated blocks changed the file");
  free(before);
  free(after);
  struct vhd_info info;
  vhd_get_info(img, &info);
  cr_assert_eq(info.allocated_blocks, 0u);
  free(zeros);
  vhd_close(img);
}

Test(vhdx_rw, trim_of_whole_blocks_frees_them)
{
  vhd_io *io;
  vhd_image *img = new_dynamic(16 * MiB, MiB, &io);
  uint8_t *data = malloc(4 * MiB);
  memset(data, 0x6B, 4 * MiB);
  cr_assert_eq(vhd_pwrite(img, data, 4 * MiB, 2 * MiB), 0);
  struct vhd_info info;
  vhd_get_info(img, &info);
  cr_assert_eq(info.allocated_blocks, 4u);
  /* Blocks 3 and 4 whole, half of block 5. */
  cr_assert_eq(vhd_discard(img, 3 * MiB, 2 * MiB + MiB / 2), 0, "%s", vhd_last_error());
  vhd_get_info(img, &info);
  cr_assert_eq(info.allocated_blocks, 2u, "trimmed blocks still allocated");
  unsigned st;
  uint64_t run;
  cr_assert_eq(vhd_block_status(img, 3 * MiB, 2 * MiB, &st, &run, NULL), 0);
  cr_assert_eq(st, VHD_STATUS_ZERO);
  cr_assert_eq(run, 2 * MiB);
  cr_assert_eq(vhd_block_status(img, 2 * MiB, MiB, &st, &run, NULL), 0);
  cr_assert_eq(st, VHD_STATUS_DATA);
  cr_assert_eq(vhd_pread(img, data, 4 * MiB, 2 * MiB), 0);
  for (size_t i = 0; i < 4 * MiB; i += 4096) {
    uint8_t want = (i >= MiB && i < 3 * MiB + MiB / 2) ? 0 : 0x6B;
    cr_assert_eq(data[i], want, "byte %zu after the trim", i);
  }
  /* VHD_ZERO_FAST on a partial block must not write zeros slowly. */
  cr_assert_eq(vhd_zero(img, 2 * MiB, 4096, VHD_ZERO_FAST), -ENOTSUP);
  free(data);
  vhd_close(img);
}

/* Under the shared lock the driver writes only into data already there. */
Test(vhdx_rw, shared_lock_writes_only_in_place)
{
  vhd_io *io;
  vhd_image *img = new_dynamic(16 * MiB, MiB, &io);
  uint8_t buf[4096];
  memset(buf, 0x42, sizeof buf);
  cr_assert_eq(img->drv->write(img, buf, sizeof buf, 0, false), WRITE_NEEDS_EXCLUSIVE,
               "an allocating write went ahead under the shared lock");
  cr_assert_eq(vhd_pwrite(img, buf, sizeof buf, 0), 0);
  memset(buf, 0x43, sizeof buf);
  cr_assert_eq(img->drv->write(img, buf, sizeof buf, 8192, false), 0,
               "a write into an allocated block needed the exclusive lock");
  cr_assert_eq(img->drv->write(img, buf, sizeof buf, MiB, false), WRITE_NEEDS_EXCLUSIVE);
  uint8_t rb[4096];
  cr_assert_eq(vhd_pread(img, rb, sizeof rb, 8192), 0);
  cr_assert_eq(rb[0], 0x43);
  vhd_close(img);
}

/* A flushed image taken mid-session (as a crash would leave it) opens and
 * holds what was flushed. */
Test(vhdx_rw, flushed_state_survives_without_close)
{
  vhd_io *io;
  vhd_image *img = new_dynamic(16 * MiB, MiB, &io);
  uint8_t *data = malloc(3 * MiB);
  for (size_t i = 0; i < 3 * MiB; i++)
    data[i] = (uint8_t)(i / 4096 + 1);
  cr_assert_eq(vhd_pwrite(img, data, 3 * MiB, 5 * MiB), 0);
  cr_assert_eq(vhd_flush(img), 0);
  void *snap;
  size_t len;
  cr_assert_eq(vhd_io_memory_contents(io, &snap, &len), 0);
  vhd_close(img);
  cr_assert_eq(tv_open(snap, len, "snap.vhdx", VHD_OPEN_RDONLY, &img, NULL), 0, "%s",
               vhd_last_error());
  uint8_t *rb = malloc(3 * MiB);
  cr_assert_eq(vhd_pread(img, rb, 3 * MiB, 5 * MiB), 0);
  cr_assert_eq(memcmp(rb, data, 3 * MiB), 0);
  struct vhd_info info;
  vhd_get_info(img, &info);
  cr_assert_eq(info.warnings, 0u, "a flushed image needs repair");
  vhd_close(img);
  free(rb);
  free(data);
  free(snap);
}

/* --- differencing --------------------------------------------------------- */

/* The parent: 24 MiB, block b pattern (b + 1) in the even blocks. */
static void make_parent(const char *path, uint32_t lss, uint8_t **model, uint64_t size)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.size = size;
  p.block_size = MiB;
  p.logical_sector_size = lss;
  vhd_image *img;
  vhd_io *io;
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDWR | VHD_IO_CREATE | VHD_IO_TRUNC, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &img), 0, "%s", vhd_last_error());
  *model = calloc(1, size);
  for (uint64_t b = 0; b < size / MiB; b += 2) {
    memset(*model + b * MiB, (int)(b + 1), MiB);
    cr_assert_eq(vhd_pwrite(img, *model + b * MiB, MiB, b * MiB), 0);
  }
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
}

static void differencing_model(uint32_t lss, uint32_t child_block, uint64_t seed)
{
  tv_rng_state = seed;
  uint64_t size = 24 * MiB;
  uint8_t *model;
  make_parent(spath("parent.vhdx"), lss, &model, size);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.type = VHD_TYPE_DIFFERENCING;
  p.parent = spath("parent.vhdx");
  p.block_size = child_block;
  p.logical_sector_size = lss;
  vhd_image *img;
  cr_assert_eq(vhd_create(spath("child.vhdx"), &p, &img), 0, "%s", vhd_last_error());
  struct vhd_info info;
  vhd_get_info(img, &info);
  cr_assert_eq(info.type, VHD_TYPE_DIFFERENCING);
  cr_assert_eq(info.virtual_size, size);
  struct model m = { size, model };
  expect_model(img, &m, "fresh child");
  uint8_t *buf = malloc(5 * MiB + 70000);
  for (int i = 0; i < 200; i++) {
    uint64_t off, len;
    unsigned op = (unsigned)below(10);
    pick(size, lss, &off, &len);
    if (op < 6) {
      bool zeros = below(5) == 0;
      for (uint64_t k = 0; k < len; k++)
        buf[k] = zeros ? 0 : (uint8_t)tv_rnd();
      cr_assert_eq(vhd_pwrite(img, buf, len, off), 0, "op %d: %s", i, vhd_last_error());
      memcpy(m.bytes + off, buf, len);
    } else if (op < 8) {
      cr_assert_eq(vhd_zero(img, off, len, below(2) ? VHD_ZERO_MAY_TRIM : 0), 0, "op %d: %s",
                   i, vhd_last_error());
      memset(m.bytes + off, 0, len);
    } else if (op == 8) {
      cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
      cr_assert_eq(vhd_open(spath("child.vhdx"), VHD_OPEN_RDWR, &img), 0, "%s",
                   vhd_last_error());
    } else {
      cr_assert_eq(vhd_pread(img, buf, len, off), 0);
      cr_assert_eq(memcmp(buf, m.bytes + off, len), 0, "op %d: read at %llu differs", i,
                   (unsigned long long)off);
    }
  }
  expect_model(img, &m, "child at the end");
  /* The parent is untouched: still its own pattern. */
  vhd_image *parent = vhd_get_parent(img);
  cr_assert_not_null(parent);
  uint8_t rb[512];
  cr_assert_eq(vhd_pread(parent, rb, sizeof rb, 2 * MiB), 0);
  cr_assert_eq(rb[0], 3);
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  struct vhd_check_result res;
  cr_assert_eq(vhd_check(spath("child.vhdx"), 0, NULL, NULL, &res), 0);
  cr_assert_eq(res.corruptions, 0u);
  free(buf);
  free(model);
}

Test(vhdx_rw, differencing_512, .init = setup, .fini = teardown) { differencing_model(512, 2 * MiB, 11); }
Test(vhdx_rw, differencing_512_1m, .init = setup, .fini = teardown) { differencing_model(512, MiB, 12); }
Test(vhdx_rw, differencing_4k, .init = setup, .fini = teardown) { differencing_model(4096, 2 * MiB, 13); }

/* Writing to the parent breaks the link: its data_write_guid changes and
 * the child no longer opens, with a message naming both files. */
Test(vhdx_rw, written_parent_orphans_its_child, .init = setup, .fini = teardown)
{
  uint8_t *model;
  make_parent(spath("p.vhdx"), 512, &model, 8 * MiB);
  free(model);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_VHDX;
  p.type = VHD_TYPE_DIFFERENCING;
  p.parent = spath("p.vhdx");
  cr_assert_eq(vhd_create(spath("c.vhdx"), &p, NULL), 0, "%s", vhd_last_error());
  vhd_image *img;
  cr_assert_eq(vhd_open(spath("c.vhdx"), VHD_OPEN_RDONLY, &img), 0, "%s", vhd_last_error());
  vhd_close(img);
  cr_assert_eq(vhd_open(spath("p.vhdx"), VHD_OPEN_RDWR, &img), 0);
  uint8_t b[512] = { 9 };
  cr_assert_eq(vhd_pwrite(img, b, sizeof b, 0), 0);
  cr_assert_eq(vhd_close(img), 0);
  int r = vhd_open(spath("c.vhdx"), VHD_OPEN_RDONLY, &img);
  cr_assert_lt(r, 0, "a child of a changed parent opened");
  cr_assert_not_null(strstr(vhd_last_error(), "data_write_guid"), "%s", vhd_last_error());
  cr_assert_not_null(strstr(vhd_last_error(), "c.vhdx"), "%s", vhd_last_error());
}
