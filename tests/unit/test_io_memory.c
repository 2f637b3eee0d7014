/* SPDX-License-Identifier: BSD-3-Clause */
/* The in-memory backend through the checked helpers the core uses (io.h)
 * and the public functions (vhd.h): contents, growth, zeros past the end,
 * read-only enforcement, and offsets at the edge of the 64-bit range. The
 * oracle is a plain byte array kept alongside. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "io.h"
#include "vhd.h"

static vhd_io *mem(const void *data, size_t size, unsigned flags)
{
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_new_memory(data, size, "mem.img", flags, &io), 0, "%s", vhd_last_error());
  cr_assert_not_null(io);
  return io;
}

static int all_zero(const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i])
      return 0;
  return 1;
}

Test(io_memory, starts_as_a_copy_and_has_its_name)
{
  uint8_t data[1000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i ^ 0x5a);
  vhd_io *io = mem(data, sizeof data, VHD_IO_RDWR);
  data[0] ^= 0xff;   /* the io owns a copy, not our buffer */
  cr_assert_str_eq(vhd_io_name(io), "mem.img");
  uint64_t size = 0;
  cr_assert_eq(io_get_size(io, &size), 0);
  cr_assert_eq(size, sizeof data);
  uint8_t got[1000];
  cr_assert_eq(io_pread(io, got, sizeof got, 0), 0);
  cr_assert_eq(got[0], (uint8_t)(0 ^ 0x5a));
  cr_assert_eq(memcmp(got + 1, data + 1, sizeof data - 1), 0);
  vhd_io_close(io);
}

Test(io_memory, empty_with_null_data)
{
  vhd_io *io = mem(NULL, 0, VHD_IO_RDWR);
  uint64_t size = 1;
  cr_assert_eq(io_get_size(io, &size), 0);
  cr_assert_eq(size, 0);
  void *p = NULL;
  size_t n = 99;
  cr_assert_eq(vhd_io_memory_contents(io, &p, &n), 0);
  cr_assert_eq(n, 0);
  free(p);
  vhd_io_close(io);
}

Test(io_memory, reads_past_end_are_zeros)
{
  uint8_t data[100];
  memset(data, 0xee, sizeof data);
  vhd_io *io = mem(data, sizeof data, VHD_IO_RDONLY);
  uint8_t got[300];
  memset(got, 0x11, sizeof got);
  cr_assert_eq(io_pread(io, got, sizeof got, 50), 0);
  for (size_t i = 0; i < 50; i++)
    cr_assert_eq(got[i], 0xee);
  cr_assert(all_zero(got + 50, 250));
  memset(got, 0x11, sizeof got);
  cr_assert_eq(io_pread(io, got, sizeof got, (uint64_t)1 << 40), 0);
  cr_assert(all_zero(got, sizeof got));
  vhd_io_close(io);
}

Test(io_memory, writes_grow_and_match_a_model)
{
  vhd_io *io = mem(NULL, 0, VHD_IO_RDWR);
  enum { N = 200000 };
  uint8_t *model = calloc(1, N);
  uint8_t buf[7000];
  unsigned seed = 12345;
  size_t end = 0;
  for (int k = 0; k < 300; k++) {
    seed = seed * 1103515245u + 12345u;
    size_t len = 1 + (seed >> 8) % sizeof buf;
    seed = seed * 1103515245u + 12345u;
    size_t off = (seed >> 4) % (N - len);
    for (size_t i = 0; i < len; i++)
      buf[i] = (uint8_t)(seed >> (i % 24));
    cr_assert_eq(io_pwrite(io, buf, len, off), 0, "%s", vhd_last_error());
    memcpy(model + off, buf, len);
    if (off + len > end)
      end = off + len;
  }
  void *p = NULL;
  size_t n = 0;
  cr_assert_eq(vhd_io_memory_contents(io, &p, &n), 0);
  cr_assert_eq(n, end);
  cr_assert_eq(memcmp(p, model, end), 0);
  free(p);
  free(model);
  vhd_io_close(io);
}

