#!/bin/bash
# Rules of the library's structure that a compiler does not check (issue
# 14), read from the sources:
# - lib/ops/ reaches a backend only through lib/io.c (io_* helpers,
#   io_wrap), never through `->ops->` itself: the helpers are where the
#   optional vhd_io_ops members get their defaults, and a direct call
#   crashed on a caller's backend without flush.
. "$(dirname "$0")/../interop/common.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)

hits=$(grep -n -- '->ops->' "$SRC"/lib/ops/*.c "$SRC"/lib/ops/*.h 2>/dev/null)
if [ -z "$hits" ]; then
  ok "lib/ops calls no backend member directly"
else
  not_ok "lib/ops calls backend members directly (use lib/io.c): $hits"
fi

finish
