/* SPDX-License-Identifier: BSD-3-Clause */
/* vhd_convert's copy (lib/ops/copy_disk.c): two workers, the caller's
 * thread and a helper, share the work, reads are clipped to the data runs block
 * status reports, and zeros are never written. Checked against an
 * in-memory model of the source: every output format reads back the model's
 * bytes, holes stay holes, a read error in either worker reaches the caller
 * with its message, a cancel removes the output, and progress ends at the
 * total. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
/* Not a multiple of the 1 MiB copy piece, nor of the 64 KiB zero grain. */
#define SIZE (5 * MiB + 3 * 512)
#define GRAIN (4 * KiB)   /* the model's hole map granularity */

/* The source: bytes in memory, a map of which 4 KiB units are host holes
 * (reported by find_data), and an optional read fault. Both workers read it
 * at once: the counters are under a lock. */
struct source {
  pthread_mutex_t lock;
  uint8_t *data;
  bool hole[SIZE / GRAIN + 1];
  uint64_t bytes_read;
  uint64_t fail_after;   /* fail the read that goes past this many bytes; 0 = never */
  uint64_t read_in_holes;
};

static int src_pread(void *o, void *buf, size_t n, uint64_t off)
{
  struct source *s = o;
  pthread_mutex_lock(&s->lock);
  bool fail = s->fail_after && s->bytes_read + n > s->fail_after;
  if (!fail) {
    s->bytes_read += n;
    for (uint64_t u = off / GRAIN; u * GRAIN < off + n && u <= SIZE / GRAIN; u++)
      if (s->hole[u])
        s->read_in_holes++;
  }
  pthread_mutex_unlock(&s->lock);
  if (fail)
    return -EIO;
  memcpy(buf, s->data + off, n);
  return 0;
}

static int src_size(void *o, uint64_t *size) { (void)o; *size = SIZE; return 0; }

static int src_find_data(void *o, uint64_t off, uint64_t *data, uint64_t *hole)
{
  struct source *s = o;
  uint64_t u = off / GRAIN;
  while (u * GRAIN < SIZE && s->hole[u])
    u++;
  *data = u * GRAIN > off ? u * GRAIN : off;
  if (*data >= SIZE) {
    *data = *hole = SIZE;
    return 0;
  }
  while (u * GRAIN < SIZE && !s->hole[u])
    u++;
  *hole = u * GRAIN < SIZE ? u * GRAIN : SIZE;
  return 0;
}

static void src_close(void *o) { (void)o; }

static const struct vhd_io_ops source_ops = {
  .pread = src_pread, .get_size = src_size, .find_data = src_find_data, .close = src_close,
};

static struct source model;
static char dir[64];

static void fill(uint64_t off, uint64_t len, unsigned seed)
{
  for (uint64_t i = 0; i < len; i++)
    model.data[off + i] = (uint8_t)((off + i) * 131 + seed * 7 + 1) | 1;
}

/* Data at odd places (across 1 MiB pieces and 64 KiB grains), a stretch of
 * zeros the host stores as data, host holes, and data in the last partial
 * piece. */
static void make_model(void)
{
  memset(&model, 0, sizeof model);
  pthread_mutex_init(&model.lock, NULL);
  model.data = calloc(1, SIZE);
  cr_assert_not_null(model.data);
  fill(512, 3000, 1);
  fill(MiB - 4096, 8192, 2);            /* straddles the first piece boundary */
  fill(2 * MiB + 65 * KiB, 200 * KiB, 3);
  fill(4 * MiB + 512, 512, 4);
  fill(SIZE - 1024, 1024, 5);           /* the tail */
  /* Holes: every 4 KiB unit that is all zeros, except [3 MiB, 4 MiB): zeros
   * stored as data, which the copy must read, see and not write. */
  for (uint64_t u = 0; u * GRAIN < SIZE; u++) {
    uint64_t off = u * GRAIN, n = SIZE - off < GRAIN ? SIZE - off : GRAIN;
    bool zero = true;
    for (uint64_t i = 0; i < n && zero; i++)
      zero = model.data[off + i] == 0;
    model.hole[u] = zero && !(off >= 3 * MiB && off < 4 * MiB);
  }
}

