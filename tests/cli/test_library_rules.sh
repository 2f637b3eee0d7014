#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Rules of the library's structure that a compiler does not check (issue
# 14), read from the sources:
# - lib/ops/ reaches a backend only through lib/io.c (io_* helpers,
#   io_wrap), never through `->ops->` itself: the helpers are where the
#   optional vhd_io_ops members get their defaults, and a direct call
#   crashed on a caller's backend without flush.
# - every source, build and script file says its licence in an SPDX line
#   (issue 15; scripts/add-spdx.sh adds what is missing). It needs git's
#   list of files, so outside a checkout (a package build from a tarball)
#   that check is skipped with the reason.
. "$(dirname "$0")/../interop/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)

hits=$(grep -n -- '->ops->' "$SRC"/lib/ops/*.c "$SRC"/lib/ops/*.h 2>/dev/null)
if [ -z "$hits" ]; then
  ok "lib/ops calls no backend member directly"
else
  not_ok "lib/ops calls backend members directly (use lib/io.c): $hits"
fi

if git -C "$SRC" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  if missing=$("$SRC/scripts/add-spdx.sh" --check 2>&1); then
    ok "every source file has its SPDX licence line"
  else
    not_ok "files without an SPDX licence line (run scripts/add-spdx.sh): $missing"
  fi
else
  echo "skip - the SPDX check needs a git checkout"
fi

finish
