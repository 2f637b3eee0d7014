/* SPDX-License-Identifier: BSD-3-Clause */
/* The POSIX file backend through io.h and vhd.h: create/exclusive/truncate
 * flags, read-only enforcement, zeros past the end, holes (punch_hole,
 * find_data, allocated_size), and related files resolved relative to the
 * file's directory. The oracle is the file as the OS reads it (stdio). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "vhd.h"

static char dir[PATH_MAX];

static void setup(void)
{
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/iofile.XXXXXX", t && *t ? t : "/tmp");
  cr_assert_not_null(mkdtemp(dir));
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}

static void teardown(void) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static const char *path_of(const char *name)
{
  static char bufs[4][2 * PATH_MAX];
  static unsigned n;
  char *b = bufs[n++ % 4];
  snprintf(b, 2 * PATH_MAX, "%s/%s", dir, name);
  return b;
}

static void put_file(const char *path, const void *data, size_t len)
{
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

static size_t get_file(const char *path, void *buf, size_t cap)
{
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f);
  size_t n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

TestSuite(io_file, .init = setup, .fini = teardown);

Test(io_file, create_is_exclusive_unless_trunc)
{
  const char *p = path_of("a.img");
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_CREATE, &io), 0, "%s", vhd_last_error());
  cr_assert(io_writable(io), "a created file is writable");
  cr_assert_eq(io_pwrite(io, "hello", 5, 0), 0);
  cr_assert_eq(io_flush(io), 0);
  cr_assert_str_eq(vhd_io_name(io), p);
  vhd_io_close(io);

  int r = vhd_io_open_file(p, VHD_IO_CREATE, &io);
  cr_assert_eq(r, -EEXIST, "create over an existing file: %d", r);
  cr_assert_not_null(strstr(vhd_last_error(), p), "%s", vhd_last_error());

  cr_assert_eq(vhd_io_open_file(p, VHD_IO_CREATE | VHD_IO_TRUNC, &io), 0);
  uint64_t size = 1;
  cr_assert_eq(io_get_size(io, &size), 0);
  cr_assert_eq(size, 0, "TRUNC did not empty the file");
  vhd_io_close(io);
}

Test(io_file, missing_file_and_directory)
{
  vhd_io *io = NULL;
  const char *p = path_of("nope.img");
  int r = vhd_io_open_file(p, VHD_IO_RDONLY, &io);
  cr_assert_eq(r, -ENOENT);
  cr_assert_null(io);
  cr_assert_not_null(strstr(vhd_last_error(), p), "%s", vhd_last_error());
  r = vhd_io_open_file(dir, VHD_IO_RDONLY, &io);
  cr_assert_lt(r, 0, "a directory opened as a file");
  cr_assert_not_null(strstr(vhd_last_error(), dir), "%s", vhd_last_error());
}

Test(io_file, reads_match_and_past_end_is_zero)
{
  uint8_t data[10000];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 31 + 7);
  const char *p = path_of("r.img");
  put_file(p, data, sizeof data);
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_RDONLY, &io), 0);
  cr_assert_not(io_writable(io));
  uint8_t got[12000];
  memset(got, 0x99, sizeof got);
  cr_assert_eq(io_pread(io, got, sizeof got, 0), 0);
  cr_assert_eq(memcmp(got, data, sizeof data), 0);
  for (size_t i = sizeof data; i < sizeof got; i++)
    cr_assert_eq(got[i], 0, "byte %zu past EOF is not zero", i);
  cr_assert_lt(io_pwrite(io, "x", 1, 0), 0, "write through a read-only io");
  cr_assert_not_null(strstr(vhd_last_error(), p), "%s", vhd_last_error());
  cr_assert_lt(io_pread(io, got, 16, UINT64_MAX - 8), 0);
  vhd_io_close(io);
  uint8_t again[10000];
  cr_assert_eq(get_file(p, again, sizeof again), sizeof data);
  cr_assert_eq(memcmp(again, data, sizeof data), 0);
}

Test(io_file, writes_and_size_changes_reach_the_file)
{
  const char *p = path_of("w.img");
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_CREATE, &io), 0);
  uint8_t block[4096];
  memset(block, 0x3c, sizeof block);
  cr_assert_eq(io_pwrite(io, block, sizeof block, 8192), 0);
  uint64_t size = 0;
  cr_assert_eq(io_get_size(io, &size), 0);
  cr_assert_eq(size, 8192 + 4096);
  cr_assert_eq(io_set_size(io, 9000), 0);
  cr_assert_eq(io_flush(io), 0);
  vhd_io_close(io);
  uint8_t got[20000];
  size_t n = get_file(p, got, sizeof got);
  cr_assert_eq(n, 9000);
  for (size_t i = 0; i < 8192; i++)
    cr_assert_eq(got[i], 0);
  for (size_t i = 8192; i < 9000; i++)
    cr_assert_eq(got[i], 0x3c);
}

Test(io_file, holes)
{
  const char *p = path_of("h.img");
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_CREATE, &io), 0);
  enum { MB = 1024 * 1024 };
  uint8_t *buf = malloc(4 * MB);
  memset(buf, 0x42, 4 * MB);
  cr_assert_eq(io_pwrite(io, buf, 4 * MB, 0), 0);
  cr_assert_eq(io_flush(io), 0);

  int r = io_punch_hole(io, MB, 2 * MB);
  if (r == -ENOTSUP) {
    cr_log_warn("punch_hole not supported on %s; hole checks skipped", dir);
  } else {
    cr_assert_eq(r, 0, "%s", vhd_last_error());
    uint64_t size = 0;
    cr_assert_eq(io_get_size(io, &size), 0);
    cr_assert_eq(size, 4 * MB, "punching a hole changed the size");
    cr_assert_eq(io_pread(io, buf, 4 * MB, 0), 0);
    cr_assert_eq(buf[MB - 1], 0x42);
    for (size_t i = MB; i < 3 * MB; i++)
      cr_assert_eq(buf[i], 0, "byte %zu of the hole is not zero", i);
    cr_assert_eq(buf[3 * MB], 0x42);

    uint64_t data = 0, hole = 0;
    cr_assert_eq(io_find_data(io, MB, &data, &hole), 0);
    cr_assert_eq(data, 3 * MB, "next data after the hole at %llu", (unsigned long long)data);
    cr_assert_eq(hole, 4 * MB);
    cr_assert_eq(io_find_data(io, 0, &data, &hole), 0);
    cr_assert_eq(data, 0);
    cr_assert_eq(hole, MB);

    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_leq((uint64_t)st.st_blocks * 512, 2 * MB + 64 * 1024,
                  "hole not given back: %lld blocks", (long long)st.st_blocks);
  }
  /* Past the end there is no data. */
  uint64_t data = 0, hole = 0;
  cr_assert_eq(io_find_data(io, 5 * MB, &data, &hole), 0);
  cr_assert_geq(data, 4 * MB);
  free(buf);
  vhd_io_close(io);
}