Test(io_memory, set_size_cuts_and_grows_with_zeros)
{
  uint8_t data[4096];
  memset(data, 0xab, sizeof data);
  vhd_io *io = mem(data, sizeof data, VHD_IO_RDWR);
  cr_assert_eq(io_set_size(io, 1000), 0);
  cr_assert_eq(io_set_size(io, 3000), 0);
  uint64_t size = 0;
  cr_assert_eq(io_get_size(io, &size), 0);
  cr_assert_eq(size, 3000);
  uint8_t got[3000];
  cr_assert_eq(io_pread(io, got, sizeof got, 0), 0);
  for (size_t i = 0; i < 1000; i++)
    cr_assert_eq(got[i], 0xab);
  cr_assert(all_zero(got + 1000, 2000), "bytes cut then regrown are not zeros");
  vhd_io_close(io);
}

Test(io_memory, punch_hole_reads_zeros)
{
  uint8_t data[8192];
  memset(data, 0x77, sizeof data);
  vhd_io *io = mem(data, sizeof data, VHD_IO_RDWR);
  int r = io_punch_hole(io, 1000, 5000);
  cr_assert(r == 0 || r == -ENOTSUP);
  if (r == 0) {
    uint8_t got[8192];
    cr_assert_eq(io_pread(io, got, sizeof got, 0), 0);
    cr_assert_eq(got[999], 0x77);
    cr_assert(all_zero(got + 1000, 5000));
    cr_assert_eq(got[6000], 0x77);
    uint64_t size = 0;
    cr_assert_eq(io_get_size(io, &size), 0);
    cr_assert_eq(size, sizeof data, "punching changed the size");
  }
  /* Past the end: nothing to do, never an overflow. */
  r = io_punch_hole(io, UINT64_MAX - 10, 100);
  cr_assert(r == 0 || r == -ENOTSUP || r == -EINVAL);
  vhd_io_close(io);
}

Test(io_memory, read_only_refuses_writes)
{
  uint8_t data[512];
  memset(data, 1, sizeof data);
  vhd_io *io = mem(data, sizeof data, VHD_IO_RDONLY);
  cr_assert_not(io_writable(io));
  int r = io_pwrite(io, "x", 1, 0);
  cr_assert_lt(r, 0);
  cr_assert_not_null(strstr(vhd_last_error(), "mem.img"), "%s", vhd_last_error());
  cr_assert_lt(io_set_size(io, 10), 0);
  uint8_t got[512];
  cr_assert_eq(io_pread(io, got, sizeof got, 0), 0);
  cr_assert_eq(memcmp(got, data, sizeof data), 0);
  vhd_io_close(io);
}

Test(io_memory, offsets_at_the_edge_of_64_bits)
{
  uint8_t data[64] = { 0 };
  vhd_io *io = mem(data, sizeof data, VHD_IO_RDWR);
  uint8_t buf[16];
  memset(buf, 0xcd, sizeof buf);
  /* offset + count overflows: an error naming the file, never a wild access. */
  int r = io_pread(io, buf, sizeof buf, UINT64_MAX - 4);
  cr_assert_lt(r, 0);
  cr_assert_not_null(strstr(vhd_last_error(), "mem.img"), "%s", vhd_last_error());
  r = io_pwrite(io, buf, sizeof buf, UINT64_MAX - 4);
  cr_assert_lt(r, 0, "write wrapping past 2^64 succeeded");
  cr_assert_not_null(strstr(vhd_last_error(), "mem.img"), "%s", vhd_last_error());
  /* Far beyond what memory can hold: refused, not attempted. */
  r = io_pwrite(io, buf, sizeof buf, (uint64_t)1 << 62);
  cr_assert_lt(r, 0);
  r = io_set_size(io, (uint64_t)1 << 62);
  cr_assert_lt(r, 0);
  uint64_t size = 0;
  cr_assert_eq(io_get_size(io, &size), 0);
  cr_assert_eq(size, sizeof data);
  vhd_io_close(io);
}

Test(io_memory, contents_refuses_other_backends)
{
  /* A regular file: the file backend refuses character devices. */
  char path[] = "/tmp/vhd_io_memory.XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDONLY, &io), 0, "%s", vhd_last_error());
  unlink(path);
  void *p = NULL;
  size_t n = 0;
  cr_assert_eq(vhd_io_memory_contents(io, &p, &n), -EINVAL);
  vhd_io_close(io);
  vhd_io_close(NULL);
}

Test(io_memory, no_related_files)
{
  vhd_io *io = mem(NULL, 0, VHD_IO_RDONLY), *other = NULL;
  int r = io_open_related(io, "parent.vhd", VHD_IO_RDONLY, &other);
  cr_assert_lt(r, 0);
  cr_assert_null(other);
  vhd_io_close(io);
}
