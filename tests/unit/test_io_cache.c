/* SPDX-License-Identifier: BSD-3-Clause */
/* lib/io/cache.c over the counting fake backend (fakeio.h): reads return
 * the file's bytes (the oracle is the fake's own array), each block is
 * fetched at most once while the cache holds it, writes go through and
 * later reads see them, reads past the end are zeros, memory is bounded
 * by the parameters, and bad parameters are refused with a message. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "fakeio.h"
#include "io.h"

#define BLOCK 4096u
#define FILE_SIZE (64u * BLOCK + 100u)   /* a partial last block */

static struct fake f;

static void fill(void)
{
  memset(&f, 0, sizeof f);
  cr_assert_eq(fake_resize(&f, FILE_SIZE), 0);
  srand(21);
  for (size_t i = 0; i < FILE_SIZE; i++)
    f.data[i] = (uint8_t)rand();
}

static void teardown(void)
{
  fake_destroy(&f);
  fake_free_all();
}

static vhd_io *cached(uint64_t capacity, unsigned flags)
{
  vhd_io *inner = fake_io(&f, "remote.img", flags), *io = NULL;
  cr_assert_not_null(inner);
  struct io_cache_params p = { capacity, BLOCK };
  cr_assert_eq(io_cache_wrap(inner, &p, &io), 0, "%s", vhd_last_error());
  return io;
}

TestSuite(io_cache, .init = fill, .fini = teardown);

Test(io_cache, random_reads_are_the_files_bytes_and_each_block_is_fetched_once)
{
  vhd_io *io = cached(128 * BLOCK, VHD_IO_RDONLY);   /* holds the whole file */
  uint8_t buf[3 * BLOCK];
  srand(7);
  for (int i = 0; i < 2000; i++) {
    size_t len = 1 + (size_t)rand() % sizeof buf;
    uint64_t off = (uint64_t)rand() % FILE_SIZE;
    if (off + len > FILE_SIZE)
      len = FILE_SIZE - off;
    cr_assert_eq(io_pread(io, buf, len, off), 0, "%s", vhd_last_error());
    cr_assert_eq(memcmp(buf, f.data + off, len), 0, "read of %zu at %llu", len,
                 (unsigned long long)off);
  }
  struct io_cache_stats st;
  io_cache_get_stats(io, &st);
  /* Never more fetches than blocks (65), whatever the read-ahead did. */
  cr_assert_leq(f.reads, 65u, "%u reads below for 2000 reads", f.reads);
  cr_assert_eq(st.fetches, f.reads);
  cr_assert_leq(st.fetched_bytes, 65ull * BLOCK);
  vhd_io_close(io);
}

Test(io_cache, a_small_cache_stays_correct_and_bounded)
{
  vhd_io *io = cached(4 * BLOCK, VHD_IO_RDONLY);   /* 4 blocks, fetches of 1 */
  uint8_t buf[BLOCK];
  srand(9);
  for (int i = 0; i < 500; i++) {
    uint64_t off = (uint64_t)rand() % (FILE_SIZE - BLOCK);
    cr_assert_eq(io_pread(io, buf, BLOCK, off), 0);
    cr_assert_eq(memcmp(buf, f.data + off, BLOCK), 0);
  }
  struct io_cache_stats st;
  io_cache_get_stats(io, &st);
  cr_assert_leq(st.fetched_bytes / st.fetches, (uint64_t)BLOCK,
                "a fetch may not exceed a quarter of a 4-block cache");
  vhd_io_close(io);
}

Test(io_cache, writes_go_through_and_are_read_back)
{
  vhd_io *io = cached(128 * BLOCK, VHD_IO_RDWR);
  uint8_t buf[2 * BLOCK], patch[BLOCK + 300];
  cr_assert_eq(io_pread(io, buf, sizeof buf, 10 * BLOCK), 0);   /* cached now */
  memset(patch, 0x5a, sizeof patch);
  cr_assert_eq(io_pwrite(io, patch, sizeof patch, 10 * BLOCK + 100), 0);
  cr_assert_eq(memcmp(f.data + 10 * BLOCK + 100, patch, sizeof patch), 0,
               "the write reached the file");
  unsigned reads = f.reads;
  cr_assert_eq(io_pread(io, buf, sizeof buf, 10 * BLOCK), 0);
  cr_assert_eq(f.reads, reads, "served from the cache");
  cr_assert_eq(memcmp(buf, f.data + 10 * BLOCK, sizeof buf), 0, "the cache has the write");
  vhd_io_close(io);
}

Test(io_cache, reads_past_the_end_are_zeros)
{
  vhd_io *io = cached(16 * BLOCK, VHD_IO_RDONLY);
  uint8_t buf[BLOCK];
  memset(buf, 0xff, sizeof buf);
  cr_assert_eq(io_pread(io, buf, sizeof buf, FILE_SIZE - 50), 0);
  cr_assert_eq(memcmp(buf, f.data + FILE_SIZE - 50, 50), 0);
  for (size_t i = 50; i < sizeof buf; i++)
    cr_assert_eq(buf[i], 0, "byte %zu past the end", i);
  memset(buf, 0xff, sizeof buf);
  cr_assert_eq(io_pread(io, buf, sizeof buf, FILE_SIZE + 10 * BLOCK), 0);
  for (size_t i = 0; i < sizeof buf; i++)
    cr_assert_eq(buf[i], 0);
  vhd_io_close(io);
}

Test(io_cache, bad_parameters_are_refused_naming_the_file)
{
  vhd_io *inner = fake_io(&f, "remote.img", VHD_IO_RDONLY), *io = NULL;
  struct io_cache_params odd = { 64 * 6000, 6000 };
  cr_assert_eq(io_cache_wrap(inner, &odd, &io), -EINVAL);
  cr_assert_not_null(strstr(vhd_last_error(), "remote.img"), "%s", vhd_last_error());
  struct io_cache_params one = { BLOCK, BLOCK };
  cr_assert_eq(io_cache_wrap(inner, &one, &io), -EINVAL);
  struct io_cache_params huge = { (uint64_t)BLOCK * (IO_CACHE_MAX_SLOTS + 1), BLOCK };
  cr_assert_eq(io_cache_wrap(inner, &huge, &io), -EINVAL);
  cr_assert_null(io);
  vhd_io_close(inner);
}
