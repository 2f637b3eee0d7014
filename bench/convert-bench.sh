#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# convert-bench.sh: vhdtool convert against qemu-img convert, raw <-> dynamic
# VHD (and VHDX when vhdtool supports it), on the 2 GiB half-data image made
# by bench/make-dataset. See bench/README.md for what is measured and why.
#
# Method (shared/reference/nbdkit-plugin.md section 2.1): every command runs
# once per round, rounds interleave the tools (order rotates each round so
# no tool always runs first), warm-up rounds are not counted, the input is
# re-read into the page cache right before each timed run, outputs are
# deleted and dirty data synced before the next run. Reported: median and
# minimum wall time (CLOCK_MONOTONIC, bench-timer) and median CPU time.
# Every vhdtool output is checked in every round; qemu-img outputs once.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=convert-bench
. "$HERE/common.sh"
NOSYNC=${NOSYNC:-$BUILD/bench/nosync.so}
QEMU_IMG=${QEMU_IMG:-qemu-img}
ROUNDS=5
WARMUP=1
OPS="vhd.to vhd.from vhdx.to vhdx.from"
QEMU_SYNC=both      # no: as is; yes: made durable (vhdtool --sync, qemu-img + fdatasync); both
FROM_INPUT=vhdtool  # which tool's image the *.from operations read (both tools read the same file)
SRC=
DIAG_NOSYNC=
declare -A EXTRA    # -x NAME=PATH: more vhdtool builds to compare (A/B a change)
EXTRA_NAMES=

usage() {
  cat <<EOF
usage: $0 [options]
  -r N            timed rounds (default $ROUNDS)
  -w N            warm-up rounds, not counted (default $WARMUP)
  -o "OPS"        operations among: vhd.to vhd.from vhdx.to vhdx.from (default all)
  -q no|yes|both  durability: both tools as is, with no fdatasync of the output (vhdtool's
                  default, qemu-img's cache=unsafe) (no); the output made durable inside
                  the timing: vhdtool --sync, qemu-img followed by fdatasync (yes); or
                  both (default $QEMU_SYNC)
  -i vhdtool|qemu which tool's VHD/VHDX the *.from operations read (default $FROM_INPUT)
  -s FILE         raw source (default: \$BENCH_DIR/raw-2g.img, made by make-dataset)
  -n              diagnostic row: vhdtool --sync with fsync/fdatasync disabled
                  (LD_PRELOAD nosync.so), to measure what the --sync flushes cost
  -x NAME=PATH    also run the vhdtool at PATH as tool x-NAME (repeatable), checked
                  like vhdtool: to A/B a library change in the same interleaved run
environment: BENCH_DIR ($BENCH_DIR), BUILD ($BUILD), LIBVHD_REV (commit shown in the header), VHDTOOL, TIMER, QEMU_IMG
EOF
}

while getopts "r:w:o:q:i:s:nx:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    w) WARMUP=$OPTARG ;;
    o) OPS=$OPTARG ;;
    q) QEMU_SYNC=$OPTARG ;;
    i) FROM_INPUT=$OPTARG ;;
    s) SRC=$OPTARG ;;
    n) DIAG_NOSYNC=1 ;;
    x) name=${OPTARG%%=*}
       case $name in ""|*[!A-Za-z0-9_-]*) echo "-x takes NAME=PATH, NAME of letters, digits, - and _" >&2; exit 2 ;; esac
       [ -x "${OPTARG#*=}" ] || { echo "-x $OPTARG: not an executable" >&2; exit 2; }
       EXTRA[$name]=${OPTARG#*=}; EXTRA_NAMES="$EXTRA_NAMES x-$name" ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case $QEMU_SYNC in no|yes|both) ;; *) echo "-q takes no, yes or both" >&2; exit 2 ;; esac
case $FROM_INPUT in vhdtool|qemu) ;; *) echo "-i takes vhdtool or qemu" >&2; exit 2 ;; esac

