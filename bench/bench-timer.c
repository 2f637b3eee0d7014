/* SPDX-License-Identifier: BSD-3-Clause */
/* bench-timer: run one command and report its wall time (CLOCK_MONOTONIC)
 * and the CPU time it and its children used.
 *
 *   bench-timer [-o FILE] [-s SYNCFILE] -- COMMAND [ARGS...]
 *
 * With -s, SYNCFILE is fdatasync()ed after the command exits and inside
 * the timed window: that makes a tool which leaves its output in the page
 * cache (qemu-img convert's default cache=unsafe) comparable with one that
 * makes its output durable before exiting (vhdtool).
 *
 * Appends "wall_ms user_ms sys_ms" (one line, milliseconds with three
 * decimals) to FILE, or prints it on stderr without -o. The command's own
 * stdout and stderr pass through untouched and its exit status becomes
 * ours, so a failing conversion fails the benchmark.
 *
 * Why a C helper and not `date +%s%N` in the script: date is the wall
 * clock (it jumps with NTP) and costs a fork on each side of the run, and
 * shells cannot read the child's rusage. */
#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double ms_between(const struct timespec *a, const struct timespec *b)
{
  return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static double tv_ms(const struct timeval *tv)
{
  return (double)tv->tv_sec * 1e3 + (double)tv->tv_usec / 1e3;
}

int main(int argc, char **argv)
{
  const char *out_path = NULL;
  const char *sync_path = NULL;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      out_path = argv[++i];
      continue;
    }
    if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
      sync_path = argv[++i];
      continue;
    }
    break;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: bench-timer [-o FILE] [-s SYNCFILE] -- COMMAND [ARGS...]\n");
    return 2;
  }

  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("bench-timer: fork");
    return 2;
  }
  if (pid == 0) {
    execvp(argv[i], &argv[i]);
    fprintf(stderr, "bench-timer: %s: %s\n", argv[i], strerror(errno));
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0) {
    if (errno != EINTR) {
      perror("bench-timer: wait4");
      return 2;
    }
  }
  if (sync_path && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    int fd = open(sync_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fdatasync(fd) < 0) {
      fprintf(stderr, "bench-timer: %s: %s\n", sync_path, strerror(errno));
      return 2;
    }
    close(fd);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);

  FILE *out = stderr;
  if (out_path && !(out = fopen(out_path, "a"))) {
    fprintf(stderr, "bench-timer: %s: %s\n", out_path, strerror(errno));
    return 2;
  }
  fprintf(out, "%.3f %.3f %.3f\n", ms_between(&t0, &t1), tv_ms(&ru.ru_utime),
          tv_ms(&ru.ru_stime));
  if (out != stderr && fclose(out) != 0) {
    fprintf(stderr, "bench-timer: %s: %s\n", out_path, strerror(errno));
    return 2;
  }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