Test(io_file, punch_hole_refused_read_only)
{
  const char *p = path_of("ro.img");
  put_file(p, "abcdefgh", 8);
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_RDONLY, &io), 0);
  cr_assert_lt(io_punch_hole(io, 0, 8), 0);
  cr_assert_lt(io_set_size(io, 0), 0);
  vhd_io_close(io);
  char got[8];
  cr_assert_eq(get_file(p, got, 8), 8);
  cr_assert_eq(memcmp(got, "abcdefgh", 8), 0);
}

Test(io_file, related_files_are_relative_to_the_directory)
{
  cr_assert_eq(mkdir(path_of("sub"), 0755), 0);
  put_file(path_of("sub/parent.img"), "PARENT", 6);
  put_file(path_of("up.img"), "UP", 2);
  put_file(path_of("sub/child.img"), "CHILD", 5);
  vhd_io *io = NULL, *rel = NULL;
  cr_assert_eq(vhd_io_open_file(path_of("sub/child.img"), VHD_IO_RDONLY, &io), 0);

  char got[8] = { 0 };
  cr_assert_eq(io_open_related(io, "parent.img", VHD_IO_RDONLY, &rel), 0, "%s", vhd_last_error());
  cr_assert_eq(io_pread(rel, got, 6, 0), 0);
  cr_assert_eq(memcmp(got, "PARENT", 6), 0);
  cr_assert_not(io_writable(rel));
  vhd_io_close(rel);

  cr_assert_eq(io_open_related(io, "../up.img", VHD_IO_RDONLY, &rel), 0, "%s", vhd_last_error());
  cr_assert_eq(io_pread(rel, got, 2, 0), 0);
  cr_assert_eq(memcmp(got, "UP", 2), 0);
  vhd_io_close(rel);

  /* An absolute path is taken as it is. */
  cr_assert_eq(io_open_related(io, path_of("up.img"), VHD_IO_RDONLY, &rel), 0, "%s", vhd_last_error());
  vhd_io_close(rel);

  rel = NULL;
  int r = io_open_related(io, "absent.img", VHD_IO_RDONLY, &rel);
  cr_assert_eq(r, -ENOENT, "missing related file: %d", r);
  cr_assert_not_null(strstr(vhd_last_error(), "absent.img"), "%s", vhd_last_error());
  vhd_io_close(io);
}