[ -x "$VHDTOOL" ] || die "no vhdtool at $VHDTOOL (cmake -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2)"
[ -x "$TIMER" ] || die "no bench-timer at $TIMER (build the bench directory)"
[ -z "$DIAG_NOSYNC" ] || [ -f "$NOSYNC" ] || die "no $NOSYNC for -n (build the bench directory)"
command -v "$QEMU_IMG" >/dev/null || die "no qemu-img"

mkdir -p "$BENCH_DIR"
if [ -z "$SRC" ]; then
  SRC=$BENCH_DIR/raw-2g.img
  SRC_SHA=$("$HERE/make-dataset" "$SRC") || die "make-dataset failed"
else
  SRC_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
fi
SRC_SIZE=$(stat -c %s "$SRC")
WORK=$BENCH_DIR/work
RESULTS=$BENCH_DIR/results-$(date +%Y%m%d-%H%M%S)
rm -rf "$WORK"
mkdir -p "$WORK" "$RESULTS"

warm() { cat "$@" > /dev/null; }
apparent() { stat -c %s "$1"; }
on_disk() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }

# Virtual size as libvhdi sees it (an oracle independent of both tools;
# qemu 7.2 derives a VHD's size from CHS for most creators, see
# nbdkit-plugin.md 2.5).
libvhdi_size() {
  command -v vhdiinfo >/dev/null || return 0
  vhdiinfo "$1" 2>/dev/null | sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p' | head -1
}

qemu_fmt() { case $1 in vhd) echo vpc ;; vhdx) echo vhdx ;; esac; }

# Check an image made from SRC: same content (qemu-img compare) and the
# exact size (libvhdi when available, else qemu-img info).
check_image() {
  local fmt=$1 img=$2 out size
  out=$("$QEMU_IMG" compare -f raw -F "$(qemu_fmt "$fmt")" "$SRC" "$img" 2>&1) ||
    { echo "$out" >&2; return 1; }
  case $out in *"Images are identical"*) ;; *) echo "$out" >&2; return 1 ;; esac
  case $out in *"size mismatch"*) echo "$img: qemu-img compare: $out" >&2; return 1 ;; esac
  size=$(libvhdi_size "$img")
  [ -n "$size" ] || size=$("$QEMU_IMG" info -f "$(qemu_fmt "$fmt")" --output=json "$img" |
                          awk -F'[:,]' '/"virtual-size"/ {gsub(/ /, "", $2); print $2; exit}')
  [ "$size" = "$SRC_SIZE" ] || { echo "$img: virtual size $size, source $SRC_SIZE" >&2; return 1; }
}

check_raw() {
  cmp "$SRC" "$1" >&2 || return 1
}

# --- which formats can vhdtool write? -----------------------------------------
PROBE=$WORK/probe.raw
head -c $((4 << 20)) "$SRC" > "$PROBE"
FORMATS=
for fmt in vhd vhdx; do
  case " $OPS " in *" $fmt."*) ;; *) continue ;; esac
  if msg=$("$VHDTOOL" convert -O "$fmt" --force "$PROBE" "$WORK/probe.$fmt" 2>&1); then
    FORMATS="$FORMATS $fmt"
  else
    [ "$fmt" = vhd ] && die "vhdtool convert -O vhd fails, nothing to measure: $msg"
    echo "SKIPPED: VHDX benchmarks: \`vhdtool convert -O vhdx\` failed: $msg"
    echo "SKIPPED: VHDX: skipped because vhdtool cannot write VHDX yet: $msg" >> "$RESULTS/skipped"
  fi
  rm -f "$WORK/probe.$fmt"
done
rm -f "$PROBE"

