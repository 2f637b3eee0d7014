/* SPDX-License-Identifier: BSD-3-Clause */
/* What the unit tests of the UEFI loader's extent mapper share (one
 * file system each: test_efi_extents.c for FAT/exFAT, test_efi_fsmap_*.c
 * for the others): the mapper's sources, a work directory with shell
 * commands run in it, file contents, a volume read through pread, the
 * "map it and read it back" oracle and the damaged-volume walk. */
#ifndef TEST_FSMAP_TESTUTIL_H
#define TEST_FSMAP_TESTUTIL_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsmap_sources.h"

static char workdir[256];

/* A fresh work directory named after prefix (the suite's .init). */
static inline void make_workdir_named(const char *prefix)
{
  const char *tmp = getenv("TMPDIR");
  snprintf(workdir, sizeof workdir, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
  cr_assert_not_null(mkdtemp(workdir), "mkdtemp: %s", strerror(errno));
  setenv("MTOOLS_SKIP_CHECK", "1", 1);   /* mtools on images without a geometry */
  setenv("DEBUGFS_PAGER", "__none__", 1); /* debugfs output straight to the file */
}

/* The suite's .fini; a FUSE mount left on workdir/mnt by a failed test is
 * released first. */
static inline void remove_workdir(void)
{
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "umount '%s/mnt' 2>/dev/null; rm -rf '%s'", workdir, workdir);
  if (system(cmd) != 0)
    cr_log_warn("could not remove %s", workdir);
}

/* What the last command printed on standard error (cmd.log in workdir). */
static inline const char *last_log(void)
{
  static char log[800];
  char path[300];
  snprintf(path, sizeof path, "%s/cmd.log", workdir);
  log[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f) {
    log[fread(log, 1, sizeof log - 1, f)] = '\0';
    fclose(f);
  }
  return log;
}

/* Runs a shell command in workdir with no input (a tool that asks a
 * question fails instead of waiting), and returns its standard output
 * (caller frees). The test fails with what the command printed when its
 * exit status is above max_status; a missing tool fails too (install what
 * scripts/install-deps.sh lists). */
static inline char *vrun(int max_status, const char *fmt, va_list ap)
{
  char cmd[4096], full[4600], path[300];
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  snprintf(full, sizeof full, "cd '%s' && (%s) </dev/null >out.txt 2>cmd.log", workdir, cmd);
  int st = system(full);
  snprintf(path, sizeof path, "%s/out.txt", workdir);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *out = malloc((size_t)n + 1);
  cr_assert_not_null(out);
  out[fread(out, 1, (size_t)n, f)] = '\0';
  fclose(f);
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
  cr_assert(code <= max_status, "command failed (status %d): %s\n%.1500s%s", code, cmd, out,
            last_log());
  return out;
}

static inline char *run(int max_status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *out = vrun(max_status, fmt, ap);
  va_end(ap);
  return out;
}

/* A command that must succeed; its output is not needed. */
static inline void sh(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  free(vrun(0, fmt, ap));
  va_end(ap);
}

/* The standard output of a command that must succeed (caller frees). */
static inline char *sh_output(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *out = vrun(0, fmt, ap);
  va_end(ap);
  return out;
}

/* Debian's interpreter when there is one: a pyenv shim on PATH costs about
 * a second per start on a busy machine. */
static inline const char *python(void)
{
  return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

/* Deterministic file content, different per seed. */
static inline uint8_t *pattern(size_t size, unsigned seed)
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

static inline void write_file(const char *name, const uint8_t *data, size_t size)
{
  char path[600];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(data, 1, size, f), size);
  cr_assert_eq(fclose(f), 0);
}

