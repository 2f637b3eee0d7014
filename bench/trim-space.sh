#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# trim-space.sh: what trims give back, through nbdkit, for a dynamic VHD
# (2 MiB blocks), a dynamic VHDX (32 MiB blocks) and a raw file served by
# nbdkit's file plugin (the ceiling: its trim punches holes). Issue 19's
# host-side reproduction, without a guest:
#
#  1. 64 MiB of random data written at offset 0 (nbdcopy), flushed;
#  2. 16 partial trims of 2 MiB, one every 4 MiB from 1 MiB on (each
#     covers part of a VHDX block; halves of two VHD blocks), flushed;
#  3. [0, 32 MiB) trimmed (whole blocks in both formats, at the start of
#     the file: slots in the middle), flushed;
#  4. 32 MiB written at 128 MiB, flushed: a format that reuses freed
#     block slots keeps its file size.
#
# After each step: disk usage (st_blocks * 512) and file size. Prints a
# table; asserts nothing (bench/README.md). Needs nbdkit, nbdcopy, python3.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
VHDTOOL=${VHDTOOL:-$BUILD/tools/vhdtool}
NBD_PLUGIN=${NBD_PLUGIN:-$BUILD/nbd-plugin/nbdkit-vhd-plugin.so}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/trim-space.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
MiB=$((1024 * 1024))

head -c $((64 * MiB)) /dev/urandom > "$WORK/data.raw"

# The NBD requests of steps 2-4, through the project's own client.
cat > "$WORK/reqs.py" <<'PY'
import os, sys
sys.path.insert(0, sys.argv[1])
from nbdclient import Client
MiB = 1 << 20
c = Client(sys.argv[2])
step = sys.argv[3]
if step == "partial":
    for k in range(16):
        c.trim(2 * MiB, k * 4 * MiB + MiB)
elif step == "whole":
    c.trim(32 * MiB, 0)
elif step == "write":
    for k in range(32):
        c.pwrite(os.urandom(MiB), 128 * MiB + k * MiB)
c.flush()
c.close()
PY

serve() {   # serve FMT IMG COMMAND: run COMMAND with $unixsocket and $uri set
  local fmt=$1 img=$2 cmd=$3
  if [ "$fmt" = raw ]; then
    nbdkit -U - file "$img" --run "$cmd"
  else
    nbdkit -U - "$NBD_PLUGIN" file="$img" --run "$cmd"
  fi
}

measure() {   # measure FMT STEP IMG
  printf '%-5s %-22s %10s KiB used %12s bytes\n' "$1" "$2" \
    $(( $(stat -c %b "$3") * 512 / 1024 )) "$(stat -c %s "$3")"
}

for fmt in vhd vhdx raw; do
  img="$WORK/disk.$fmt"
  case $fmt in
    raw) truncate -s $((256 * MiB)) "$img" ;;
    *) "$VHDTOOL" create -f "$fmt" -t dynamic -s $((256 * MiB)) "$img" >/dev/null ;;
  esac
  serve "$fmt" "$img" "nbdcopy '$WORK/data.raw' \"\$uri\""
  measure "$fmt" "64 MiB written" "$img"
  serve "$fmt" "$img" "python3 '$WORK/reqs.py' '$ROOT/tests/nbd' \"\$unixsocket\" partial"
  measure "$fmt" "16 x 2 MiB trimmed" "$img"
  serve "$fmt" "$img" "python3 '$WORK/reqs.py' '$ROOT/tests/nbd' \"\$unixsocket\" whole"
  measure "$fmt" "0..32 MiB trimmed" "$img"
  serve "$fmt" "$img" "python3 '$WORK/reqs.py' '$ROOT/tests/nbd' \"\$unixsocket\" write"
  measure "$fmt" "32 MiB written at 128" "$img"
  if [ "$fmt" != raw ]; then
    "$VHDTOOL" check "$img" | tail -1
    command -v qemu-img >/dev/null && qemu-img check "$img" 2>&1 | tail -1
  fi
done
