/* SPDX-License-Identifier: BSD-3-Clause */
/* One VHD used from several threads at once (the nbdkit plugin serves
 * parallel requests). Threads own interleaved 4 KiB stripes of the same
 * blocks, so they race to allocate blocks and to mark bitmap sectors,
 * while each checks its own data as it goes; at the end the whole disk is
 * compared with the merged model. Run it under the sanitizers (and, by
 * hand, ThreadSanitizer) to catch races. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define THREADS 4
#define STRIPE (4 * KiB)

static vhd_image *shared;
static uint64_t disk;
static uint8_t *model;
static char scratch[PATH_MAX];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}
static void setup(void)
{
  const char *t = getenv("TMPDIR");
  int n = snprintf(scratch, sizeof scratch, "%s/vhdthr.XXXXXX", t && *t ? t : "/tmp");
  cr_assert(n > 0 && (size_t)n < sizeof scratch);
  cr_assert_not_null(mkdtemp(scratch));
}
static void teardown(void) { nftw(scratch, rm_one, 8, FTW_DEPTH | FTW_PHYS); }

struct worker {
  unsigned id;
  uint64_t seed;
  int failures;
  char error[256];
};

static uint64_t next(uint64_t *s)
{
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void *work(void *arg)
{
  struct worker *w = arg;
  uint64_t stripes = disk / STRIPE;
  uint8_t buf[3 * STRIPE], back[3 * STRIPE];
  for (int op = 0; op < 400 && !w->failures; op++) {
    /* One of my stripes (stripe % THREADS == id), 1..3 sectors or all. */
    uint64_t s = next(&w->seed) % (stripes / THREADS) * THREADS + w->id;
    uint64_t off = s * STRIPE, len = STRIPE;
    if (next(&w->seed) % 2) {
      uint64_t first = next(&w->seed) % 8, n = 1 + next(&w->seed) % (8 - first);
      off += first * 512;
      len = n * 512;
    }
    for (uint64_t i = 0; i < len; i++)
      buf[i] = (uint8_t)(next(&w->seed) | 1);
    unsigned kind = (unsigned)(next(&w->seed) % 10);
    int r;
    if (kind == 0) {
      memset(buf, 0, len);
      r = vhd_pwrite(shared, buf, len, off);
    } else {
      r = vhd_pwrite(shared, buf, len, off);
    }
    if (r == 0)
      r = vhd_pread(shared, back, len, off);
    if (r < 0) {
      snprintf(w->error, sizeof w->error, "%s", vhd_last_error());
      w->failures++;
      break;
    }
    if (memcmp(back, buf, len) != 0) {
      snprintf(w->error, sizeof w->error, "stripe %llu reads back wrong", (unsigned long long)s);
      w->failures++;
    }
    memcpy(model + off, buf, len);   /* this thread's bytes only */
    /* Reads across other threads' stripes exercise the shared paths. */
    uint64_t any = next(&w->seed) % (disk - sizeof back);
    if (vhd_pread(shared, back, sizeof back, any) < 0) {
      snprintf(w->error, sizeof w->error, "%s", vhd_last_error());
      w->failures++;
    }
    if (op % 97 == 0 && vhd_flush(shared) < 0) {
      snprintf(w->error, sizeof w->error, "%s", vhd_last_error());
      w->failures++;
    }
  }
  return NULL;
}

static void hammer(void)
{
  pthread_t t[THREADS];
  struct worker w[THREADS];
  for (unsigned i = 0; i < THREADS; i++) {
    w[i] = (struct worker){ i, 0x9e3779b97f4a7c15ull * (i + 1), 0, "" };
    cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
  }
  for (unsigned i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    cr_assert_eq(w[i].failures, 0, "thread %u: %s", i, w[i].error);
  }
  uint8_t *got = malloc(disk);
  cr_assert_eq(vhd_pread(shared, got, disk, 0), 0);
  cr_assert(memcmp(got, model, disk) == 0, "the disk differs from the merged model");
  free(got);
}

Test(vhd_threads, dynamic)
{
  struct vhd_create_params p;
  vhd_io *io;
  vhd_create_params_init(&p);
  disk = p.size = 8 * MiB;
  p.block_size = 256 * KiB;
  model = calloc(1, disk);
  cr_assert_eq(vhd_io_new_memory(NULL, 0, "threads.vhd", VHD_IO_RDWR, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &shared), 0, "%s", vhd_last_error());
  hammer();
  cr_assert_eq(vhd_close(shared), 0);
  free(model);
}

Test(vhd_threads, differencing, .init = setup, .fini = teardown)
{
  struct vhd_create_params p;
  vhd_io *io;
  vhd_image *base;
  char path[PATH_MAX];
  vhd_create_params_init(&p);
  disk = p.size = 4 * MiB;
  p.block_size = 512 * KiB;
  model = malloc(disk);
  for (uint64_t i = 0; i < disk; i++)
    model[i] = (uint8_t)(i * 131 + 7);
  cr_assert_lt(snprintf(path, sizeof path, "%s/base.vhd", scratch), (int)sizeof path);
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDWR | VHD_IO_CREATE, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &base), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_pwrite(base, model, disk, 0), 0);
  cr_assert_eq(vhd_close(base), 0);

  cr_assert_lt(snprintf(path, sizeof path, "%s/top.vhd", scratch), (int)sizeof path);
  p.type = VHD_TYPE_DIFFERENCING;
  p.size = 0;
  p.parent = "base.vhd";
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDWR | VHD_IO_CREATE, &io), 0);
  cr_assert_eq(vhd_create_io(io, &p, &shared), 0, "%s", vhd_last_error());
  hammer();
  cr_assert_eq(vhd_close(shared), 0);

  /* Reopened, the bitmaps written at flush give the same disk. */
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_AUTO, 0, &shared), 0, "%s", vhd_last_error());
  uint8_t *got = malloc(disk);
  cr_assert_eq(vhd_pread(shared, got, disk, 0), 0);
  cr_assert(memcmp(got, model, disk) == 0, "reopened child differs");
  free(got);
  vhd_close(shared);
  free(model);
}
