/* What the mapper's host tests share (test_efi_extents.c,
 * test_efi_fsmap_ext.c): a scratch directory per test, deterministic file
 * content and volume read callbacks over an image file or memory.
 * Include after <criterion/criterion.h>. */
#ifndef VHD_TEST_FSMAP_TEST_UTIL_H
#define VHD_TEST_FSMAP_TEST_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char workdir[256];

static void make_workdir(void)
{
  const char *tmp = getenv("TMPDIR");
  snprintf(workdir, sizeof workdir, "%s/efi-fsmap-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  cr_assert_not_null(mkdtemp(workdir), "mkdtemp: %s", strerror(errno));
}

static void remove_workdir(void)
{
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", workdir);
  if (system(cmd) != 0)
    cr_log_warn("could not remove %s", workdir);
}

/* Deterministic file content, different per seed. */
static uint8_t *pattern(size_t size, unsigned seed)
{
  uint8_t *p = malloc(size ? size : 1);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (uint8_t)x;
  }
  return p;
}

/* Writes name (relative to workdir). */
static void write_file(const char *name, const uint8_t *data, size_t size)
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s", path);
  cr_assert_eq(fwrite(data, 1, size, f), size);
  fclose(f);
}

/* The volume: an image file from byte base on; reads are counted. */
struct vol_file {
  int fd;
  uint64_t base;
  unsigned reads;
};

static int read_cb(void *ctx, uint64_t off, void *buf, size_t len)
{
  struct vol_file *v = ctx;
  v->reads++;
  ssize_t n = pread(v->fd, buf, len, (off_t)(v->base + off));
  return n == (ssize_t)len ? 0 : -EIO;
}

/* A volume held in memory, for tests that change its bytes. */
struct mem_vol {
  uint8_t *data;
  uint64_t size;
};

static int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
  struct mem_vol *m = ctx;
  if (off > m->size || len > m->size - off)
    return -EIO;
  memcpy(buf, m->data + off, len);
  return 0;
}

/* The whole of name (relative to workdir), malloc'ed. */
static uint8_t *slurp(const char *name, uint64_t *size)
{
  char path[512];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  fseek(f, 0, SEEK_END);
  *size = (uint64_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *d = malloc(*size ? *size : 1);
  cr_assert_eq(fread(d, 1, *size, f), *size);
  fclose(f);
  return d;
}

#endif
