/* SPDX-License-Identifier: BSD-3-Clause */
/* Help texts, version, and the one-line usage errors. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vhdtool.h"

const struct command *const commands[] = {
  &cmd_create, &cmd_info, &cmd_convert, &cmd_read, &cmd_write, &cmd_check, &cmd_snapshot, &cmd_merge, &cmd_compact, &cmd_set_parent, &cmd_reset_id, &cmd_map, &cmd_resize, &cmd_boot_prepare, &cmd_attach, &cmd_detach, &cmd_compare, &cmd_measure, NULL,
};

const struct command *find_command(const char *name)
{
  for (size_t i = 0; commands[i]; i++)
    if (strcmp(commands[i]->name, name) == 0)
      return commands[i];
  return NULL;
}

void print_version(FILE *out)
{
  /* The tool and the library it runs with may differ after an upgrade of
   * one of them; show both. */
  fprintf(out, "vhdtool %s (libvhd %s)\n", LIBVHD_VERSION_STRING, vhd_version());
}

void print_general_help(FILE *out)
{
  fprintf(out,
          "Usage: vhdtool COMMAND [OPTIONS] ARGS...\n"
          "       vhdtool help [COMMAND]\n"
          "       vhdtool --version\n"
          "\n"
          "Create, inspect, convert, read, write and check VHD and VHDX images.\n"
          "\n"
          "Commands:\n");
  for (size_t i = 0; commands[i]; i++)
    fprintf(out, "  %-9s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out,
          "\n"
          "Sizes take bytes or a K, M, G, T suffix (powers of 1024; KiB, MiB, ... and\n"
          "lower case work too). Run 'vhdtool help COMMAND' for a command's options.\n"
          "Every failure exits non-zero with one line on standard error.\n");
}

void print_command_help(const struct command *cmd, FILE *out)
{
  fprintf(out, "Usage: %s\n\n%s\n\n%s%s", cmd->synopsis, cmd->summary, cmd->help,
          cmd->open_options ? open_options_help : "");
}

int usage_error(const char *cmd, const char *fmt, ...)
{
  char msg[1024];
  char line[1280];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(line, sizeof line, "%s (try 'vhdtool help %s')", msg, cmd);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "vhdtool %s: ", cmd);
  print_line(prefix, line);
  return EXIT_FAIL;
}

/* Names of the long options that start with the text of word ("--fo"),
 * written into buf as "--force, --format"; returns how many there are. */
static int matching_options(const char *word, const struct option *options, char *buf,
                            size_t len)
{
  const char *name = word + 2;
  size_t n = strcspn(name, "=");
  int count = 0;
  buf[0] = '\0';
  for (const struct option *o = options; o && o->name; o++) {
    if (strncmp(o->name, name, n) != 0)
      continue;
    size_t used = strlen(buf);
    snprintf(buf + used, len - used, "%s--%s", count ? ", " : "", o->name);
    count++;
  }
  return count;
}

int option_error(const char *cmd, int c, char **argv, const struct option *options)
{
  /* getopt leaves the offending word at argv[optind - 1]; for a short
   * option inside a group ("-xq") optopt is more precise. */
  const char *word = argv[optind - 1];
  bool short_opt = optopt > 0 && optopt < 128 && word[1] != '-';
  if (c == ':') {
    if (short_opt)
      return usage_error(cmd, "option '-%c' needs a value", optopt);
    return usage_error(cmd, "option '%s' needs a value", word);
  }
  if (short_opt)
    return usage_error(cmd, "unknown option '-%c'", optopt);
  if (word[0] == '-' && word[1] == '-') {
    char names[256];
    int n = matching_options(word, options, names, sizeof names);
    if (n > 1)
      return usage_error(cmd, "ambiguous option '%s' (could be %s)", word, names);
    if (n == 1 && strchr(word, '='))
      return usage_error(cmd, "option '%s' takes no value", names);
  }
  return usage_error(cmd, "unknown option '%s'", word);
}
