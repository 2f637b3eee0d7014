/* Running the helpers (dmsetup, nbdkit, nbd-client, modprobe). */
#define _GNU_SOURCE
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *find_program(const char *name)
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

int spawn_wait(const char *prog, char *const argv[], const char *stdin_text)
{
  int pipefd[2] = { -1, -1 };
  if (stdin_text && pipe2(pipefd, O_CLOEXEC) < 0)
    return fail("pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0)
    return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    if (stdin_text)
      dup2(pipefd[0], 0);
    execv(prog, argv);
    fprintf(stderr, "vhdboot-attach: %s: %s\n", prog, strerror(errno));
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
      return fail("waitpid: %s", strerror(errno));
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