Test(io_file, descriptors_are_close_on_exec)
{
  const char *p = path_of("c.img");
  put_file(p, "x", 1);
  vhd_io *io = NULL;
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_RDONLY, &io), 0);
  /* Find the descriptor the backend opened (by its canonical path). */
  char *real = realpath(p, NULL);
  cr_assert_not_null(real);
  int found = 0;
  for (int fd = 3; fd < 1024; fd++) {
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
      continue;
    target[n] = 0;
    if (strcmp(target, real) == 0) {
      int flags = fcntl(fd, F_GETFD);
      cr_assert(flags >= 0 && (flags & FD_CLOEXEC), "fd %d on %s lacks FD_CLOEXEC", fd, p);
      found = 1;
    }
  }
  cr_assert(found, "no descriptor on %s", p);
  free(real);
  vhd_io_close(io);
}

/* --- Locks (lib/io/file_lock.c) --------------------------------------------------
 * Two opens of one file are two open file descriptions, which the locks
 * treat like two processes: the in-process view of what test_locking.sh
 * checks across processes. The oracle for "locked" is /proc/locks. */

static bool listed_in_proc_locks(const char *path)
{
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  char want[64];
  snprintf(want, sizeof want, ":%llu ", (unsigned long long)st.st_ino);
  FILE *f = fopen("/proc/locks", "r");
  if (!f)
    return true;   /* nothing to compare with */
  char line[256];
  bool found = false;
  while (!found && fgets(line, sizeof line, f))
    found = strstr(line, want) != NULL;
  fclose(f);
  return found;
}

static int open_as(const char *p, unsigned flags)
{
  vhd_io *io = NULL;
  int r = vhd_io_open_file(p, flags, &io);
  vhd_io_close(io);
  return r;
}

Test(io_file, a_writer_excludes_readers_and_writers)
{
  const char *p = path_of("w.img");
  put_file(p, "data", 4);
  vhd_io *w = NULL;
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_RDWR, &w), 0, "%s", vhd_last_error());
  cr_assert(listed_in_proc_locks(p), "the writer holds no lock");
  cr_expect_eq(open_as(p, VHD_IO_RDONLY), -EBUSY);
  cr_expect_not_null(strstr(vhd_last_error(), p), "%s", vhd_last_error());
  cr_expect_not_null(strstr(vhd_last_error(), "writes it"), "%s", vhd_last_error());
  cr_expect_eq(open_as(p, VHD_IO_RDWR), -EBUSY);
  cr_expect_eq(open_as(p, VHD_IO_RDONLY | VHD_IO_NOLOCK), 0, "%s", vhd_last_error());
  vhd_io_close(w);
  cr_expect_eq(open_as(p, VHD_IO_RDWR), 0, "the writer's lock outlived it: %s",
               vhd_last_error());
}

Test(io_file, readers_share_and_exclude_writers)
{
  const char *p = path_of("r.img");
  put_file(p, "data", 4);
  vhd_io *a = NULL, *b = NULL;
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_RDONLY, &a), 0, "%s", vhd_last_error());
  cr_assert_eq(vhd_io_open_file(p, VHD_IO_RDONLY, &b), 0, "two readers: %s", vhd_last_error());
  cr_expect_eq(open_as(p, VHD_IO_RDWR), -EBUSY);
  cr_expect_not_null(strstr(vhd_last_error(), "reads it"), "%s", vhd_last_error());
  /* A writer that would replace the file leaves it alone. */
  cr_expect_eq(open_as(p, VHD_IO_CREATE | VHD_IO_TRUNC), -EBUSY);
  char buf[8];
  cr_expect_eq(get_file(p, buf, sizeof buf), 4, "a refused replace emptied the file");
  vhd_io_close(b);
  io_file_release_lock(a);   /* as merge does before reopening read-write */
  cr_expect_eq(open_as(p, VHD_IO_RDWR), 0, "%s", vhd_last_error());
  vhd_io_close(a);
}

Test(io_file, fifos_and_character_devices_are_refused_at_once)
{
  const char *p = path_of("pipe");
  cr_assert_eq(mkfifo(p, 0600), 0);
  int r = open_as(p, VHD_IO_RDONLY);   /* would block forever without O_NONBLOCK */
  cr_expect_eq(r, -ESPIPE, "%d", r);
  cr_expect_not_null(strstr(vhd_last_error(), "is a FIFO"), "%s", vhd_last_error());
  cr_expect_eq(open_as(p, VHD_IO_CREATE | VHD_IO_TRUNC), -ESPIPE);
  struct stat st;
  cr_expect(stat(p, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
  r = open_as("/dev/null", VHD_IO_RDONLY);
  cr_expect_eq(r, -ENODEV, "%d", r);
  cr_expect_not_null(strstr(vhd_last_error(), "/dev/null: is a character device"), "%s",
                     vhd_last_error());
}