# --- inputs of the *.from operations ------------------------------------------
# Both tools read the same file. By default it is vhdtool's own output, which
# makes vhdtool's *.from run the round trip the brief asks to verify; qemu-img
# must see the right size in it, else qemu's image is used instead.
declare -A FROM_IMG
for fmt in $FORMATS; do
  case " $OPS " in *" $fmt.from "*) ;; *) continue ;; esac
  v=$WORK/in-vhdtool.$fmt
  q=$WORK/in-qemu.$fmt
  "$VHDTOOL" convert -O "$fmt" -t dynamic --force "$SRC" "$v"
  check_image "$fmt" "$v" || die "$v: vhdtool's $fmt output differs from the source"
  if [ "$fmt" = vhd ]; then
    "$QEMU_IMG" convert -f raw -O vpc -o subformat=dynamic,force_size=on "$SRC" "$q"
  else
    "$QEMU_IMG" convert -f raw -O vhdx -o subformat=dynamic "$SRC" "$q"
  fi
  qsize=$("$QEMU_IMG" info -f "$(qemu_fmt "$fmt")" --output=json "$v" |
          awk -F'[:,]' '/"virtual-size"/ {gsub(/ /, "", $2); print $2; exit}')
  if [ "$FROM_INPUT" = vhdtool ] && [ "$qsize" = "$SRC_SIZE" ]; then
    FROM_IMG[$fmt]=$v
    rm -f "$q"
  else
    [ "$FROM_INPUT" = vhdtool ] &&
      note "qemu-img sees $v as $qsize bytes, not $SRC_SIZE: $fmt.from reads qemu-img's image instead"
    FROM_IMG[$fmt]=$q
    # vhdtool's own round trip is still checked once.
    "$VHDTOOL" convert -O raw --force "$v" "$WORK/rt.raw"
    check_raw "$WORK/rt.raw" || die "vhdtool round trip $fmt -> raw differs from the source"
    rm -f "$WORK/rt.raw" "$v"
  fi
done

# --- the commands -------------------------------------------------------------
# A job is op:tool. tools: vhdtool (as is: no flush), vhdtool+sync
# (--sync), vhdtool-nosync (diagnostic), qemu (as is), qemu+sync (plus
# fdatasync). The first vhdtool row is the reference of the ratios.
case $QEMU_SYNC in
  no) VTOOLS=vhdtool; QTOOLS="qemu" ;;
  yes) VTOOLS=vhdtool+sync; QTOOLS="qemu+sync" ;;
  both) VTOOLS="vhdtool vhdtool+sync"; QTOOLS="qemu qemu+sync" ;;
esac
[ -n "$DIAG_NOSYNC" ] && VTOOLS="$VTOOLS vhdtool-nosync"
VTOOLS="$VTOOLS$EXTRA_NAMES"

JOBS=()
for op in $OPS; do
  fmt=${op%%.*}
  case " $FORMATS " in *" $fmt "*) ;; *) continue ;; esac
  for t in $VTOOLS $QTOOLS; do JOBS+=("$op:$t"); done
