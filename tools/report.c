/* SPDX-License-Identifier: BSD-3-Clause */
/* Failure and warning lines. The contract with scripts: a failure is a
 * non-zero exit plus exactly one line on stderr naming the file and the
 * problem, so messages are flattened to one line here, in one place. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vhdtool.h"

void print_line(const char *prefix, const char *msg)
{
  char buf[2048];
  size_t n = 0;
  for (const char *c = msg; *c && n + 1 < sizeof buf; c++)
    buf[n++] = (*c == '\n' || *c == '\r') ? ' ' : *c;
  while (n > 0 && buf[n - 1] == ' ')
    n--;
  buf[n] = '\0';
  fflush(stdout);  /* keep the order sensible when both go to a terminal */
  fprintf(stderr, "%s%s\n", prefix, buf);
}

int fail(const char *fmt, ...)
{
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  print_line("vhdtool: ", msg);
  return EXIT_FAIL;
}

int fail_lib(const char *path, int err)
{
  const char *msg = vhd_last_error();
  if (msg && *msg)
    return fail("%s", msg);
  if (err < 0)
    err = -err;
  return fail("%s: %s", path, strerror(err ? err : EIO));
}

void warn(const char *fmt, ...)
{
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  print_line("vhdtool: warning: ", msg);
}