static void setup(void)
{
  make_model();
  snprintf(dir, sizeof dir, "%s/convcopyXXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  /* glibc's fortified system() must have its result used: a (void) cast
   * does not count. A scratch directory left behind fails the run. */
  cr_expect_eq(system(cmd), 0, "%s failed", cmd);
  free(model.data);
  pthread_mutex_destroy(&model.lock);
}

static vhd_image *open_source(void)
{
  vhd_io *io;
  vhd_image *img;
  cr_assert_eq(vhd_io_new(&source_ops, &model, "src.img", VHD_IO_RDONLY, &io), 0);
  cr_assert_eq(vhd_open_io(io, VHD_FORMAT_RAW, VHD_OPEN_RDONLY, &img), 0, "%s",
               vhd_last_error());
  return img;
}

struct progress_log {
  uint64_t last, total;
  unsigned calls, cancel_at;
  bool backwards;
};

static int progress(void *opaque, uint64_t done, uint64_t total)
{
  struct progress_log *p = opaque;
  if (done < p->last)
    p->backwards = true;
  p->last = done;
  p->total = total;
  return ++p->calls == p->cancel_at;
}

static void check_output(const char *path)
{
  vhd_image *img;
  cr_assert_eq(vhd_open(path, VHD_OPEN_RDONLY, &img), 0, "%s", vhd_last_error());
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  cr_assert_geq(info.virtual_size, SIZE);
  uint8_t *buf = malloc(info.virtual_size);
  cr_assert_not_null(buf);
  cr_assert_eq(vhd_pread(img, buf, info.virtual_size, 0), 0, "%s", vhd_last_error());
  cr_assert(memcmp(buf, model.data, SIZE) == 0, "%s differs from the source", path);
  for (uint64_t i = SIZE; i < info.virtual_size; i++)
    cr_assert_eq(buf[i], 0, "%s: byte %llu past the source's end is not zero", path,
                 (unsigned long long)i);
  free(buf);
  vhd_close(img);
}

static void convert_to(enum vhd_format fmt, enum vhd_disk_type type, uint32_t block,
                       uint32_t sector, unsigned flags, const char *name)
{
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = type;
  p.block_size = block;
  p.logical_sector_size = sector;
  struct progress_log log = { 0 };
  vhd_image *src = open_source();
  model.read_in_holes = 0;
  cr_assert_eq(vhd_convert(src, path, &p, flags, progress, &log), 0, "%s: %s", name, vhd_last_error());
  vhd_close(src);
  cr_assert_eq(model.read_in_holes, 0, "%s: %llu reads touched host holes", name,
               (unsigned long long)model.read_in_holes);
  cr_assert(!log.backwards, "%s: progress went backwards", name);
  cr_assert_eq(log.last, SIZE, "%s: progress ended at %llu", name,
               (unsigned long long)log.last);
  cr_assert_eq(log.total, SIZE);
  check_output(path);
}

TestSuite(convert_copy, .init = setup, .fini = teardown, .timeout = 60);

Test(convert_copy, every_format_reads_back_the_source)
{
  convert_to(VHD_FORMAT_RAW, VHD_TYPE_NONE, 0, 0, 0, "out.raw");
  convert_to(VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 0, 0, 0, "dyn.vhd");
  convert_to(VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 512 * KiB, 0, 0, "dyn512k.vhd");
  convert_to(VHD_FORMAT_VHD, VHD_TYPE_FIXED, 0, 0, VHD_CONVERT_SYNC, "fixed.vhd");
  convert_to(VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, MiB, 0, 0, "dyn.vhdx");
  convert_to(VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, 0, 4096, VHD_CONVERT_SYNC, "dyn4k.vhdx");
  convert_to(VHD_FORMAT_VHDX, VHD_TYPE_FIXED, 0, 0, 0, "fixed.vhdx");
  /* the same with the data written around the page cache (O_DIRECT) */
  convert_to(VHD_FORMAT_RAW, VHD_TYPE_NONE, 0, 0, VHD_CONVERT_DIRECT, "direct.raw");
  convert_to(VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 0, 0, VHD_CONVERT_DIRECT, "direct.vhd");
  convert_to(VHD_FORMAT_VHD, VHD_TYPE_FIXED, 0, 0, VHD_CONVERT_DIRECT, "direct-fixed.vhd");
  convert_to(VHD_FORMAT_VHDX, VHD_TYPE_DYNAMIC, 0, 0, VHD_CONVERT_DIRECT | VHD_CONVERT_SYNC,
             "direct.vhdx");
}

/* Zeros are never written: the raw output holds only the source's non-zero
 * 64 KiB grains, and a dynamic VHD only the blocks holding them. */
Test(convert_copy, zeros_stay_holes)
{
  convert_to(VHD_FORMAT_RAW, VHD_TYPE_NONE, 0, 0, 0, "out.raw");
  char path[128];
  snprintf(path, sizeof path, "%s/out.raw", dir);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq((uint64_t)st.st_size, SIZE);
  /* the data spots cover 9 grains of 64 KiB; the stored zeros none */
  cr_assert_leq((uint64_t)st.st_blocks * 512, 9 * 64 * KiB,
                "raw output allocates %llu bytes", (unsigned long long)st.st_blocks * 512);

  convert_to(VHD_FORMAT_VHD, VHD_TYPE_DYNAMIC, 512 * KiB, 0, 0, "dyn.vhd");
  vhd_image *img;
  snprintf(path, sizeof path, "%s/dyn.vhd", dir);
  cr_assert_eq(vhd_open(path, VHD_OPEN_RDONLY, &img), 0);
  struct vhd_info info;
  cr_assert_eq(vhd_get_info(img, &info), 0);
  /* blocks 0, 1 and 2 (the straddle), 4, 8 and the tail's 10 */
  cr_assert_eq(info.allocated_blocks, 6, "allocated %llu blocks",
               (unsigned long long)info.allocated_blocks);
  vhd_close(img);
}

Test(convert_copy, a_read_error_in_either_worker_reaches_the_caller)
{
  /* The copy reads about 1.2 MiB: fail it early, midway and late. */
  static const uint64_t fail_after[] = { 1, 5000, 12 * KiB, 100 * KiB, 600 * KiB, 1100 * KiB };
  for (size_t i = 0; i < sizeof fail_after / sizeof fail_after[0]; i++) {
    uint64_t after = fail_after[i];
    char path[128];
    snprintf(path, sizeof path, "%s/fail.vhdx", dir);
    struct vhd_create_params p;
    vhd_create_params_init(&p);
    p.format = VHD_FORMAT_VHDX;
    vhd_image *src = open_source();
    model.bytes_read = 0;
    model.fail_after = after;
    int r = vhd_convert(src, path, &p, 0, NULL, NULL);
    model.fail_after = 0;
    vhd_close(src);
    cr_assert_eq(r, -EIO, "failing after %llu bytes: %d", (unsigned long long)after, r);
    cr_assert_not_null(strstr(vhd_last_error(), "src.img"), "message: %s", vhd_last_error());
    cr_assert_eq(access(path, F_OK), -1, "the failed output is still there");
  }
}

Test(convert_copy, cancel_removes_the_output)
{
  char path[128];
  snprintf(path, sizeof path, "%s/cancel.raw", dir);
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = VHD_FORMAT_RAW;
  p.type = VHD_TYPE_NONE;
  struct progress_log log = { .cancel_at = 2 };
  vhd_image *src = open_source();
  int r = vhd_convert(src, path, &p, 0, progress, &log);
  vhd_close(src);
  cr_assert_eq(r, -ECANCELED);
  cr_assert_not_null(strstr(vhd_last_error(), "cancel.raw"), "message: %s", vhd_last_error());
  cr_assert_eq(log.calls, 2, "progress called %u times after the cancel", log.calls);
  cr_assert_eq(access(path, F_OK), -1, "the cancelled output is still there");
}
