/* SPDX-License-Identifier: BSD-3-Clause */
/* --json and --output=json|human: the one spelling rule of every command
 * that can print JSON (qemu-img's scripts say --output=json). */
#include <string.h>

#include "vhdtool.h"

bool take_output_option(const char *cmd, int c, const char *arg, bool *json)
{
  if (c == OPT_OUTPUT_JSON) {
    *json = true;
    return true;
  }
  if (strcmp(arg, "json") == 0)
    *json = true;
  else if (strcmp(arg, "human") == 0)
    *json = false;
  else {
    usage_error(cmd, "unknown output format '%s' (json or human)", arg);
    return false;
  }
  return true;
}
