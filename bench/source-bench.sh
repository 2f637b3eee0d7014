#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# source-bench.sh: reading the foreign formats (issue 17). vhdtool convert
# against qemu-img convert of the same file, in the same run: a
# stream-optimized VMDK to a dynamic VHDX, and a compressed qcow2 to a
# dynamic VHD. Both sources are made by qemu-img from a raw disk (default:
# bench/make-dataset's 2 GiB half-data disk; -s a smaller one for a quick
# run). Rounds interleave the tools, rotating which runs first; the source
# is re-read into the page cache before each run; outputs are removed and
# synced between runs. Each output is compared with the raw disk
# (qemu-img compare) once per tool. Reported: median and minimum wall time
# and median CPU time (bench-timer), and vhdtool's ratio to qemu-img.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=source-bench
. "$HERE/common.sh"
ROUNDS=5
SRC=

while getopts "r:s:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    s) SRC=$OPTARG ;;
    *) echo "usage: $0 [-r ROUNDS] [-s RAW]  (env BUILD, BENCH_DIR, VHDTOOL, TIMER)" >&2; exit 2 ;;
  esac
done
[ -x "$VHDTOOL" ] || die "no vhdtool at $VHDTOOL"
[ -x "$TIMER" ] || die "no bench-timer at $TIMER"
command -v qemu-img > /dev/null || die "no qemu-img"
mkdir -p "$BENCH_DIR"
if [ -z "$SRC" ]; then
  SRC=$BENCH_DIR/raw-2g.img
  "$HERE/make-dataset" "$SRC" > /dev/null || die "make-dataset failed"
fi
WORK=$(mktemp -d "$BENCH_DIR/source-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$SRC" "$WORK/in.vmdk"
qemu-img convert -c -f raw -O qcow2 "$SRC" "$WORK/in.qcow2"

# job NAME TOOL: sets CMD, IN, OUT, QFMT.
job() {
  case $1 in
    vmdk-vhdx) IN=$WORK/in.vmdk OUT=$WORK/out.vhdx QFMT=vhdx ;;
    qcow2-vhd) IN=$WORK/in.qcow2 OUT=$WORK/out.vhd QFMT=vpc ;;
  esac
  case $1:$2 in
    vmdk-vhdx:vhdtool) CMD=("$VHDTOOL" convert -O vhdx "$IN" "$OUT") ;;
    vmdk-vhdx:qemu) CMD=(qemu-img convert -f vmdk -O vhdx -o subformat=dynamic "$IN" "$OUT") ;;
    qcow2-vhd:vhdtool) CMD=("$VHDTOOL" convert -O vhd "$IN" "$OUT") ;;
    qcow2-vhd:qemu) CMD=(qemu-img convert -f qcow2 -O vpc -o subformat=dynamic,force_size=on
                         "$IN" "$OUT") ;;
  esac
}

declare -A CHECKED
for name in vmdk-vhdx qcow2-vhd; do
  tools=(vhdtool qemu)
  for ((round = 0; round < ROUNDS; round++)); do
    [ $((round % 2)) -eq 1 ] && tools=(qemu vhdtool) || tools=(vhdtool qemu)
    for tool in "${tools[@]}"; do
      job "$name" "$tool"
      rm -f "$OUT"; sync
      cat "$IN" > /dev/null
      "$TIMER" -o "$WORK/$name-$tool.times" -- "${CMD[@]}" > /dev/null || die "$name $tool failed"
      if [ -z "${CHECKED[$name-$tool]:-}" ]; then
        qemu-img compare -q -f raw -F "$QFMT" "$SRC" "$OUT" ||
          die "$name: $tool's output differs from the raw disk"
        CHECKED[$name-$tool]=1
      fi
    done
  done
done

echo "source: $SRC ($(stat -c %s "$SRC") bytes), $ROUNDS rounds, $(qemu-img --version | head -1)"
printf '%-10s %-8s %10s %10s %10s %8s\n' job tool "median ms" "min ms" "cpu ms" ratio
for name in vmdk-vhdx qcow2-vhd; do
  read -r qm qmin qc <<< "$(timer_stats "$WORK/$name-qemu.times")"
  for tool in vhdtool qemu; do
    read -r m mn c <<< "$(timer_stats "$WORK/$name-$tool.times")"
    printf '%-10s %-8s %10s %10s %10s %8s\n' "$name" "$tool" "$m" "$mn" "$c" \
      "$(awk -v a="$m" -v b="$qm" 'BEGIN { printf "%.2f", a / b }')"
  done
done