done
[ ${#JOBS[@]} -gt 0 ] || die "nothing to run"

# Sets CMD (array), IN (file to warm), OUT, KIND (image or raw) for a job.
job_setup() {
  local op=${1%%:*} tool=${1#*:} fmt=${1%%.*}
  local dir=${op#*.} vt=()
  case $tool in
    vhdtool) vt=("$VHDTOOL") ;;
    vhdtool+sync) vt=("$VHDTOOL") ;;
    vhdtool-nosync) vt=(env LD_PRELOAD="$NOSYNC" "$VHDTOOL") ;;
    x-*) vt=("${EXTRA[${tool#x-}]}") ;;
  esac
  local vsync=()
  case $tool in vhdtool+sync|vhdtool-nosync) vsync=(--sync) ;; esac
  if [ "$dir" = to ]; then
    IN=$SRC
    OUT=$WORK/out-${tool%+sync}.$fmt
    KIND=image
    if [ ${#vt[@]} -gt 0 ]; then
      CMD=("${vt[@]}" convert "${vsync[@]}" -O "$fmt" -t dynamic --force "$SRC" "$OUT")
    elif [ "$fmt" = vhd ]; then
      CMD=("$QEMU_IMG" convert -f raw -O vpc -o subformat=dynamic,force_size=on "$SRC" "$OUT")
    else
      CMD=("$QEMU_IMG" convert -f raw -O vhdx -o subformat=dynamic "$SRC" "$OUT")
    fi
  else
    IN=${FROM_IMG[$fmt]}
    OUT=$WORK/out-${tool%+sync}.raw
    KIND=raw
    if [ ${#vt[@]} -gt 0 ]; then
      CMD=("${vt[@]}" convert "${vsync[@]}" -O raw --force "$IN" "$OUT")
    else
      CMD=("$QEMU_IMG" convert -f "$(qemu_fmt "$fmt")" -O raw "$IN" "$OUT")
    fi
  fi
}

declare -A CHECKED
run_job() {   # job round
  local job=$1 round=$2 tool=${1#*:} fmt=${1%%.*} sync=()
  job_setup "$job"
  [ "$tool" = qemu+sync ] && sync=(-s "$OUT")
  rm -f "$OUT"
  sync                       # no writeback of earlier outputs during the run
  warm "$IN"
  local tfile=$RESULTS/${job//[:+]/_}.times
  [ "$round" -lt "$WARMUP" ] && tfile=$RESULTS/warmup.times
  "$TIMER" -o "$tfile" "${sync[@]}" -- "${CMD[@]}" > /dev/null ||
    die "$job failed: ${CMD[*]}"
  # Correctness: every vhdtool run, and each qemu-img command once.
  if [ "${tool#vhdtool}" != "$tool" ] || [ "${tool#x-}" != "$tool" ] || [ -z "${CHECKED[$job]:-}" ]; then
    if [ "$KIND" = image ]; then
      check_image "$fmt" "$OUT" || die "$job: output differs from the source (round $round)"
    else
      check_raw "$OUT" || die "$job: output differs from the source (round $round)"
    fi
    CHECKED[$job]=1
  fi
  echo "$job $(apparent "$OUT") $(on_disk "$OUT")" > "$RESULTS/${job//[:+]/_}.size"
  rm -f "$OUT"
}

# --- header -------------------------------------------------------------------
{
  echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "machine:  $(nproc) vCPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo),"\
       "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "fs:       $(df -T "$BENCH_DIR" | awk 'NR==2 {print $2}') ($(findmnt -no OPTIONS -T "$BENCH_DIR" | cut -c1-60))"
  echo "vhdtool:  $VHDTOOL (libvhd ${LIBVHD_REV:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')})"
  echo "qemu-img: $("$QEMU_IMG" --version | head -1)"
  echo "source:   $SRC ($SRC_SIZE bytes, sha256 ${SRC_SHA:0:16}...)"
  for fmt in $FORMATS; do
    [ -n "${FROM_IMG[$fmt]:-}" ] && echo "$fmt.from input: ${FROM_IMG[$fmt]##*/} (read by both tools)"
  done
  echo "rounds:   $ROUNDS timed + $WARMUP warm-up, interleaved, order rotating"
  echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) at start"
} | tee "$RESULTS/header"

# --- the rounds ----------------------------------------------------------------
n=${#JOBS[@]}
for ((round = 0; round < WARMUP + ROUNDS; round++)); do
  printf 'round %d/%d%s\r' "$((round + 1))" "$((WARMUP + ROUNDS))" \
    "$([ $round -lt $WARMUP ] && echo ' (warm-up)')" >&2
  for ((k = 0; k < n; k++)); do
    # Rotate the order so every job runs early and late equally often.
    run_job "${JOBS[(k + round) % n]}" "$round"
  done
done
echo >&2
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) at end" | tee -a "$RESULTS/header"

# --- summary -------------------------------------------------------------------
stat_of() {   # file column -> "median min"
  awk -v c="$2" '{print $c}' "$1" | sort -g |
    awk '{v[NR] = $1} END {
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.0f %.0f\n", m, v[1] }'
}
cpu_median() {
  awk '{print $2 + $3}' "$1" | sort -g |
    awk '{v[NR] = $1} END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.0f\n", m }'
}
label() {
  case $1 in
    vhd.to) echo "raw -> VHD dynamic" ;; vhd.from) echo "VHD dynamic -> raw" ;;
    vhdx.to) echo "raw -> VHDX dynamic" ;; vhdx.from) echo "VHDX dynamic -> raw" ;;
  esac
}
{
  echo
  printf '| %-20s | %-14s | %9s | %7s | %11s | %-26s |\n' operation tool "median ms" "min ms" \
    "CPU ms med" "qemu/vhdtool median (min)"
  echo "|----------------------|----------------|-----------|---------|-------------|----------------------------|"
  for op in $OPS; do
    fmt=${op%%.*}
    case " $FORMATS " in *" $fmt "*) ;; *) printf '| %-20s | skipped: vhdtool cannot write %s |\n' "$(label "$op")" "$fmt"; continue ;; esac
    # qemu-img is compared with vhdtool, qemu-img+sync with vhdtool --sync.
    declare -A VREF=()
    for t in vhdtool vhdtool+sync; do
      f=$RESULTS/${op}_${t//+/_}.times
      [ -f "$f" ] && VREF[$t]=$(stat_of "$f" 1)
    done
    qf=$RESULTS/${op}_${QTOOLS%% *}.times; qf=${qf//+/_}
    for t in $VTOOLS $QTOOLS; do
      f=$RESULTS/${op}_${t//+/_}.times
      read -r med min < <(stat_of "$f" 1)
      ratio=
      case $t in
        qemu*) ref=vhdtool; [ "$t" = qemu+sync ] && ref=vhdtool+sync
               read -r vmed vmin <<< "${VREF[$ref]}"
               ratio=$(awk -v a="$med" -v b="$vmed" -v c="$min" -v d="$vmin" \
                 'BEGIN { printf "%.2f (%.2f)", a / b, c / d }') ;;
        vhdtool-nosync|x-*) read -r qmed qmin < <(stat_of "$qf" 1)
                 ratio=$(awk -v a="$qmed" -v b="$med" -v c="$qmin" -v d="$min" \
                 'BEGIN { printf "[%.2f (%.2f)]", a / b, c / d }') ;;
      esac
      name=$t; [ "$t" = qemu ] && name=qemu-img; [ "$t" = qemu+sync ] && name=qemu-img+sync
      [ "$t" = vhdtool+sync ] && name="vhdtool --sync"
      printf '| %-20s | %-14s | %9s | %7s | %11s | %-26s |\n' "$(label "$op")" "$name" "$med" "$min" \
        "$(cpu_median "$f")" "$ratio"
    done
  done
  echo
  echo "ratio > 1: vhdtool is faster. qemu-img row: qemu-img / vhdtool, both as is (no fdatasync"
  echo "of the output). qemu-img+sync row (qemu-img followed by fdatasync of its output inside the"
  echo "timing): qemu-img+sync / vhdtool --sync, both outputs durable at the end."
  [ -n "$DIAG_NOSYNC" ] && echo "vhdtool-nosync: diagnostic only, vhdtool --sync with fsync/fdatasync made no-ops (not durable);" \
    "[ratio] = ${QTOOLS%% *} / vhdtool-nosync."
  [ -n "$EXTRA_NAMES" ] && echo "x-NAME rows: other vhdtool builds (-x);${EXTRA_NAMES// / }: [ratio] = ${QTOOLS%% *} / that row."
  echo
  echo "| output | apparent bytes | on-disk bytes |"
  echo "|---|---|---|"
  for f in "$RESULTS"/*.size; do
    [ -e "$f" ] || continue
    read -r job a d < "$f"
    case $job in *+sync|*nosync|*:x-*) continue ;; esac
    t=${job#*:}; [ "$t" = qemu ] && t=qemu-img
    printf '| %s by %s | %s | %s |\n' "$(label "${job%%:*}")" "$t" "$a" "$d"
  done
  for fmt in $FORMATS; do
    [ -n "${FROM_IMG[$fmt]:-}" ] && printf '| %s (.from input) | %s | %s |\n' "${FROM_IMG[$fmt]##*/}" \
      "$(apparent "${FROM_IMG[$fmt]}")" "$(on_disk "${FROM_IMG[$fmt]}")"
  done
  echo
  echo "checks: every vhdtool output in every round (qemu-img compare + libvhdi size for images,"
  echo "cmp for raw), each qemu-img command's output once: all passed."
} | tee "$RESULTS/summary"
echo "raw times (wall_ms user_ms sys_ms per run) in $RESULTS"
