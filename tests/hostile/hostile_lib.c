/* SPDX-License-Identifier: BSD-3-Clause */
/* hostile_lib: open one image of the hostile catalogue through the library
 * with a given parent policy, read its disk (bounded) and check it; the
 * catalogue runner (run_hostile.py) judges what this prints.
 *
 *   hostile_lib [--policy P]... [--max-read BYTES] IMAGE OUT
 *
 * P: beside (VHD_OPEN_PARENTS_BESIDE), raw-parent (VHD_OPEN_RAW_PARENT),
 * parent-dir=DIR, none (VHD_OPEN_NO_PARENT), any (no confinement).
 * What was read goes to OUT, so the runner can look for secret bytes.
 * Prints, one per line:
 *   open ok | open refused <message>
 *   read ok <bytes> | read failed <offset> <message>
 *   check rc=<r> corruptions=<n> leaks=<n> warnings=<n> findings=<n> bytes=<n> [<message>]
 * Exit: 0 opened and read, 1 open refused, 2 read failed after open,
 * 3 usage. A crash or a sanitizer report is the runner's failure. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhd.h"

#define CHUNK (1024 * 1024)

struct findings {
  unsigned long count;
  unsigned long long bytes;
};

static void count_finding(void *opaque, enum vhd_check_severity sev, const char *message)
{
  struct findings *f = opaque;
  (void)sev;
  f->count++;
  f->bytes += strlen(message) + 1;
}

/* Messages are printed on one line whatever they hold, so the runner can
 * tell a multi-line message from several lines of output. */
static void print_message(const char *m)
{
  for (; *m; m++)
    putchar(*m == '\n' ? '|' : *m);
  putchar('\n');
}

static int read_disk(vhd_image *img, const char *out_path, uint64_t max_read)
{
  struct vhd_info info;
  if (vhd_get_info(img, &info) < 0) {
    printf("read failed 0 ");
    print_message(vhd_last_error());
    return 2;
  }
  FILE *out = fopen(out_path, "wb");
  char *buf = malloc(CHUNK);
  if (!out || !buf) {
    fprintf(stderr, "hostile_lib: %s: %s\n", out_path, strerror(errno));
    exit(3);
  }
  uint64_t end = info.virtual_size < max_read ? info.virtual_size : max_read;
  int status = 0;
  uint64_t off;
  for (off = 0; off < end; off += CHUNK) {
    size_t n = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
    if (vhd_pread(img, buf, n, off) < 0) {
      printf("read failed %llu ", (unsigned long long)off);
      print_message(vhd_last_error());
      status = 2;
      break;
    }
    fwrite(buf, 1, n, out);
  }
  if (!status)
    printf("read ok %llu\n", (unsigned long long)end);
  free(buf);
  fclose(out);
  return status;
}

int main(int argc, char **argv)
{
  unsigned flags = 0;
  const char *parent_dir = NULL;
  uint64_t max_read = 64ull << 20;
  int i;
  for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (strcmp(argv[i], "--policy") == 0 && i + 1 < argc) {
      const char *p = argv[++i];
      if (strcmp(p, "beside") == 0)
        flags |= VHD_OPEN_PARENTS_BESIDE;
      else if (strcmp(p, "raw-parent") == 0)
        flags |= VHD_OPEN_RAW_PARENT;
      else if (strcmp(p, "none") == 0)
        flags |= VHD_OPEN_NO_PARENT;
      else if (strncmp(p, "parent-dir=", 11) == 0)
        parent_dir = p + 11;
      else if (strcmp(p, "any") != 0)
        return fprintf(stderr, "hostile_lib: unknown policy %s\n", p), 3;
    } else if (strcmp(argv[i], "--max-read") == 0 && i + 1 < argc) {
      max_read = strtoull(argv[++i], NULL, 0);
    } else {
      return fprintf(stderr, "hostile_lib: unknown option %s\n", argv[i]), 3;
    }
  }
  if (argc - i != 2)
    return fprintf(stderr, "usage: hostile_lib [--policy P]... [--max-read N] IMAGE OUT\n"), 3;
  const char *path = argv[i], *out = argv[i + 1];

  struct vhd_open_params p;
  vhd_open_params_init(&p);
  p.flags = flags;
  p.parent_dir = parent_dir;
  vhd_image *img = NULL;
  int r = vhd_open_with(path, &p, &img);
  int status;
  if (r < 0) {
    printf("open refused ");
    print_message(vhd_last_error());
    status = 1;
  } else {
    printf("open ok\n");
    status = read_disk(img, out, max_read);
    vhd_close(img);
  }

  struct findings f = { 0, 0 };
  struct vhd_check_result res;
  memset(&res, 0, sizeof res);
  r = vhd_check_with(path, &p, 0, count_finding, &f, &res);
  printf("check rc=%d corruptions=%u leaks=%u warnings=%u findings=%lu bytes=%llu ", r,
         res.corruptions, res.leaks, res.warnings, f.count, f.bytes);
  print_message(r < 0 ? vhd_last_error() : "");
  return status;
}
