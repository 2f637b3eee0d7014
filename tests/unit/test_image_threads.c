/* SPDX-License-Identifier: BSD-3-Clause */
/* One handle used from several threads at once: writers that allocate
 * blocks race with each other and with readers. The model is the bytes
 * each thread wrote into its own stripes; everything must read back
 * exactly, and the image must reopen with the same content. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhd.h"

#define THREADS 4
#define CHUNK 4096
#define DISK (64u << 20)
#define WRITES 400

/* A worker's own failure: the library's error slot is per thread, so the
 * message is copied here in the worker, where it was set. */
struct worker {
  vhd_image *img;
  unsigned id;
  int failed;          /* the -errno of the call that failed, or 1: wrong data */
  char what[64];       /* which call, at which chunk */
  char message[512];   /* vhd_last_error() in the worker */
};

static void worker_failed(struct worker *w, int r, const char *call, uint64_t chunk)
{
  w->failed = r ? r : 1;
  snprintf(w->what, sizeof w->what, "%s of chunk %llu", call, (unsigned long long)chunk);
  snprintf(w->message, sizeof w->message, "%s", r ? vhd_last_error() : "read back differs");
}

/* Chunk k of the disk belongs to thread k % THREADS; its content is a
 * function of (thread, chunk), so any reader can predict it. */
static void fill(uint8_t *buf, unsigned id, uint64_t chunk)
{
  for (unsigned i = 0; i < CHUNK; i++)
    buf[i] = (uint8_t)(id * 31 + chunk * 7 + i / 64 + 1);
}

static void *writer(void *arg)
{
  struct worker *w = arg;
  uint8_t buf[CHUNK], back[CHUNK];
  unsigned seed = w->id + 1;
  uint64_t chunks = DISK / CHUNK;
  for (int n = 0; n < WRITES && !w->failed; n++) {
    uint64_t chunk = (rand_r(&seed) % (chunks / THREADS)) * THREADS + w->id;
    fill(buf, w->id, chunk);
    int r;
    if ((r = vhd_pwrite(w->img, buf, CHUNK, chunk * CHUNK)) < 0)
      worker_failed(w, r, "write", chunk);
    else if ((r = vhd_pread(w->img, back, CHUNK, chunk * CHUNK)) < 0 || memcmp(buf, back, CHUNK))
      worker_failed(w, r, "read", chunk);
    else if (n % 50 == 0 && (r = vhd_flush(w->img)) < 0)
      worker_failed(w, r, "flush after", chunk);
  }
  return NULL;
}

static void check_content(vhd_image *img, int written[], const char *when)
{
  uint8_t buf[CHUNK], want[CHUNK], zeros[CHUNK] = { 0 };
  for (uint64_t chunk = 0; chunk < DISK / CHUNK; chunk++) {
    cr_assert_eq(vhd_pread(img, buf, CHUNK, chunk * CHUNK), 0, "%s", vhd_last_error());
    if (written[chunk]) {
      fill(want, (unsigned)(chunk % THREADS), chunk);
      cr_assert_arr_eq(buf, want, CHUNK, "%s: chunk %llu", when, (unsigned long long)chunk);
    } else {
      cr_assert_arr_eq(buf, zeros, CHUNK, "%s: chunk %llu should be zeros", when,
                       (unsigned long long)chunk);
    }
  }
}

static void run_for(enum vhd_format format)
{
  char path[] = "/tmp/libvhd-threads-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = format;
  p.size = DISK;
  p.block_size = format == VHD_FORMAT_VHDX ? 1u << 20 : 0;
  p.flags = VHD_CREATE_OVERWRITE;
  vhd_image *img;
  /* Both formats are supported: a failure here is one, never a skip. */
  int r = vhd_create(path, &p, &img);
  cr_assert_eq(r, 0, "create: %s", vhd_last_error());

  pthread_t t[THREADS];
  struct worker w[THREADS];
  for (unsigned i = 0; i < THREADS; i++) {
    w[i] = (struct worker){ .img = img, .id = i };
    cr_assert_eq(pthread_create(&t[i], NULL, writer, &w[i]), 0);
  }
  for (unsigned i = 0; i < THREADS; i++)
    cr_assert_eq(pthread_join(t[i], NULL), 0);
  for (unsigned i = 0; i < THREADS; i++)
    cr_assert_eq(w[i].failed, 0, "thread %u: %s failed (%d): %s", i, w[i].what, w[i].failed,
                 w[i].message);

  /* Replay the random choices to know which chunks were written. */
  static int written[DISK / CHUNK];
  memset(written, 0, sizeof written);
  for (unsigned id = 0; id < THREADS; id++) {
    unsigned seed = id + 1;
    for (int n = 0; n < WRITES; n++)
      written[(rand_r(&seed) % (DISK / CHUNK / THREADS)) * THREADS + id] = 1;
  }
  check_content(img, written, "same handle");
  cr_assert_eq(vhd_close(img), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_open(path, VHD_OPEN_RDONLY, &img), 0, "%s", vhd_last_error());
  check_content(img, written, "after reopening");
  vhd_close(img);
  unlink(path);
}

Test(threads, concurrent_writers_and_readers_vhd) { run_for(VHD_FORMAT_VHD); }
Test(threads, concurrent_writers_and_readers_vhdx) { run_for(VHD_FORMAT_VHDX); }
