/* SPDX-License-Identifier: BSD-3-Clause */
/* vhdtool: entry point. Picks the subcommand and hands it the rest of the
 * command line; global options are only --help and --version. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vhdtool.h"

/* A write error on stdout (a full disk, a closed pipe) must not pass as
 * success, so every command's output is flushed and checked here. */
static int finish_stdout(int status)
{
  int err = 0;
  if (fflush(stdout) != 0)
    err = errno;
  else if (ferror(stdout))
    err = EIO;  /* an earlier buffered write failed; its errno is gone */
  /* A command that already failed has printed its one line. */
  if (err == 0 || status != EXIT_OK)
    return status;
  return fail("standard output: write error: %s", strerror(err));
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "vhdtool: missing command (try 'vhdtool help')\n");
    return EXIT_FAIL;
  }
  const char *name = argv[1];

  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    print_version(stdout);
    return finish_stdout(EXIT_OK);
  }
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
    print_general_help(stdout);
    return finish_stdout(EXIT_OK);
  }
  if (strcmp(name, "help") == 0) {
    if (argc > 3)
      return usage_error("help", "too many arguments");
    if (argc == 2) {
      print_general_help(stdout);
      return finish_stdout(EXIT_OK);
    }
    const struct command *cmd = find_command(argv[2]);
    if (!cmd)
      return fail("unknown command '%s' (try 'vhdtool help')", argv[2]);
    print_command_help(cmd, stdout);
    return finish_stdout(EXIT_OK);
  }

  const struct command *cmd = find_command(name);
  if (!cmd) {
    if (name[0] == '-')
      return fail("unknown option '%s' (try 'vhdtool help')", name);
    return fail("unknown command '%s' (try 'vhdtool help')", name);
  }
  return finish_stdout(cmd->run(argc - 1, argv + 1));
}
