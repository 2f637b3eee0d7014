/* SPDX-License-Identifier: BSD-3-Clause */
/* random-write-bench: random 4 KiB writes that allocate into a fresh
 * dynamic image, through libvhd, with a pattern qemu-io can replay exactly.
 *
 *   random-write-bench create [-f vhd|vhdx] [-b BLOCK] [-s SIZE] IMAGE
 *   random-write-bench script [-n N] [-S SEED] [-s SIZE]  > cmds.txt
 *   random-write-bench run    [-n N] [-S SEED] [-s SIZE] IMAGE
 *
 * `script` prints the same N writes as qemu-io commands (`write -q -P 0xab
 * OFF 4k`, then one `flush`); `run` does them with vhd_pwrite and one
 * vhd_flush, then closes the image. Both draw the offsets from the same
 * generator, so given the same -n/-S/-s the two tools write the same bytes
 * to the same places in the same order, and the resulting images must
 * compare identical (the benchmark script checks that with qemu-img
 * compare). `run` times itself (open, writes, flush+close) and prints IOPS;
 * the script also times the whole process from outside, the same way it
 * times qemu-io, which is the figure compared.
 *
 * Offsets are 4 KiB aligned and uniform over the disk, drawn with
 * replacement (a few repeat; both tools see the same repeats). */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vhd.h"

#define WRITE_SIZE 4096u
#define PATTERN 0xab

struct opts {
  uint64_t count;
  uint64_t seed;
  uint64_t size;
  uint64_t block_size;
  enum vhd_format format;
};

/* splitmix64: tiny, well mixed, and trivially reimplemented elsewhere if
 * anyone wants to replay the pattern without this program. */
static uint64_t next_random(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Offset of write number i, drawn in order from one generator. The modulo
 * bias over at most 2^52 slots is below 2^-11 and the same for both tools. */
static uint64_t next_offset(uint64_t *state, uint64_t size)
{
  return next_random(state) % (size / WRITE_SIZE) * WRITE_SIZE;
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int parse_u64(const char *s, uint64_t *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s)
    return -1;
  uint64_t mult = 1;
  switch (*end) {
  case 'k': case 'K': mult = 1ull << 10; end++; break;
  case 'm': case 'M': mult = 1ull << 20; end++; break;
  case 'g': case 'G': mult = 1ull << 30; end++; break;
  }
  if (*end || (v && mult > UINT64_MAX / v))
    return -1;
  *out = v * mult;
  return 0;
}

static void usage(FILE *f)
{
  fprintf(f,
          "usage: random-write-bench create [-f vhd|vhdx] [-b BLOCK] [-s SIZE] IMAGE\n"
          "       random-write-bench script [-n N] [-S SEED] [-s SIZE]\n"
          "       random-write-bench run    [-n N] [-S SEED] [-s SIZE] IMAGE\n"
          "defaults: -n 5000 -S 20240601 -s 2G -f vhd -b 0 (format default)\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
  int c;
  while ((c = getopt(argc, argv, "n:S:s:b:f:h")) != -1) {
    uint64_t *target = NULL;
    switch (c) {
    case 'n': target = &o->count; break;
    case 'S': target = &o->seed; break;
    case 's': target = &o->size; break;
    case 'b': target = &o->block_size; break;
    case 'f':
      if (strcmp(optarg, "vhd") == 0)
        o->format = VHD_FORMAT_VHD;
      else if (strcmp(optarg, "vhdx") == 0)
        o->format = VHD_FORMAT_VHDX;
      else {
        fprintf(stderr, "random-write-bench: -f takes vhd or vhdx, not '%s'\n", optarg);
        return -1;
      }
      continue;
    case 'h':
      usage(stdout);
      exit(0);
    default:
      usage(stderr);
      return -1;
    }
    if (parse_u64(optarg, target) < 0) {
      fprintf(stderr, "random-write-bench: bad number '%s' for -%c\n", optarg, c);
      return -1;
    }
  }
  if (o->size < WRITE_SIZE || o->size % WRITE_SIZE) {
    fprintf(stderr, "random-write-bench: -s must be a positive multiple of 4 KiB\n");
    return -1;
  }
  if (o->block_size > UINT32_MAX) {
    fprintf(stderr, "random-write-bench: -b is too large\n");
    return -1;
  }
  return 0;
}

static int do_create(const struct opts *o, const char *path)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = o->format;
  p.type = VHD_TYPE_DYNAMIC;
  p.size = o->size;
  p.block_size = (uint32_t)o->block_size;
  p.flags = VHD_CREATE_OVERWRITE;
  if (vhd_create(path, &p, NULL) < 0) {
    fprintf(stderr, "random-write-bench: %s\n", vhd_last_error());
    return 1;
  }
  return 0;
}

static int do_script(const struct opts *o)
{
  uint64_t state = o->seed;
  for (uint64_t i = 0; i < o->count; i++)
    printf("write -q -P 0x%x %" PRIu64 " 4k\n", PATTERN, next_offset(&state, o->size));
  printf("flush\n");
  return fflush(stdout) == 0 ? 0 : 1;
}

static int do_run(const struct opts *o, const char *path)
{
  static unsigned char buf[WRITE_SIZE] __attribute__((aligned(4096)));
  memset(buf, PATTERN, sizeof buf);

  double t0 = now_ms();
  vhd_image *img;
  if (vhd_open(path, VHD_OPEN_RDWR, &img) < 0) {
    fprintf(stderr, "random-write-bench: %s\n", vhd_last_error());
    return 1;
  }
  struct vhd_info info;
  if (vhd_get_info(img, &info) < 0 || info.virtual_size < o->size) {
    fprintf(stderr, "random-write-bench: %s: virtual size smaller than -s %" PRIu64 "\n",
            path, o->size);
    vhd_close(img);
    return 1;
  }
  double t1 = now_ms();
  uint64_t state = o->seed;
  for (uint64_t i = 0; i < o->count; i++) {
    uint64_t off = next_offset(&state, o->size);
    if (vhd_pwrite(img, buf, sizeof buf, off) < 0) {
      fprintf(stderr, "random-write-bench: write %" PRIu64 " at %" PRIu64 ": %s\n", i, off,
              vhd_last_error());
      vhd_close(img);
      return 1;
    }
  }
  double t2 = now_ms();
  int r = vhd_flush(img);
  if (r < 0)
    fprintf(stderr, "random-write-bench: flush: %s\n", vhd_last_error());
  int r2 = vhd_close(img);
  if (r == 0 && r2 < 0) {
    r = r2;
    fprintf(stderr, "random-write-bench: close: %s\n", vhd_last_error());
  }
  double t3 = now_ms();
  if (r < 0)
    return 1;
  double total = t3 - t0;
  printf("libvhd: %" PRIu64 " writes: open %.1f ms, writes %.1f ms, flush+close %.1f ms, "
         "total %.1f ms = %.0f IOPS\n",
         o->count, t1 - t0, t2 - t1, t3 - t2, total,
         total > 0 ? (double)o->count * 1e3 / total : 0.0);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  struct opts o = {5000, 20240601, 2ull << 30, 0, VHD_FORMAT_VHD};
  if (parse_opts(argc - 1, argv + 1, &o) < 0)
    return 2;
  int rest = argc - 1 - optind;
  char **args = argv + 1 + optind;
  if (strcmp(cmd, "script") == 0 && rest == 0)
    return do_script(&o);
  if (strcmp(cmd, "create") == 0 && rest == 1)
    return do_create(&o, args[0]);
  if (strcmp(cmd, "run") == 0 && rest == 1)
    return do_run(&o, args[0]);
  usage(stderr);
  return 2;
}
