/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool read: the virtual disk's bytes on standard output. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdtool.h"

/* Big reads keep the per-call overhead negligible and let the library
 * read whole blocks at a time. */
#define READ_CHUNK (4u << 20)

enum { OPT_OFFSET = 256, OPT_LENGTH };

static const struct option long_options[] = {
  {"offset", required_argument, NULL, OPT_OFFSET},
  {"length", required_argument, NULL, OPT_LENGTH},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

static int copy_out(const char *path, vhd_image *img, uint64_t offset, uint64_t length)
{
  char *buf = malloc(READ_CHUNK);
  if (!buf)
    return fail("%s: out of memory for a %u byte buffer", path, READ_CHUNK);
  int st = EXIT_OK;
  while (length > 0) {
    size_t n = length < READ_CHUNK ? (size_t)length : READ_CHUNK;
    int r = vhd_pread(img, buf, n, offset);
    if (r < 0) {
      st = fail_lib(path, r);
      break;
    }
    r = write_all(STDOUT_FILENO, buf, n);
    if (r < 0) {
      /* A reader that went away (`| head`) is reported like any other
       * short write: the bytes asked for were not all delivered. */
      st = fail("%s: writing to standard output at virtual offset %llu: %s", path,
                (unsigned long long)offset, strerror(-r));
      break;
    }
    offset += n;
    length -= n;
  }
  free(buf);
  return st;
}

static int run(int argc, char **argv)
{
  const char *me = "read";
  uint64_t offset = 0, length = 0;
  bool have_length = false;
  int c;

  while ((c = getopt_long(argc, argv, ":Uh", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_OFFSET:
      if (!parse_size_option(me, "offset", optarg, &offset))
        return EXIT_FAIL;
      break;
    case OPT_LENGTH:
      if (!parse_size_option(me, "length", optarg, &length))
        return EXIT_FAIL;
      have_length = true;
      break;
    case 'h':
      print_command_help(&cmd_read, stdout);
      return EXIT_OK;
    default: {
      int st;
      if (!open_option_or_error(me, c, argv, long_options, &st))
        return st;
      break;
    }
    }
  }
  const char *path = single_file_operand(me, argc, argv, optind);
  if (!path)
    return EXIT_FAIL;

  /* EPIPE as an error return, not a silent death by SIGPIPE, so a failed
   * copy always says so. */
  signal(SIGPIPE, SIG_IGN);

  vhd_image *img;
  struct vhd_info info;
  int r = open_image(path, VHD_OPEN_RDONLY, &img, &info);
  if (r != EXIT_OK)
    return r;

  int st;
  uint64_t size = info.virtual_size;
  if (offset > size) {
    st = fail("%s: offset %llu is beyond the virtual size %llu", path,
              (unsigned long long)offset, (unsigned long long)size);
  } else if (have_length && length > size - offset) {
    st = fail("%s: offset %llu + length %llu is beyond the virtual size %llu", path,
              (unsigned long long)offset, (unsigned long long)length,
              (unsigned long long)size);
  } else {
    st = copy_out(path, img, offset, have_length ? length : size - offset);
  }
  vhd_close(img);
  return st;
}

const struct command cmd_read = {
  .name = "read",
  .summary = "Write the virtual disk's bytes to standard output.",
  .synopsis = "vhdtool read [--offset N] [--length N] FILE",
  .help =
    "Options:\n"
    "      --offset N   start at byte N of the virtual disk (default 0)\n"
    "      --length N   copy N bytes (default: to the end of the disk)\n"
    "  -h, --help       show this help\n"
    "\n"
    "N takes bytes or a K, M, G, T suffix. A differencing image is read through\n"
    "its parents. The range must lie inside the virtual disk.\n",
  .run = run,
  .open_options = true,
};
