/* SPDX-License-Identifier: BSD-3-Clause */
/* Backend contract and I/O faults (SQLite-style): a backend written by the
 * test (fakeio.h) fails the Nth read or the Nth change with -EIO, for every
 * N a whole scenario reaches. The library must pass the error up (never
 * report success after a failed write or flush), name the file, never crash
 * or leak (run under -DVHD_SANITIZE=ON), and close the backend exactly once. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "fakeio.h"
#include "io.h"
#include "vhd.h"

#define NAME "fault.img"

/* --- The backend contract as io.h wraps it ------------------------------- */

static int min_pread(void *o, void *buf, size_t n, uint64_t off)
{
  (void)o; (void)off;
  memset(buf, 0x5a, n);
  return 0;
}
static int min_size(void *o, uint64_t *s) { (void)o; *s = 4096; return 0; }
static void min_close(void *o) { (*(unsigned *)o)++; }

Test(io_contract, required_ops)
{
  unsigned closes = 0;
  struct vhd_io_ops ops = { .pread = min_pread, .get_size = min_size };
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_new(&ops, &closes, NAME, VHD_IO_RDONLY, &io), -EINVAL, "close missing");
  ops = (struct vhd_io_ops){ .get_size = min_size, .close = min_close };
  cr_assert_eq(vhd_io_new(&ops, &closes, NAME, VHD_IO_RDONLY, &io), -EINVAL, "pread missing");
  ops = (struct vhd_io_ops){ .pread = min_pread, .close = min_close };
  cr_assert_eq(vhd_io_new(&ops, &closes, NAME, VHD_IO_RDONLY, &io), -EINVAL, "get_size missing");
  cr_assert_eq(closes, 0, "a refused backend was closed: the caller still owns it");
}

Test(io_contract, minimal_backend)
{
  unsigned closes = 0;
  struct vhd_io_ops ops = { .pread = min_pread, .get_size = min_size, .close = min_close };
  vhd_io *io = NULL, *other = NULL;
  cr_assert_eq(vhd_io_new(&ops, &closes, NAME, VHD_IO_RDWR, &io), 0);
  /* No pwrite: writes are refused whatever the flags say. */
  cr_assert_lt(io_pwrite(io, "x", 1, 0), 0);
  cr_assert_not_null(strstr(vhd_last_error(), NAME));
  cr_assert_lt(io_set_size(io, 0), 0);
  cr_assert_eq(io_punch_hole(io, 0, 512), -ENOTSUP);
  uint64_t data = 1, hole = 1;
  cr_assert_eq(io_find_data(io, 100, &data, &hole), 0);
  cr_assert_eq(data, 100, "without find_data the rest is data");
  cr_assert_eq(hole, 4096);
  cr_assert_lt(io_open_related(io, "p.vhd", VHD_IO_RDONLY, &other), 0);
  cr_assert_not_null(strstr(vhd_last_error(), NAME));
  cr_assert_null(other);
  cr_assert_eq(io_flush(io), 0, "no flush op: nothing to flush");
  vhd_io_close(io);
  cr_assert_eq(closes, 1);
}

static int eio_pread(void *o, void *b, size_t n, uint64_t off)
{
  (void)o; (void)b; (void)n; (void)off;
  return -EIO;
}
static unsigned punch_calls;
static int nopunch(void *o, uint64_t off, uint64_t len)
{
  (void)o; (void)off; (void)len;
  punch_calls++;
  return -ENOTSUP;
}
static int ok_pwrite(void *o, const void *b, size_t n, uint64_t off)
{
  (void)o; (void)b; (void)n; (void)off;
  return 0;
}

Test(io_contract, errors_carry_the_name_and_punch_is_remembered)
{
  unsigned closes = 0;
  struct vhd_io_ops ops = { .pread = eio_pread, .pwrite = ok_pwrite, .get_size = min_size,
                            .punch_hole = nopunch, .close = min_close };
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_new(&ops, &closes, NAME, VHD_IO_RDWR, &io), 0);
  char buf[16];
  cr_assert_eq(io_pread(io, buf, sizeof buf, 12345), -EIO);
  cr_assert_eq(vhd_last_errno(), EIO);
  cr_assert_not_null(strstr(vhd_last_error(), NAME), "%s", vhd_last_error());
  cr_assert_not_null(strstr(vhd_last_error(), "12345"), "offset not named: %s", vhd_last_error());
  cr_assert_eq(io_punch_hole(io, 0, 512), -ENOTSUP);
  cr_assert_eq(io_punch_hole(io, 512, 512), -ENOTSUP);
  cr_assert_eq(punch_calls, 1, "the host was asked again after ENOTSUP");
  vhd_io_close(io);
}

Test(io_contract, failed_open_closes_the_backend_once)
{
  unsigned closes = 0;
  struct vhd_io_ops ops = { .pread = eio_pread, .get_size = min_size, .close = min_close };
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_new(&ops, &closes, NAME, VHD_IO_RDONLY, &io), 0);
  vhd_image *img = NULL;
  int r = vhd_open_io(io, VHD_FORMAT_VHD, VHD_OPEN_RDONLY, &img);
  cr_assert_lt(r, 0);
  cr_assert_not_null(strstr(vhd_last_error(), NAME), "%s", vhd_last_error());
  cr_assert_eq(closes, 1, "backend closed %u times", closes);
}

