/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool write: standard input into the virtual disk. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdtool.h"

#define WRITE_CHUNK (4u << 20)

enum { OPT_OFFSET = 256 };

static const struct option long_options[] = {
  {"offset", required_argument, NULL, OPT_OFFSET},
  OPEN_LONG_OPTIONS,
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/* The bytes left on standard input when it is a regular file; false for a
 * pipe or a terminal, whose length is known only at its end. */
static bool input_length(uint64_t *len)
{
  struct stat st;
  if (fstat(STDIN_FILENO, &st) < 0 || !S_ISREG(st.st_mode))
    return false;
  off_t pos = lseek(STDIN_FILENO, 0, SEEK_CUR);
  if (pos < 0)
    return false;
  *len = st.st_size > pos ? (uint64_t)(st.st_size - pos) : 0;
  return true;
}

static int copy_in(const char *path, vhd_image *img, uint64_t offset, uint64_t size)
{
  const uint64_t start = offset;
  char *buf = malloc(WRITE_CHUNK);
  if (!buf)
    return fail("%s: out of memory for a %u byte buffer", path, WRITE_CHUNK);
  int st = EXIT_OK;
  for (;;) {
    long long n = interrupted() ? -EINTR : read_full(STDIN_FILENO, buf, WRITE_CHUNK);
    if (n < 0) {
      if (n == -EINTR && interrupted())
        st = fail("%s: interrupted at virtual offset %llu (the bytes before it are "
                  "written)", path, (unsigned long long)offset);
      else
        st = fail("%s: reading standard input: %s", path, strerror((int)-n));
      break;
    }
    if (n == 0)
      break;
    /* Check before writing anything of this chunk, so that too much input
     * fails with a message that says so, not a bare EINVAL. */
    if ((uint64_t)n > size - offset) {
      st = fail("%s: input runs past the end of the virtual disk (size %llu) at "
                "offset %llu; the %llu bytes before it are written, nothing after",
                path, (unsigned long long)size, (unsigned long long)offset,
                (unsigned long long)(offset - start));
      break;
    }
    int r = vhd_pwrite(img, buf, (size_t)n, offset);
    if (r < 0) {
      st = fail_lib(path, r);
      break;
    }
    offset += (uint64_t)n;
    if ((size_t)n < WRITE_CHUNK)
      break;
  }
  free(buf);
  return st;
}

static int run(int argc, char **argv)
{
  const char *me = "write";
  uint64_t offset = 0;
  int c;

  while ((c = getopt_long(argc, argv, ":Uh", long_options, NULL)) != -1) {
    switch (c) {
    case OPT_OFFSET:
      if (!parse_size_option(me, "offset", optarg, &offset))
        return EXIT_FAIL;
      break;
    case 'h':
      print_command_help(&cmd_write, stdout);
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

  vhd_image *img;
  struct vhd_info info;
  int r = open_image(path, VHD_OPEN_RDWR, &img, &info);
  if (r != EXIT_OK)
    return r;
  if (offset > info.virtual_size) {
    vhd_close(img);
    return fail("%s: offset %llu is beyond the virtual size %llu", path,
                (unsigned long long)offset, (unsigned long long)info.virtual_size);
  }

  /* Refuse input known to be too long before writing any of it. */
  uint64_t len;
  if (input_length(&len) && len > info.virtual_size - offset) {
    vhd_close(img);
    return fail("%s: the input is %llu bytes but only %llu fit from offset %llu "
                "(virtual size %llu); nothing was written", path,
                (unsigned long long)len,
                (unsigned long long)(info.virtual_size - offset),
                (unsigned long long)offset, (unsigned long long)info.virtual_size);
  }

  /* Ctrl-C stops between chunks; what was written is then flushed, so the
   * image stays consistent. */
  install_interrupt_handler();
  int st = copy_in(path, img, offset, info.virtual_size);

  /* Success means durable: the flush and the close (which flushes the
   * metadata once more) must both succeed. */
  if (st == EXIT_OK) {
    r = vhd_flush(img);
    if (r < 0)
      st = fail_lib(path, r);
  }
  r = vhd_close(img);
  if (r < 0 && st == EXIT_OK)
    st = fail_lib(path, r);
  return st;
}

const struct command cmd_write = {
  .name = "write",
  .summary = "Write standard input into the virtual disk.",
  .synopsis = "vhdtool write [--offset N] FILE",
  .help =
    "Options:\n"
    "      --offset N   start at byte N of the virtual disk (default 0)\n"
    "  -h, --help       show this help\n"
    "\n"
    "N takes bytes or a K, M, G, T suffix. The image is opened read-write;\n"
    "blocks are allocated as needed in the top image of a chain (parents are\n"
    "never written). Writing zeros into an unallocated block allocates nothing.\n"
    "The exit status is 0 only after everything is flushed to stable storage.\n"
    "Input that runs past the end of the disk is an error: from a regular\n"
    "file it is refused before anything is written; from a pipe, what came\n"
    "before the end stays written and the error says how many bytes.\n",
  .run = run,
  .open_options = true,
};
