/* SPDX-License-Identifier: BSD-3-Clause */
/* A program that uses an installed libvhd the way a user's would: the
 * header's version macros and vhd_version(), printed for the caller to
 * compare. Built by tests/cli/test_install.sh and scripts/packages-smoke.sh
 * with pkg-config and with this directory's CMakeLists.txt. */
#include <stdio.h>
#include <vhd.h>

int main(void)
{
  if (LIBVHD_VERSION_MAJOR < 0)
    return 1;
  puts(vhd_version());
  return 0;
}