static inline uint8_t *slurp(const char *name, uint64_t *size)
{
  char path[600];
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

static inline void patch(const char *image, uint64_t off, const void *bytes, size_t n)
{
  char path[600];
  snprintf(path, sizeof path, "%s/%s", workdir, image);
  int fd = open(path, O_RDWR);
  cr_assert_geq(fd, 0);
  cr_assert_eq(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
  close(fd);
}

struct vol_file {
  int fd;
  uint64_t base;
};

static inline int read_cb(void *ctx, uint64_t off, void *buf, size_t len)
{
  struct vol_file *v = ctx;
  ssize_t n = pread(v->fd, buf, len, (off_t)(v->base + off));
  return n == (ssize_t)len ? 0 : -EIO;
}

struct mounted {
  struct vol_file vf;
  struct fsmap_volume vol;
};

/* fsmap_mount's result for image at base; size 0 = the rest of the file. */
static inline int try_mount(struct mounted *m, const char *image, uint64_t base, uint64_t size)
{
  char path[600];
  snprintf(path, sizeof path, "%s/%s", workdir, image);
  m->vf.fd = open(path, O_RDONLY);
  cr_assert_geq(m->vf.fd, 0, "open %s", path);
  m->vf.base = base;
  if (!size) {
    struct stat st;
    fstat(m->vf.fd, &st);
    size = (uint64_t)st.st_size - base;
  }
  return fsmap_mount(&m->vol, read_cb, &m->vf, size);
}

static inline void mount_image(struct mounted *m, const char *image, uint64_t base,
                               uint64_t size)
{
  int r = try_mount(m, image, base, size);
  cr_assert_eq(r, 0, "mount %s: %d %s", image, r, m->vol.error);
}

static inline void unmount_image(struct mounted *m)
{
  fsmap_unmount(&m->vol);
  close(m->vf.fd);
}

/* Looks path up, maps it and reads it back through the extents: the bytes
 * must equal expect, the extents must be adjacent in the file, merged
 * where they touch on the volume, inside the volume and no more than the
 * clusters the size needs. Returns them (caller frees). */
static inline struct fsmap_extents map_and_compare(struct mounted *m, const char *path,
                                                   const uint8_t *expect, size_t size)
{
  struct fsmap_file f;
  int r = fsmap_lookup(&m->vol, path, &f);
  cr_assert_eq(r, 0, "lookup %s: %d %s", path, r, m->vol.error);
  cr_assert(!f.directory, "%s is a directory", path);
  cr_assert_eq(f.size, size, "%s: size %llu, expected %zu", path, (unsigned long long)f.size,
               size);
  struct fsmap_extents e;
  memset(&e, 0, sizeof e);
  r = fsmap_map(&m->vol, &f, &e);
  cr_assert_eq(r, 0, "map %s: %d %s", path, r, m->vol.error);
  cr_assert_geq(e.mapped, size);
  cr_assert_lt(e.mapped - size, m->vol.cluster_size, "mapped %llu bytes for %zu",
               (unsigned long long)e.mapped, size);
  uint8_t *got = malloc(size ? size : 1);
  uint64_t expect_off = 0;
  for (size_t i = 0; i < e.count; i++) {
    cr_assert_eq(e.v[i].file_offset, expect_off, "extents must be adjacent in the file");
    cr_assert_eq(e.v[i].state, FSMAP_DATA);
    cr_assert_leq(e.v[i].volume_offset + e.v[i].length, m->vol.size);
    expect_off += e.v[i].length;
    uint64_t n = e.v[i].length;
    if (n > size - e.v[i].file_offset)
      n = size - e.v[i].file_offset;
    cr_assert_eq(read_cb(&m->vf, e.v[i].volume_offset, got + e.v[i].file_offset, n), 0);
    if (i + 1 < e.count)   /* merged runs: neighbours are not contiguous on disk */
      cr_assert_neq(e.v[i].volume_offset + e.v[i].length, e.v[i + 1].volume_offset);
  }
  cr_assert(memcmp(got, expect, size) == 0, "%s: bytes read through the extents differ "
            "from the file", path);
  free(got);
  /* fsmap_extents_find agrees with a linear scan at every extent edge. */
  for (size_t i = 0; i < e.count; i++) {
    cr_assert_eq(fsmap_extents_find(&e, e.v[i].file_offset), (ptrdiff_t)i);
    cr_assert_eq(fsmap_extents_find(&e, e.v[i].file_offset + e.v[i].length - 1), (ptrdiff_t)i);
  }
  cr_assert_eq(fsmap_extents_find(&e, e.mapped), -1);
  return e;
}

/* Damaged volumes must never crash, hang or read out of bounds: mutate
 * bytes among the first hot_bytes of a real volume in memory and walk
 * paths. The mapper's answers may be anything, but extents it returns
 * must lie inside the volume. ASan/UBSan builds make the out-of-bounds
 * part strict. */
struct mem_vol {
  uint8_t *data;
  uint64_t size;
};

static inline int mem_read(void *ctx, uint64_t off, void *buf, size_t len)
{
  struct mem_vol *m = ctx;
  if (off > m->size || len > m->size - off)
    return -EIO;
  memcpy(buf, m->data + off, len);
  return 0;
}

static inline void mutate_and_walk(const uint8_t *orig, uint64_t size, uint64_t hot_bytes,
                                   const char *const *paths, unsigned rounds)
{
  struct mem_vol m = { malloc(size), size };
  memcpy(m.data, orig, size);
  uint32_t x = 12345;
  for (unsigned round = 0; round < rounds; round++) {
    unsigned flips = 1 + round % 8;
    uint64_t at[8];
    for (unsigned k = 0; k < flips; k++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      at[k] = x % hot_bytes;
      m.data[at[k]] ^= (uint8_t)(1u << (x >> 29));
    }
    struct fsmap_volume vol;
    if (fsmap_mount(&vol, mem_read, &m, size) == 0) {
      for (const char *const *p = paths; *p; p++) {
        struct fsmap_file f;
        struct fsmap_extents e;
        memset(&e, 0, sizeof e);
        if (fsmap_lookup(&vol, *p, &f) == 0 && !f.directory && fsmap_map(&vol, &f, &e) == 0)
          for (size_t i = 0; i < e.count; i++)
            cr_assert_leq(e.v[i].volume_offset + e.v[i].length, size,
                          "round %u: extent past the end of the volume", round);
        fsmap_extents_free(&e);
      }
    }
    fsmap_unmount(&vol);
    for (unsigned k = 0; k < flips; k++)   /* undo: the next round starts clean */
      m.data[at[k]] = orig[at[k]];
  }
  free(m.data);
}

#endif
