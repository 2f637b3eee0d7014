/* SPDX-License-Identifier: BSD-3-Clause */
/* See attach_state.h. */
#include "attach_state.h"
#include "nbd_common.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void attach_run_dir(char *buf, size_t len)
{
  const char *own = getenv("VHDTOOL_RUN_DIR");
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (own && *own)
    snprintf(buf, len, "%s", own);
  else if (geteuid() != 0 && xdg && *xdg)
    snprintf(buf, len, "%s/vhdtool", xdg);
  else
    snprintf(buf, len, "/run/vhdtool");
}

void attach_state_path(const char *device, const char *name, char *buf, size_t len)
{
  char run[4096];
  attach_run_dir(run, sizeof run);
  snprintf(buf, len, "%s/%s%s%s", run, device, name ? "/" : "", name ? name : "");
}

static int write_text(const char *device, const char *name, const char *text)
{
  char path[4200];
  attach_state_path(device, name, path, sizeof path);
  FILE *f = fopen(path, "we");
  if (!f)
    return -1;
  int ok = fprintf(f, "%s\n", text) >= 0;
  if (fclose(f) != 0 || !ok)
    return -1;
  return 0;
}

static int read_text(const char *device, const char *name, char *buf, size_t len)
{
  char path[4200];
  attach_state_path(device, name, path, sizeof path);
  return nbd_read_line(path, buf, len);
}

int attach_state_write(const struct attachment *a)
{
  char run[4096], dir[4200];
  attach_run_dir(run, sizeof run);
  attach_state_path(a->device, NULL, dir, sizeof dir);
  if ((mkdir(run, 0700) < 0 && errno != EEXIST) || (mkdir(dir, 0700) < 0 && errno != EEXIST))
    return -1;
  if (write_text(a->device, "image", a->image) < 0 || write_text(a->device, "mode", a->mode) < 0)
    return -1;
  return 0;
}

int attach_state_read(const char *device, struct attachment *a)
{
  memset(a, 0, sizeof *a);
  snprintf(a->device, sizeof a->device, "%s", device);
  if (read_text(device, "image", a->image, sizeof a->image) < 0)
    return -1;
  if (read_text(device, "mode", a->mode, sizeof a->mode) < 0)
    snprintf(a->mode, sizeof a->mode, "?");
  char pid[32];
  if (read_text(device, "nbdkit.pid", pid, sizeof pid) == 0)
    a->nbdkit_pid = atoi(pid);
  return 0;
}

void attach_state_remove(const char *device)
{
  static const char *const names[] = { "image", "mode", "nbdkit.pid", "sock" };
  char path[4200];
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    attach_state_path(device, names[i], path, sizeof path);
    unlink(path);
  }
  attach_state_path(device, NULL, path, sizeof path);
  rmdir(path);
}

int attach_state_each(int (*fn)(const struct attachment *a, void *opaque), void *opaque)
{
  char run[4096];
  attach_run_dir(run, sizeof run);
  DIR *d = opendir(run);
  if (!d)
    return 0;
  int r = 0;
  struct dirent *e;
  while (r == 0 && (e = readdir(d)) != NULL) {
    struct attachment a;
    if (strncmp(e->d_name, "nbd", 3) == 0 && attach_state_read(e->d_name, &a) == 0)
      r = fn(&a, opaque);
  }
  closedir(d);
  return r;
}
