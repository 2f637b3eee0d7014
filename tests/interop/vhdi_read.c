/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdi_read: the libvhdi oracle. Writes the whole virtual disk of a VHD or
 * VHDX image to stdout, as libvhdi reads it, with the parent chain given on
 * the command line:
 *
 *     vhdi_read CHILD [PARENT [GRANDPARENT...]]
 *
 * libvhdi does not look for parents itself; each file named after the first
 * is set as the parent of the one before it. Exit 0 on success, 1 with a
 * message on stderr otherwise. */
#include <libvhdi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1024 * 1024)

static void fail(const char *what, const char *path, libvhdi_error_t *err)
{
  char msg[1024] = "";
  if (err) {
    libvhdi_error_sprint(err, msg, sizeof msg);
    libvhdi_error_free(&err);
  }
  fprintf(stderr, "vhdi_read: %s: %s: %s\n", path, what, msg);
  exit(1);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: vhdi_read CHILD [PARENT [GRANDPARENT...]]\n");
    return 1;
  }
  int n = argc - 1;
  libvhdi_file_t **files = calloc((size_t)n, sizeof *files);
  if (!files)
    return 1;
  libvhdi_error_t *err = NULL;

  /* Open from the base upwards so each parent is ready before its child
   * is linked to it. */
  for (int i = n - 1; i >= 0; i--) {
    const char *path = argv[1 + i];
    if (libvhdi_file_initialize(&files[i], &err) != 1)
      fail("initialize", path, err);
    if (libvhdi_file_open(files[i], path, LIBVHDI_OPEN_READ, &err) != 1)
      fail("open", path, err);
    if (i + 1 < n && libvhdi_file_set_parent_file(files[i], files[i + 1], &err) != 1)
      fail("set parent", path, err);
  }

  size64_t size = 0;
  if (libvhdi_file_get_media_size(files[0], &size, &err) != 1)
    fail("media size", argv[1], err);

  char *buf = malloc(CHUNK);
  if (!buf)
    return 1;
  for (size64_t off = 0; off < size; ) {
    size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
    ssize_t got = libvhdi_file_read_buffer_at_offset(files[0], buf, want, (off64_t)off, &err);
    if (got < 0 || (size_t)got != want)
      fail("read", argv[1], err);
    if (fwrite(buf, 1, want, stdout) != want) {
      perror("vhdi_read: stdout");
      return 1;
    }
    off += want;
  }
  if (fflush(stdout) != 0) {
    perror("vhdi_read: stdout");
    return 1;
  }

  free(buf);
  for (int i = 0; i < n; i++) {
    libvhdi_file_close(files[i], NULL);
    libvhdi_file_free(&files[i], NULL);
  }
  free(files);
  return 0;
}
