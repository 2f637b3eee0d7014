/* SPDX-License-Identifier: BSD-3-Clause */
/* See nbd_common.h. */
#define _GNU_SOURCE
#include "nbd_common.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/nbd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(int ms)
{
  struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
  nanosleep(&t, NULL);
}

const char *nbd_find_program(const char *name)
{
  static char found[512];
  const char *path = getenv("PATH");
  char dirs[1024];
  snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/bin:/sbin:/bin", path ? path : "");
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    snprintf(found, sizeof found, "%s/%s", d, name);
    if (access(found, X_OK) == 0)
      return found;
  }
  return NULL;
}

int nbd_spawn_wait(const char *prog, char *const argv[], const char *stdin_text,
                   bool mute_stdout)
{
  int pipefd[2] = { -1, -1 };
  if (stdin_text && pipe2(pipefd, O_CLOEXEC) < 0)
    return -1;
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (stdin_text)
      dup2(pipefd[0], 0);
    int null = mute_stdout ? open("/dev/null", O_WRONLY) : -1;
    if (null >= 0)
      dup2(null, 1);
    execv(prog, argv);
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, prog, strerror(errno));
    _exit(127);
  }
  if (stdin_text) {
    close(pipefd[0]);
    size_t len = strlen(stdin_text), done = 0;
    signal(SIGPIPE, SIG_IGN);
    while (done < len) {
      ssize_t n = write(pipefd[1], stdin_text + done, len - done);
      if (n <= 0)
        break;
      done += (size_t)n;
    }
    close(pipefd[1]);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int nbd_read_line(const char *path, char *buf, size_t len)
{
  FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  bool ok = fgets(buf, (int)len, f) != NULL;
  fclose(f);
  if (!ok)
    return -1;
  buf[strcspn(buf, "\n")] = '\0';
  return 0;
}

bool nbd_connected(const char *name)
{
  char path[96];
  snprintf(path, sizeof path, "/sys/block/%s/pid", name);
  return access(path, F_OK) == 0;
}

int nbd_free_device(char *name, size_t len)
{
  for (int i = 0; i < 256; i++) {
    char dev[32], path[96];
    snprintf(dev, sizeof dev, "nbd%d", i);
    snprintf(path, sizeof path, "/sys/block/%s", dev);
    if (access(path, F_OK) != 0) {
      errno = i == 0 ? ENODEV : EBUSY;
      return -1;
    }
    if (nbd_connected(dev))
      continue;
    snprintf(name, len, "%s", dev);
    return 0;
  }
  errno = EBUSY;
  return -1;
}

bool nbd_wait_for(const char *path, int ms)
{
  for (int t = 0; t < ms; t += 20) {
    if (access(path, F_OK) == 0)
      return true;
    pause_ms(20);
  }
  return access(path, F_OK) == 0;
}

int nbd_disconnect(const char *name)
{
  char node[96];
  snprintf(node, sizeof node, "/dev/%s", name);
  sync();
  int fd = open(node, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return -1;
  (void)ioctl(fd, BLKFLSBUF, 0);  /* best effort: the disconnect flushes too */
  int rc = ioctl(fd, NBD_DISCONNECT);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc < 0 ? -1 : 0;
}

bool nbd_process_gone(pid_t pid)
{
  char path[64], stat[256];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f)
    return true;
  bool got = fgets(stat, sizeof stat, f) != NULL;
  fclose(f);
  if (!got)
    return true;
  const char *paren = strrchr(stat, ')');
  return paren && paren[1] == ' ' && paren[2] == 'Z';
}

int nbd_stop_server(pid_t pid, int ms)
{
  if (pid <= 1 || kill(pid, SIGTERM) < 0)
    return 0;
  for (int t = 0; t < ms; t += 50) {
    if (nbd_process_gone(pid))
      return 0;
    pause_ms(50);
  }
  errno = ETIMEDOUT;
  return -1;
}

/* What a virtio disk gets by default (BLK_DEF_MAX_SECTORS). */
#define REQUEST_KB 1280u

static int read_kb(const char *path, unsigned *kb)
{
  FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  int n = fscanf(f, "%u", kb);
  fclose(f);
  if (n != 1) {
    errno = EIO;
    return -1;
  }
  return 0;
}

int nbd_raise_request_size(const char *name)
{
  char hw_path[96], path[96];
  unsigned hw, now;
  snprintf(hw_path, sizeof hw_path, "/sys/block/%s/queue/max_hw_sectors_kb", name);
  snprintf(path, sizeof path, "/sys/block/%s/queue/max_sectors_kb", name);
  if (read_kb(hw_path, &hw) < 0 || read_kb(path, &now) < 0)
    return -1;
  unsigned want = hw < REQUEST_KB ? hw : REQUEST_KB;
  if (now >= want)
    return 0;
  FILE *f = fopen(path, "we");
  if (!f)
    return -1;
  int ok = fprintf(f, "%u\n", want) > 0;
  if (fclose(f) != 0 || !ok)
    return -1;
  return 0;
}