/* --- Fault injection through whole scenarios ------------------------------ */

#define MiB (1024u * 1024u)

/* Create a dynamic image, write into three blocks (allocating), flush, close.
 * Returns 0 if every call succeeded, else the first error. */
static int scenario_create(struct fake *f, enum vhd_format fmt)
{
  vhd_io *io = fake_io(f, NAME, VHD_IO_RDWR);
  cr_assert_not_null(io);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = VHD_TYPE_DYNAMIC;
  p.size = 8 * MiB;
  p.block_size = fmt == VHD_FORMAT_VHDX ? MiB : 512 * 1024;
  vhd_image *img = NULL;
  int r = vhd_create_io(io, &p, &img);
  if (r < 0)
    return r;
  static uint8_t buf[70000];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)(i * 13 + 5);
  uint64_t offs[] = { 0, 3 * MiB + 4095, 8 * MiB - sizeof buf };
  for (size_t i = 0; i < 3 && r == 0; i++)
    r = vhd_pwrite(img, buf, sizeof buf, offs[i]);
  if (r == 0)
    r = vhd_flush(img);
  int c = vhd_close(img);
  return r < 0 ? r : c;
}

static void faults_while_writing(enum vhd_format fmt)
{
  unsigned closes = 0;
  struct fake f = { .closes = &closes };
  int r = scenario_create(&f, fmt);
  cr_assert_eq(r, 0, "scenario fails without faults: %s", vhd_last_error());
  cr_assert_eq(closes, 1);
  unsigned total = f.changes;
  fake_destroy(&f);
  cr_assert_gt(total, 3u);

  for (unsigned n = 1; n <= total; n++) {
    closes = 0;
    f = (struct fake){ .closes = &closes, .fail_change_at = n };
    r = scenario_create(&f, fmt);
    cr_assert_eq(f.injected, 1u, "change %u of %u not reached", n, total);
    cr_assert_lt(r, 0, "change %u of %u (%s of %zu bytes at %llu) failed with EIO but every "
                 "call succeeded", n, total, f.fault_what, f.fault_len,
                 (unsigned long long)f.fault_offset);
    cr_assert_not_null(strstr(vhd_last_error(), NAME), "change %u: message \"%s\" does not name the file",
                       n, vhd_last_error());
    cr_assert_eq(closes, 1, "change %u: backend closed %u times", n, closes);
    fake_destroy(&f);
  }
}

/* Open the image in bytes, read the whole disk and its allocation. */
static int scenario_read(struct fake *f)
{
  vhd_io *io = fake_io(f, NAME, VHD_IO_RDONLY);
  cr_assert_not_null(io);
  vhd_image *img = NULL;
  int r = vhd_open_io(io, VHD_FORMAT_AUTO, VHD_OPEN_RDONLY, &img);
  if (r < 0)
    return r;
  struct vhd_info info;
  r = vhd_get_info(img, &info);
  static uint8_t buf[MiB];
  for (uint64_t off = 0; r == 0 && off < info.virtual_size; off += sizeof buf)
    r = vhd_pread(img, buf, sizeof buf, off);
  for (uint64_t off = 0; r == 0 && off < info.virtual_size; ) {
    unsigned st;
    uint64_t run;
    r = vhd_block_status(img, off, info.virtual_size - off, &st, &run, NULL);
    off += run;
  }
  vhd_close(img);
  return r;
}

static void faults_while_reading(enum vhd_format fmt)
{
  unsigned closes = 0;
  struct fake w = { .closes = &closes };
  cr_assert_eq(scenario_create(&w, fmt), 0, "%s", vhd_last_error());

  struct fake f = { .closes = &closes };
  cr_assert_eq(fake_resize(&f, w.size), 0);
  memcpy(f.data, w.data, w.size);
  cr_assert_eq(scenario_read(&f), 0, "%s", vhd_last_error());
  unsigned total = f.reads;
  cr_assert_gt(total, 2u);

  for (unsigned n = 1; n <= total; n++) {
    closes = 0;
    f.reads = 0;
    f.injected = 0;
    f.fail_read_at = n;
    int r = scenario_read(&f);
    cr_assert_eq(f.injected, 1u, "read %u of %u not reached", n, total);
    cr_assert_lt(r, 0, "read %u of %u (%zu bytes at %llu) failed with EIO but every call "
                 "succeeded", n, total, f.fault_len, (unsigned long long)f.fault_offset);
    cr_assert_not_null(strstr(vhd_last_error(), NAME), "read %u: message \"%s\" does not name the file",
                       n, vhd_last_error());
    cr_assert_eq(closes, 1, "read %u: backend closed %u times", n, closes);
  }
  fake_destroy(&f);
  fake_destroy(&w);
}

static void free_fakes(void) { fake_free_all(); }
TestSuite(io_faults, .fini = free_fakes);

Test(io_faults, vhd_writes) { faults_while_writing(VHD_FORMAT_VHD); }
Test(io_faults, vhd_reads) { faults_while_reading(VHD_FORMAT_VHD); }
Test(io_faults, vhdx_writes, .timeout = 120) { faults_while_writing(VHD_FORMAT_VHDX); }
Test(io_faults, vhdx_reads, .timeout = 120) { faults_while_reading(VHD_FORMAT_VHDX); }
