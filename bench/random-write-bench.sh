#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# random-write-bench.sh: N random 4 KiB writes (fixed seed) into a fresh,
# empty 2 GiB dynamic image, then one flush: libvhd (random-write-bench run)
# against qemu-io replaying the very same writes from a command file
# (random-write-bench script), with qemu's cache=writeback (page cache, like
# libvhd) and cache=none (O_DIRECT). Image creation is outside the timing;
# the whole process is timed for both tools (open, writes, flush, close).
# Afterwards the libvhd image must compare identical to each qemu image.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=random-write-bench
. "$HERE/common.sh"
RWB=${RWB:-$BUILD/bench/random-write-bench}
COUNT=5000
ROUNDS=3
SEED=20240601
SIZE=2G
FORMATS="vhd vhdx"
QEMU_MODES="writeback none"
VHDX_BLOCK=32M   # libvhd's VHDX default; qemu is given the same (its default would be 16M here)

usage() {
  cat <<EOF
usage: $0 [-n WRITES] [-r ROUNDS] [-S SEED] [-f "vhd vhdx"] [-c "writeback none"]
  -n N   writes per run (default $COUNT)        -r N  rounds (default $ROUNDS)
  -S N   seed (default $SEED)                   -f    formats (default "$FORMATS")
  -c     qemu-io cache modes (default "$QEMU_MODES")
environment: BENCH_DIR ($BENCH_DIR), BUILD ($BUILD), LIBVHD_REV (commit shown in the header)
EOF
}
while getopts "n:r:S:f:c:h" opt; do
  case $opt in
    n) COUNT=$OPTARG ;; r) ROUNDS=$OPTARG ;; S) SEED=$OPTARG ;;
    f) FORMATS=$OPTARG ;; c) QEMU_MODES=$OPTARG ;;
    h) usage; exit 0 ;; *) usage >&2; exit 2 ;;
  esac
done
[ -x "$RWB" ] || die "no $RWB (build the bench directory in $BUILD)"
[ -x "$TIMER" ] || die "no $TIMER"

WORK=$BENCH_DIR/rw-work
RESULTS=$BENCH_DIR/rw-results-$(date +%Y%m%d-%H%M%S)
rm -rf "$WORK"
mkdir -p "$WORK" "$RESULTS"
CMDS=$WORK/cmds.txt
"$RWB" script -n "$COUNT" -S "$SEED" -s "$SIZE" > "$CMDS"

qfmt() { case $1 in vhd) echo vpc ;; *) echo "$1" ;; esac; }
create_libvhd() {
  case $1 in
    vhd) "$RWB" create -f vhd -s "$SIZE" "$2" ;;
    vhdx) "$RWB" create -f vhdx -b "$VHDX_BLOCK" -s "$SIZE" "$2" ;;
  esac
}
create_qemu() {
  case $1 in
    vhd) qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$2" "$SIZE" ;;
    vhdx) qemu-img create -q -f vhdx -o subformat=dynamic,block_size=$VHDX_BLOCK "$2" "$SIZE" ;;
  esac
}

ACTIVE=
for fmt in $FORMATS; do
  if msg=$(create_libvhd "$fmt" "$WORK/probe.$fmt" 2>&1) &&
     msg=$("$RWB" run -n 16 -S "$SEED" -s "$SIZE" "$WORK/probe.$fmt" 2>&1); then
    ACTIVE="$ACTIVE $fmt"
  else
    echo "SKIPPED: $fmt random writes: libvhd cannot create/write $fmt yet: $msg"
  fi
  rm -f "$WORK/probe.$fmt"
done
[ -n "$ACTIVE" ] || die "nothing to run"

{
  echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC'), libvhd ${LIBVHD_REV:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}"
  echo "machine: $(nproc) vCPU, kernel $(uname -r), $(qemu-io --version | head -1)"
  echo "pattern: $COUNT writes of 4 KiB (0xab), seed $SEED, uniform over $SIZE, one flush; fresh image each run"
  echo "blocks:  VHD 2 MiB (both defaults); VHDX $VHDX_BLOCK (both)"
  echo "rounds:  $ROUNDS, interleaved; load $(cut -d' ' -f1-3 /proc/loadavg) at start"
} | tee "$RESULTS/header"

for ((round = 0; round < ROUNDS; round++)); do
  printf 'round %d/%d\r' $((round + 1)) "$ROUNDS" >&2
  for fmt in $ACTIVE; do
    img=$WORK/libvhd.$fmt
    create_libvhd "$fmt" "$img"
    sync
    "$TIMER" -o "$RESULTS/${fmt}_libvhd.times" -- \
      "$RWB" run -n "$COUNT" -S "$SEED" -s "$SIZE" "$img" >> "$RESULTS/${fmt}_libvhd.log"
    for mode in $QEMU_MODES; do
      q=$WORK/qemu-$mode.$fmt
      create_qemu "$fmt" "$q"
      sync
      "$TIMER" -o "$RESULTS/${fmt}_qemu-$mode.times" -- \
        qemu-io -f "$(qfmt "$fmt")" -t "$mode" "$q" < "$CMDS" > /dev/null
      # Same writes, same bytes: the two images must read the same.
      qemu-img compare -q -f "$(qfmt "$fmt")" -F "$(qfmt "$fmt")" "$img" "$q" ||
        die "round $round: $img and $q differ"
      echo "$fmt qemu-$mode $(stat -c '%s %b' "$q")" >> "$RESULTS/sizes"
      rm -f "$q"
    done
    echo "$fmt libvhd $(stat -c '%s %b' "$img")" >> "$RESULTS/sizes"
    rm -f "$img"
  done
done
echo >&2

median_min() {   # file -> "median_ms min_ms"
  awk '{print $1}' "$1" | sort -g | awk '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1] }'
}
{
  echo
  echo "| format | tool | median ms | IOPS (median) | IOPS (best) | libvhd/qemu IOPS, median (best) |"
  echo "|---|---|---|---|---|---|"
  for fmt in $ACTIVE; do
    read -r lmed lmin < <(median_min "$RESULTS/${fmt}_libvhd.times")
    for t in libvhd $(for m in $QEMU_MODES; do echo "qemu-$m"; done); do
      read -r med min < <(median_min "$RESULTS/${fmt}_$t.times")
      ratio=
      [ "$t" != libvhd ] && ratio=$(awk -v a="$med" -v b="$lmed" -v c="$min" -v d="$lmin" \
        'BEGIN { printf "%.1f (%.1f)", a / b, c / d }')
      name=$t; [ "$t" != libvhd ] && name="qemu-io -t ${t#qemu-}"
      awk -v f="$fmt" -v n="$name" -v med="$med" -v min="$min" -v c="$COUNT" -v r="$ratio" \
        'BEGIN { printf "| %s | %s | %.0f | %.0f | %.0f | %s |\n", f, n, med, c * 1000 / med, c * 1000 / min, r }'
    done
  done
  echo
  echo "libvhd's own breakdown (last round):"
  for fmt in $ACTIVE; do echo "  $fmt: $(tail -1 "$RESULTS/${fmt}_libvhd.log")"; done
  echo "file sizes after the run (apparent bytes, 512-byte blocks), last round:"
  tail -n $(( $(echo $ACTIVE | wc -w) * ($(echo $QEMU_MODES | wc -w) + 1) )) "$RESULTS/sizes" | sed 's/^/  /'
  echo "checks: in every round the libvhd image compared identical to each qemu image."
} | tee "$RESULTS/summary"
