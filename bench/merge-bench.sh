#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# merge-bench.sh: vhdtool merge of a 2 GiB differencing child (every other
# block written: 1 GiB of data) into its parent (whose first half holds
# data), VHD and VHDX, timed, with the throughput of the bytes the merge
# copies; and, as the ceiling, a raw copy of the same bytes with dd and
# with cp (page-cached source, output made durable like the merge's). No peer
# merges VHD or VHDX on Linux (qemu-img commit refuses vpc and vhdx
# backing chains), so the raw copy is the only comparison.
#
# Each round copies a pristine parent and child (outside the timing), reads
# them into the page cache (the raw copy reads cached data too), runs the
# merge, then checks the merged parent against the child's content read
# before the merge (sha256 of `vhdtool read`). Not part of the tests.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=merge-bench
. "$HERE/common.sh"
BENCH_DIR=$BENCH_DIR/merge
ROUNDS=${ROUNDS:-3}
FORMATS=${FORMATS:-"vhd vhdx"}
SIZE_MIB=2048
BLOCK_MIB=2        # both formats, so "every other block" is the same bytes

[ -x "$VHDTOOL" ] || { echo "$0: no vhdtool at $VHDTOOL (set VHDTOOL or BUILD)" >&2; exit 1; }
mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"

now_ns() { date +%s%N; }
# median of the arguments (numbers)
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
best() { printf '%s\n' "$@" | sort -n | head -1; }
mib_s() { awk -v b="$1" -v ns="$2" 'BEGIN {printf "%.0f", b / 1048576 / (ns / 1e9)}'; }
secs() { awk -v ns="$1" 'BEGIN {printf "%.2f", ns / 1e9}'; }

# One 2 MiB chunk of random data per written block would make the data
# compressible by nothing and distinct per block; 16 distinct chunks are
# enough (no format deduplicates).
if [ ! -f chunks.bin ]; then
  head -c $((16 * BLOCK_MIB * 1048576)) /dev/urandom > chunks.bin
fi
chunk() { dd if=chunks.bin bs=${BLOCK_MIB}M skip=$(($1 % 16)) count=1 status=none; }

# pristine/parent.EXT and pristine/child.EXT, built once; each round works
# on copies in work/ under the same names, which the child's relative
# locator finds.
make_pair() {
  local ext=$1 i
  [ -f pristine/child.$ext ] && return 0
  echo "# building the $ext parent and child (once)" >&2
  mkdir -p pristine
  rm -f pristine/*.$ext pristine/child.$ext.tmp
  "$VHDTOOL" create -s ${SIZE_MIB}M -b ${BLOCK_MIB}M pristine/parent.$ext
  # Parent: data in its first half.
  for ((i = 0; i < SIZE_MIB / BLOCK_MIB / 2; i++)); do
    chunk $((i + 7)) | "$VHDTOOL" write --offset $((i * BLOCK_MIB))M pristine/parent.$ext
  done
  "$VHDTOOL" snapshot pristine/parent.$ext pristine/child.$ext.tmp
  # Child: every other block over the whole disk.
  for ((i = 0; i < SIZE_MIB / BLOCK_MIB; i += 2)); do
    chunk $i | "$VHDTOOL" write --offset $((i * BLOCK_MIB))M pristine/child.$ext.tmp
  done
  "$VHDTOOL" read pristine/child.$ext.tmp | sha256sum | cut -d' ' -f1 > pristine/expected.$ext
  mv pristine/child.$ext.tmp pristine/child.$ext
}

DATA_BYTES=$((SIZE_MIB / BLOCK_MIB / 2 * BLOCK_MIB * 1048576))
if [ ! -f raw-source.bin ]; then
  for ((i = 0; i < SIZE_MIB / BLOCK_MIB / 2; i++)); do chunk $i; done > raw-source.bin
fi

echo "| operation | bytes copied | median s | best s | median MiB/s | best MiB/s |"
echo "|---|---|---|---|---|---|"
for ext in $FORMATS; do
  make_pair "$ext"
  times=()
  for ((r = 1; r <= ROUNDS; r++)); do
    rm -rf work && mkdir work
    cp --sparse=always pristine/parent.$ext pristine/child.$ext work/
    cat work/* > /dev/null   # in the page cache, like the raw copy's source
    sync
    t0=$(now_ns)
    "$VHDTOOL" merge work/child.$ext > /dev/null
    t1=$(now_ns)
    times+=($((t1 - t0)))
    got=$("$VHDTOOL" read work/parent.$ext | sha256sum | cut -d' ' -f1)
    [ "$got" = "$(cat pristine/expected.$ext)" ] || { echo "$0: round $r: merged $ext parent differs" >&2; exit 1; }
  done
  m=$(median "${times[@]}"); b=$(best "${times[@]}")
  echo "| merge $ext | $DATA_BYTES | $(secs $m) | $(secs $b) | $(mib_s $DATA_BYTES $m) | $(mib_s $DATA_BYTES $b) |"
done

# The ceiling: the same bytes copied raw and made durable, by dd in 2 MiB
# writes (the merge's own I/O pattern: read, then write, a block at a time)
# and by cp (copy_file_range, the kernel's fastest copy), then fsync.
for tool in dd cp; do
  times=()
  for ((r = 1; r <= ROUNDS; r++)); do
    rm -f raw-copy.bin
    cat raw-source.bin > /dev/null
    sync
    t0=$(now_ns)
    if [ $tool = dd ]; then
      dd if=raw-source.bin of=raw-copy.bin bs=${BLOCK_MIB}M conv=fdatasync status=none
    else
      cp raw-source.bin raw-copy.bin && sync raw-copy.bin
    fi
    t1=$(now_ns)
    times+=($((t1 - t0)))
  done
  m=$(median "${times[@]}"); b=$(best "${times[@]}")
  echo "| raw copy ($tool + fsync) | $DATA_BYTES | $(secs $m) | $(secs $b) | $(mib_s $DATA_BYTES $m) | $(mib_s $DATA_BYTES $b) |"
done
rm -rf raw-copy.bin work
