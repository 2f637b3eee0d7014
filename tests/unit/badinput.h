/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers for the bad-input catalogues (test_badinput_*.c): scratch
 * directories, whole-file I/O, big/little-endian fields, and the one
 * assertion every case ends with: the damaged image does not open, the
 * error is negative, and the message is one non-empty line naming the file.
 *
 * Everything here reads the on-disk layout itself (from the format
 * specification), independently of the library's parsers. */
#ifndef TESTS_BADINPUT_H
#define TESTS_BADINPUT_H

#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhd.h"

static char scratch[PATH_MAX];

/* Buffers a test holds are tracked so that teardown frees them when an
 * assertion ends the test early (else LeakSanitizer reports the test). */
#define TRACK_MAX 1024
static void *tracked[TRACK_MAX];

static inline void *tracked_malloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  cr_assert_not_null(p);
  for (int i = 0; i < TRACK_MAX; i++)
    if (!tracked[i]) {
      tracked[i] = p;
      break;
    }
  return p;
}

static inline void tracked_free(void *p)
{
  for (int i = 0; i < TRACK_MAX; i++)
    if (tracked[i] == p)
      tracked[i] = NULL;
  free(p);
}

static inline void scratch_init(void)
{
  const char *t = getenv("TMPDIR");
  snprintf(scratch, sizeof scratch, "%s/badinput.XXXXXX", t && *t ? t : "/tmp");
  cr_assert_not_null(mkdtemp(scratch), "mkdtemp %s: %s", scratch, strerror(errno));
}

static inline int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}

static inline void scratch_fini(void)
{
  for (int i = 0; i < TRACK_MAX; i++) {
    free(tracked[i]);
    tracked[i] = NULL;
  }
  if (scratch[0])
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Path of NAME inside the scratch directory (static rotating buffers so a
 * few can be live at once). */
static inline const char *spath(const char *name)
{
  static char bufs[8][2 * PATH_MAX];
  static unsigned n;
  char *b = bufs[n++ % 8];
  snprintf(b, 2 * PATH_MAX, "%s/%s", scratch, name);
  return b;
}

struct bytes {
  uint8_t *p;
  size_t len;
};

static inline struct bytes slurp(const char *path)
{
  struct bytes b = { NULL, 0 };
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  b.len = (size_t)n;
  b.p = tracked_malloc(b.len);
  cr_assert_eq(fread(b.p, 1, b.len, f), b.len, "read %s", path);
  fclose(f);
  return b;
}

static inline void spit(const char *path, const void *p, size_t len)
{
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(p, 1, len, f), len, "write %s", path);
  cr_assert_eq(fclose(f), 0);
}

static inline struct bytes bytes_dup(struct bytes b)
{
  struct bytes c = { tracked_malloc(b.len), b.len };
  memcpy(c.p, b.p, b.len);
  return c;
}

static inline void bytes_free(struct bytes b) { tracked_free(b.p); }

static inline uint32_t be32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }
static inline void put_be32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put_be64(uint8_t *p, uint64_t v) { put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v); }

static inline uint32_t le32(const uint8_t *p)
{
  return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static inline uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p + 4) << 32 | le32(p); }
static inline void put_le32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void put_le64(uint8_t *p, uint64_t v) { put_le32(p, (uint32_t)v); put_le32(p + 4, (uint32_t)(v >> 32)); }

/* Replace every occurrence of `from` by `to` (same length) in b, as
 * ASCII/UTF-8, UTF-16LE and UTF-16BE. Returns the number of replacements. */
static inline int replace_name(struct bytes b, const char *from, const char *to)
{
  size_t n = strlen(from);
  cr_assert_eq(n, strlen(to));
  int count = 0;
  for (int enc = 0; enc < 3; enc++) {
    size_t w = enc ? 2 : 1, pat = n * w;
    uint8_t f[512], t[512];
    cr_assert(pat <= sizeof f);
    for (size_t i = 0; i < n; i++) {
      if (enc == 0) { f[i] = (uint8_t)from[i]; t[i] = (uint8_t)to[i]; }
      else if (enc == 1) { f[2*i] = (uint8_t)from[i]; f[2*i+1] = 0; t[2*i] = (uint8_t)to[i]; t[2*i+1] = 0; }
      else { f[2*i] = 0; f[2*i+1] = (uint8_t)from[i]; t[2*i] = 0; t[2*i+1] = (uint8_t)to[i]; }
    }
    uint8_t *at = b.p, *end = b.p + b.len;
    while ((at = memmem(at, (size_t)(end - at), f, pat)) != NULL) {
      memcpy(at, t, pat);
      at += pat;
      count++;
    }
  }
  return count;
}

/* The message of the last failure: one non-empty line naming `path`. An
 * image that opened although it must not is closed first, so the report
 * is about the open, not a leak. */
