/* SPDX-License-Identifier: BSD-3-Clause */
/* A scratch directory per test for the unit tests that need real files
 * (parents found by path, crash images, host holes): made under $TMPDIR
 * (tmpfs in ctest) by the suite's .init, removed with its contents by .fini. */
#ifndef TEST_SCRATCH_H
#define TEST_SCRATCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* mkdtemp, nftw */
#endif
#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>

static char scratch[PATH_MAX];

static inline int scratch_rm_one(const char *p, const struct stat *sb, int flag,
                                 struct FTW *ftw)
{
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}

/* Make a fresh directory named after prefix. */
static inline void scratch_make(const char *prefix)
{
  const char *t = getenv("TMPDIR");
  int n = snprintf(scratch, sizeof scratch, "%s/%s.XXXXXX", t && *t ? t : "/tmp", prefix);
  cr_assert(n > 0 && (size_t)n < sizeof scratch);
  cr_assert_not_null(mkdtemp(scratch));
}

static inline void scratch_remove(void)
{
  nftw(scratch, scratch_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* scratch/name; the last eight results stay valid, so a call can take
 * several paths as arguments. */
static inline const char *spath(const char *name)
{
  static char bufs[8][PATH_MAX];
  static unsigned n;
  char *b = bufs[n++ % 8];
  int len = snprintf(b, PATH_MAX, "%s/%s", scratch, name);
  cr_assert(len > 0 && len < PATH_MAX);
  return b;
}

/* The whole file at path (malloc'd; *len its size), for byte-for-byte
 * comparisons of a file before and after an operation. */
static inline uint8_t *read_whole_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  struct stat st;
  cr_assert_eq(fstat(fileno(f), &st), 0);
  uint8_t *b = malloc((size_t)st.st_size + 1);
  cr_assert_not_null(b);
  cr_assert_eq(fread(b, 1, (size_t)st.st_size, f), (size_t)st.st_size);
  fclose(f);
  *len = (size_t)st.st_size;
  return b;
}

#endif
