#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# compact-bench.sh: vhdtool compact of a 2 GiB dynamic image whose blocks
# are all allocated and half of them hold zeros (every other block), VHD
# and VHDX, against the ceiling of a raw copy of the same file (cp and dd
# with fsync): nothing else compacts these formats on Linux to compare with.
#
# Each round copies the prepared image (not timed), syncs, then times one
# compact (which ends durable: vhd_compact flushes). Reported per round:
# wall time, the virtual disk rate (2 GiB / time) and the rate of the bytes
# the compact actually had to move; then the copies' times. The compacted
# image is checked against the model once (vhdtool read | cmp).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_DIR=${BENCH_DIR:-/var/tmp/libvhd-compact-bench}
BENCH_NAME=compact-bench
. "$HERE/common.sh"
ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-2048}
FORMATS=${FORMATS:-"vhd vhdx"}

[ -x "$VHDTOOL" ] || { echo "$0: build vhdtool first ($VHDTOOL)" >&2; exit 2; }
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"

now() { date +%s.%N; }
rate() { python3 -c "import sys; b,t=float(sys.argv[1]),float(sys.argv[2]); print('%.0f MiB/s' % (b/1048576/t))" "$1" "$2"; }
elapsed() { python3 -c "import sys; print('%.2f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }

# The model: random data in even 2 MiB blocks, zeros in odd ones.
if [ ! -f model.raw ] || [ "$(stat -c %s model.raw)" -ne $((SIZE_MIB * 1048576)) ]; then
  echo "making the ${SIZE_MIB} MiB model (half zeros)..."
  python3 - "$SIZE_MIB" <<'EOF'
import os, sys
mib = int(sys.argv[1])
with open('model.raw', 'wb') as f, open('full.raw', 'wb') as g:
    for b in range(mib // 2):
        data = os.urandom(2 << 20)
        g.write(data)
        f.write(data if b % 2 == 0 else bytes(2 << 20))
EOF
fi

for fmt in $FORMATS; do
  img=prepared.$fmt
  if [ ! -f "$img" ]; then
    echo "preparing $img (every block allocated, half of them zeros)..."
    "$VHDTOOL" create -f "$fmt" -s ${SIZE_MIB}M -b 2M "$img" > /dev/null
    "$VHDTOOL" write "$img" < full.raw
    "$VHDTOOL" write "$img" < model.raw
  fi
  size=$(stat -c %s "$img")
  for round in $(seq 1 "$ROUNDS"); do
    rm -f work.$fmt
    cp "$img" work.$fmt
    sync
    t0=$(now)
    "$VHDTOOL" compact --json work.$fmt > result.json
    t1=$(now)
    t=$(elapsed "$t0" "$t1")
    after=$(python3 -c 'import json; print(json.load(open("result.json"))["file-size-after"])')
    host=$(python3 -c 'import json; print(json.load(open("result.json"))["actual-size-after"])')
    freed=$(python3 -c 'import json; print(json.load(open("result.json"))["blocks-freed"])')
    # With every other block freed, both formats move every data block but
    # the first (about the whole compacted file).
    moved=$after
    echo "compact $fmt round $round: ${t} s, $freed blocks freed, file $size -> $after," \
         "host bytes after $host; virtual disk $(rate $((SIZE_MIB * 1048576)) "$t")," \
         "data moved ~$((moved / 1048576)) MiB"
    if [ "$round" -eq 1 ]; then
      "$VHDTOOL" read work.$fmt | cmp -s - model.raw && echo "  content checked: same as the model" \
        || { echo "  CONTENT DIFFERS" >&2; exit 1; }
    fi
  done
  for round in $(seq 1 "$ROUNDS"); do
    rm -f copy.$fmt
    sync
    t0=$(now); cp "$img" copy.$fmt; sync; t1=$(now)
    t=$(elapsed "$t0" "$t1")
    echo "ceiling cp+sync $fmt round $round: ${t} s, $(rate "$size" "$t")"
    rm -f copy.$fmt
    sync
    t0=$(now); dd if="$img" of=copy.$fmt bs=4M conv=fsync status=none; t1=$(now)
    t=$(elapsed "$t0" "$t1")
    echo "ceiling dd conv=fsync $fmt round $round: ${t} s, $(rate "$size" "$t")"
  done
  rm -f work.$fmt copy.$fmt
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