static inline void assert_error_names(int r, vhd_image *img, const char *path, const char *what)
{
  if (r >= 0)
    vhd_close(img);
  cr_assert_lt(r, 0, "%s: %s succeeded", path, what);
  cr_assert_eq(vhd_last_errno(), -r, "%s: %s: vhd_last_errno %d, returned %d", path, what,
               vhd_last_errno(), r);
  const char *msg = vhd_last_error();
  cr_assert(msg && *msg, "%s: %s: empty error message", path, what);
  cr_assert_not_null(strstr(msg, path), "%s: %s: message does not name the file: \"%s\"",
                     path, what, msg);
  cr_assert_null(strchr(msg, '\n'), "%s: %s: message is not one line: \"%s\"", path, what, msg);
}

/* The refusal of a probed read-only open of path says what is actually
 * wrong: its message contains says and, when not_says is given, not that
 * (a misleading reason). */
static inline void expect_refusal_says(const char *path, const char *says, const char *not_says)
{
  vhd_image *img = NULL;
  int r = vhd_open(path, VHD_OPEN_RDONLY, &img);
  assert_error_names(r, img, path, "vhd_open read-only");
  const char *msg = vhd_last_error();
  cr_assert_not_null(strstr(msg, says), "%s: message lacks \"%s\": \"%s\"", path, says, msg);
  if (not_says)
    cr_assert_null(strstr(msg, not_says), "%s: message says \"%s\": \"%s\"", path,
                   not_says, msg);
}

/* How strictly a damaged file must be refused. */
enum refuse {
  REFUSE_PROBED = 1,   /* also when the format is probed (vhd_open) */
  REFUSE_CHAIN = 2,    /* the fault is in the parent chain: an in-memory copy
                          (which has no related files) proves nothing */
};

/* The file at path must not open: read-only and read-write, probed (unless
 * only the explicit format is required) and with the format given, from the
 * file and from an in-memory copy named after the file. A failed read-write
 * open leaves the file unchanged. vhd_check must not call it clean. */
static inline void expect_refused(const char *path, enum vhd_format fmt, unsigned how)
{
  vhd_image *img = NULL;
  struct bytes before = slurp(path);
  int r;

  if (how & REFUSE_PROBED) {
    r = vhd_open(path, VHD_OPEN_RDONLY, &img);
    assert_error_names(r, img, path, "vhd_open read-only");
    r = vhd_open(path, VHD_OPEN_RDWR, &img);
    assert_error_names(r, img, path, "vhd_open read-write");
  }

  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_open_file(path, VHD_IO_RDONLY, &io), 0, "%s", vhd_last_error());
  r = vhd_open_io(io, fmt, VHD_OPEN_RDONLY, &img);
  assert_error_names(r, img, path, "vhd_open_io with the format given");

  if (!(how & REFUSE_CHAIN)) {
    /* The parser runs on the bytes alone: an in-memory copy fails too. */
    cr_assert_eq(vhd_io_new_memory(before.p, before.len, path, VHD_IO_RDONLY, &io), 0);
    r = vhd_open_io(io, fmt, VHD_OPEN_RDONLY | VHD_OPEN_NO_PARENT, &img);
    assert_error_names(r, img, path, "vhd_open_io in memory");
  }

  /* vhd_check probes like vhd_open and follows the parent link, so it must
   * object whenever a probed open must. */
  if (how & REFUSE_PROBED) {
    struct vhd_check_result res;
    memset(&res, 0, sizeof res);
    r = vhd_check(path, 0, NULL, NULL, &res);
    cr_assert(r < 0 || res.corruptions > 0,
              "%s: vhd_check finds nothing wrong (rc %d, %u corruptions)", path, r, res.corruptions);
  }

  struct bytes after = slurp(path);
  cr_assert(after.len == before.len && memcmp(after.p, before.p, before.len) == 0,
            "%s: a failed open changed the file", path);
  bytes_free(before);
  bytes_free(after);
}

/* Creation parameters of a dynamic image of fmt: size bytes in blocks of
 * block_size. */
static inline struct vhd_create_params dynamic_params(enum vhd_format fmt, uint64_t size,
                                                      uint32_t block_size)
{
  struct vhd_create_params p;
  vhd_create_params_init(&p);
  p.format = fmt;
  p.type = VHD_TYPE_DYNAMIC;
  p.size = size;
  p.block_size = block_size;
  return p;
}

/* Such an image at path, nothing written. */
static inline void create_empty(const char *path, enum vhd_format fmt, uint64_t size,
                                uint32_t block_size)
{
  struct vhd_create_params p = dynamic_params(fmt, size, block_size);
  vhd_image *img = NULL;
  cr_assert_eq(vhd_create(path, &p, &img), 0, "%s: %s", path, vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);
}

/* Positive control: path opens read-only (with flags) and closes cleanly. */
static inline void expect_opens(const char *path, unsigned flags)
{
  vhd_image *img = NULL;
  int r = vhd_open(path, VHD_OPEN_RDONLY | flags, &img);
  cr_assert_eq(r, 0, "%s: control image does not open: %s", path, vhd_last_error());
  cr_assert_eq(vhd_close(img), 0);
}

#endif
