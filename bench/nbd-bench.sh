#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nbd-bench.sh: nbdkit-vhd-plugin against qemu-nbd 7.2 serving the same
# dynamic VHD and VHDX files, and against nbdkit's file plugin on the raw
# disk the images were made from (the ceiling: no format at all).
#
#  seq       whole-disk nbdcopy to null:, with extents and with --no-extents
#  randread  fio nbd engine, 4 KiB random reads, 2 jobs x qd16 and 1 x qd1
#  randwrite fio nbd engine, 4 KiB random writes, 2 jobs x qd16, into fresh
#            empty 2 GiB images (every write may allocate: qemu's weak spot)
#
# Method (shared/reference/nbdkit-plugin.md section 2.1): servers stay up on
# Unix sockets for all read rounds; rounds interleave the servers (the order
# rotates each round); the image is re-read into the page cache right
# before each timed run; median and minimum are reported, and the server's
# CPU time per run (from /proc/PID/stat). Write runs start a fresh image
# and server each time. Nothing here asserts a time; see bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=nbd-bench
. "$HERE/common.sh"
NBD_PLUGIN=${NBD_PLUGIN:-$BUILD/nbd-plugin/nbdkit-vhd-plugin.so}
ROUNDS=5
FIO_ROUNDS=3
FIO_SECONDS=5
OPS="seq randread randwrite"
FORMATS="vhd vhdx"
SRC=

usage() {
  cat <<EOF
usage: $0 [options]
  -r N        rounds of the sequential copies (default $ROUNDS)
  -R N        rounds of each fio run (default $FIO_ROUNDS)
  -t SECONDS  length of each fio run (default $FIO_SECONDS)
  -o "OPS"    among: seq randread randwrite (default all)
  -f "FMTS"   among: vhd vhdx fixed-vhd fixed-vhdx (default: vhd vhdx, the
              dynamic images; fixed-* serve fixed images, compared with the
              raw ceiling; random writes run on dynamic images only)
  -s FILE     raw source (default: \$BENCH_DIR/raw-2g.img, made by make-dataset;
              a smaller one makes a quicker run)
environment: BENCH_DIR ($BENCH_DIR), BUILD ($BUILD), VHDTOOL, NBD_PLUGIN
EOF
}

while getopts "r:R:t:o:f:s:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    R) FIO_ROUNDS=$OPTARG ;;
    t) FIO_SECONDS=$OPTARG ;;
    o) OPS=$OPTARG ;;
    f) FORMATS=$OPTARG ;;
    s) SRC=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

[ -x "$VHDTOOL" ] || die "no vhdtool at $VHDTOOL (cmake -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2)"
[ -f "$NBD_PLUGIN" ] || die "no plugin at $NBD_PLUGIN"
for c in nbdkit nbdcopy nbdinfo qemu-nbd python3; do
  command -v $c >/dev/null || die "$c is not installed"
done
if (has_op randread || has_op randwrite) && ! command -v fio >/dev/null; then
  note "fio is not installed (apt-get install fio): random I/O is skipped"
  OPS=${OPS//randread/}; OPS=${OPS//randwrite/}
fi

mkdir -p "$BENCH_DIR"
if [ -z "$SRC" ]; then
  SRC=$BENCH_DIR/raw-2g.img
  SRC_SHA=$("$HERE/make-dataset" "$SRC") || die "make-dataset failed"
else
  SRC_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
fi
SRC_SIZE=$(stat -c %s "$SRC")
WORK=$BENCH_DIR/nbd-work
RESULTS=$BENCH_DIR/nbd-results-$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK" "$RESULTS"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# --- servers ----------------------------------------------------------------------

# start NAME SOCKET COMMAND...: start a server in the background, wait for
# its socket; its pid goes in PID_<NAME>.
start() {
  local name=$1 sock=$2; shift 2
  rm -f "$sock"
  "$@" > "$WORK/$name.log" 2>&1 &
  local pid=$! i
  PIDS+=("$pid")
  printf -v "PID_${name//-/_}" %s "$pid"
  for i in $(seq 200); do
    [ -S "$sock" ] && return 0
    kill -0 "$pid" 2>/dev/null || die "$name did not start: $(cat "$WORK/$name.log")"
    sleep 0.05
  done
  die "$name: no socket after 10 s"
}

stop() {
  local var="PID_$1"
  kill "${!var}" 2>/dev/null || true
  wait "${!var}" 2>/dev/null || true
}

uri() { echo "nbd+unix:///?socket=$WORK/$1.sock"; }

# The servers. Read-only ones stay up for every read round.
#   plugin-FMT  nbdkit-vhd-plugin -r on the image libvhd made
#   qemu-FMT    qemu-nbd -r -t -e 16 on the same file (as in the baselines)
#   file-raw    nbdkit file plugin -r on the raw source
declare -A IMAGE FILEOF
# base_format NAME: the format of a -f name (fixed-vhd -> vhd).
base_format() { echo "${1#fixed-}"; }
qemu_format() { local b; b=$(base_format "$1"); [ "$b" = vhd ] && b=vpc; echo "$b"; }

for fmt in $FORMATS; do
  case $fmt in
    vhd|vhdx) type=dynamic; img=$WORK/dyn.$fmt ;;
    fixed-vhd|fixed-vhdx) type=fixed; img=$WORK/$fmt.$(base_format "$fmt") ;;
    *) die "unknown format $fmt (vhd, vhdx, fixed-vhd, fixed-vhdx)" ;;
  esac
  note "making $img with vhdtool convert"
  "$VHDTOOL" convert -O "$(base_format "$fmt")" -t "$type" --force "$SRC" "$img"
  FILEOF[plugin-$fmt]=$img
  FILEOF[qemu-$fmt]=$img
done
FILEOF[file-raw]=$SRC

SERVERS=()
start_read_servers() {
  local fmt qfmt
  for fmt in $FORMATS; do
    qfmt=$(qemu_format "$fmt")
    start "plugin_$fmt" "$WORK/plugin-$fmt.sock" \
      nbdkit -f -r -U "$WORK/plugin-$fmt.sock" "$NBD_PLUGIN" "${FILEOF[plugin-$fmt]}"
    start "qemu_$fmt" "$WORK/qemu-$fmt.sock" \
      qemu-nbd -r -t -e 16 -f "$qfmt" --socket "$WORK/qemu-$fmt.sock" "${FILEOF[qemu-$fmt]}"
    SERVERS+=("plugin-$fmt" "qemu-$fmt")
  done
  start file_raw "$WORK/file-raw.sock" nbdkit -f -r -U "$WORK/file-raw.sock" file "$SRC"
  SERVERS+=(file-raw)
}

pid_of() { local v="PID_${1//-/_}"; echo "${!v}"; }
warm() { cat "$1" > /dev/null; }

# Every plugin export must be the source disk, or the numbers mean nothing.
verify_exports() {
  local s got
  for s in "${SERVERS[@]}"; do
    case $s in plugin-*) ;; *) continue ;; esac
    got=$(nbdcopy "$(uri "$s")" - | sha256sum | cut -d' ' -f1)
    [ "$got" = "$SRC_SHA" ] || die "$s does not serve the source disk (sha256 $got)"
    note "$s serves the source disk (sha256 ${got:0:12}...)"
  done
}

# --- runs ---------------------------------------------------------------------------

# record FILE VALUES...: one line per run.
record() { local f=$1; shift; echo "$*" >> "$RESULTS/$f"; }

seq_run() {
  local s=$1 mode=$2 pid t0 t1 c0 c1 args=()
  [ "$mode" = no-extents ] && args=(--no-extents)
  pid=$(pid_of "$s")
  warm "${FILEOF[$s]}"
  c0=$(cpu_ticks "$pid")
  t0=$(date +%s%N)
  nbdcopy "${args[@]}" "$(uri "$s")" null:
  t1=$(date +%s%N)
  c1=$(cpu_ticks "$pid")
  record "seq.$s.$mode" "$(( (t1 - t0) / 1000000 )) $(( (c1 - c0) * 1000 / TICK ))"
}

# fio_run FILE URI RW JOBS DEPTH [PID]: one fio run; records "iops p50_us
# p99_us server_cpu_ms".
fio_run() {
  local f=$1 u=$2 rw=$3 jobs=$4 depth=$5 pid=${6:-} c0=0 c1=0
  [ -n "$pid" ] && c0=$(cpu_ticks "$pid")
  fio --name=b --ioengine=nbd --uri="$u" --rw="$rw" --bs=4k --iodepth="$depth" \
      --numjobs="$jobs" --time_based --runtime="$FIO_SECONDS" --randseed=1234 \
      --group_reporting --output-format=json > "$WORK/fio.json" 2> "$WORK/fio.err" ||
    die "fio failed: $(tail -3 "$WORK/fio.err")"
  [ -n "$pid" ] && c1=$(cpu_ticks "$pid")
  local line
  line=$(python3 - "$WORK/fio.json" "$rw" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text[text.index("{"):])
j = d["jobs"][0]["write" if "write" in sys.argv[2] else "read"]
p = j["clat_ns"]["percentile"]
print("%d %d %d" % (j["iops"], p["50.000000"] / 1000, p["99.000000"] / 1000))
EOF
)
  record "$f" "$line $(( (c1 - c0) * 1000 / TICK ))"
}

randread_run() {
  local s=$1 pid
  pid=$(pid_of "$s")
  warm "${FILEOF[$s]}"
  fio_run "randread.$s.2x16" "$(uri "$s")" randread 2 16 "$pid"
  fio_run "randread.$s.1x1" "$(uri "$s")" randread 1 1 "$pid"
}

# A fresh empty image and a fresh writable server per run.
randwrite_run() {
  local s=$1 img sock=$WORK/w.sock
  case $s in *fixed-*) return 0 ;; esac   # allocation is what is measured
  case $s in
    plugin-*) img=$WORK/w.${s#plugin-}; "$VHDTOOL" create -f "${s#plugin-}" -t dynamic -s "$SRC_SIZE" --force "$img" >/dev/null
              start w "$sock" nbdkit -f -U "$sock" "$NBD_PLUGIN" "$img" ;;
    qemu-*)   local f=${s#qemu-} q; q=$f; [ "$f" = vhd ] && q=vpc
              img=$WORK/w.q.$f; rm -f "$img"; "$VHDTOOL" create -f "$f" -t dynamic -s "$SRC_SIZE" "$img" >/dev/null
              start w "$sock" qemu-nbd -t -e 16 -f "$q" --socket "$sock" "$img" ;;
    file-raw) img=$WORK/w.raw; rm -f "$img"; truncate -s "$SRC_SIZE" "$img"
              start w "$sock" nbdkit -f -U "$sock" file "$img" ;;
  esac
  fio_run "randwrite.$s.2x16" "nbd+unix:///?socket=$sock" randwrite 2 16 "$PID_w"
  stop w
  if [ "${s%%-*}" = plugin ]; then
    "$VHDTOOL" check "$img" > "$WORK/check.out" 2>&1 ||
      note "$s: vhdtool check after random writes: exit $? ($(tail -1 "$WORK/check.out"))"
  fi
  rm -f "$img"
}

# --- summary -------------------------------------------------------------------------

# stats FILE COLUMN: "median min" of a column over the runs.
stats() {
  [ -f "$RESULTS/$1" ] || { echo "- -"; return; }
  awk -v c="$2" '{ print $c }' "$RESULTS/$1" | sort -n | awk '
    { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%g %g\n", m, v[1] }'
}
statmax() {
  [ -f "$RESULTS/$1" ] || { echo "- -"; return; }
  awk -v c="$2" '{ print $c }' "$RESULTS/$1" | sort -n | awk '
    { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%g %g\n", m, v[NR] }'
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "nan"; else printf "%.4f", a / b }'; }

summary() {
  echo
  echo "## nbd-bench $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "$(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg);" \
       "nbdkit $(nbdkit --version | cut -d' ' -f2), $(qemu-nbd --version | head -1)," \
       "$(nbdcopy --version | head -1)${FIO:+, $(fio --version)}"
  echo "source: $SRC ($SRC_SIZE bytes, sha256 ${SRC_SHA:0:12}...), $ROUNDS seq rounds," \
       "$FIO_ROUNDS fio rounds of ${FIO_SECONDS}s; raw runs in $RESULTS"
  local s m
  if has_op seq; then
    echo
    echo "### Sequential whole-disk read (nbdcopy URI null:), seconds"
    echo
    echo "| server | extents median / best | no-extents median / best | server CPU s (ext / no-ext) |"
    echo "|---|---|---|---|"
    for s in "${SERVERS[@]}"; do
      local e n ce cn
      e=($(stats "seq.$s.extents" 1)); n=($(stats "seq.$s.no-extents" 1))
      ce=($(stats "seq.$s.extents" 2)); cn=($(stats "seq.$s.no-extents" 2))
      printf "| %s | %.3f / %.3f | %.3f / %.3f | %.2f / %.2f |\n" "$s" \
        "$(div ${e[0]} 1000)" "$(div ${e[1]} 1000)" \
        "$(div ${n[0]} 1000)" "$(div ${n[1]} 1000)" \
        "$(div ${ce[0]} 1000)" "$(div ${cn[0]} 1000)"
    done
    echo
    for fmt in $FORMATS; do
      for m in extents no-extents; do
        local p q f
        p=$(stats "seq.plugin-$fmt.$m" 1 | cut -d' ' -f1)
        q=$(stats "seq.qemu-$fmt.$m" 1 | cut -d' ' -f1)
        f=$(stats "seq.file-raw.$m" 1 | cut -d' ' -f1)
        echo "* $fmt $m: plugin throughput = $(ratio "$q" "$p")x qemu-nbd's, $(ratio "$f" "$p")x nbdkit-file-raw's (time ratios plugin/qemu-nbd $(ratio "$p" "$q"), plugin/raw $(ratio "$p" "$f"))"
      done
    done
  fi
  if has_op randread; then
    echo
    echo "### 4 KiB random reads (fio nbd engine), IOPS"
    echo
    echo "| server | 2 x qd16 median (max) | p50 / p99 us | server CPU cores | 1 x qd1 median (max) | p50 / p99 us |"
    echo "|---|---|---|---|---|---|"
    for s in "${SERVERS[@]}"; do
      local a b a50 a99 b50 b99 cpu
      a=($(statmax "randread.$s.2x16" 1)); b=($(statmax "randread.$s.1x1" 1))
      a50=$(stats "randread.$s.2x16" 2 | cut -d' ' -f1); a99=$(stats "randread.$s.2x16" 3 | cut -d' ' -f1)
      b50=$(stats "randread.$s.1x1" 2 | cut -d' ' -f1); b99=$(stats "randread.$s.1x1" 3 | cut -d' ' -f1)
      cpu=$(stats "randread.$s.2x16" 4 | cut -d' ' -f1)
      printf "| %s | %s (%s) | %s / %s | %.2f | %s (%s) | %s / %s |\n" "$s" "${a[0]}" "${a[1]}" \
        "$a50" "$a99" "$(div "$(div $cpu 1000)" "$FIO_SECONDS")" "${b[0]}" "${b[1]}" "$b50" "$b99"
    done
    echo
    for fmt in $FORMATS; do
      local p q f
      p=$(stats "randread.plugin-$fmt.2x16" 1 | cut -d' ' -f1)
      q=$(stats "randread.qemu-$fmt.2x16" 1 | cut -d' ' -f1)
      f=$(stats "randread.file-raw.2x16" 1 | cut -d' ' -f1)
      echo "* $fmt 2 x qd16: plugin IOPS / qemu-nbd IOPS = $(ratio "$p" "$q"), plugin / nbdkit-file-raw = $(ratio "$p" "$f")"
    done
  fi
  if has_op randwrite; then
    echo
    echo "### 4 KiB random writes into a fresh empty image (2 x qd16, no flush), IOPS"
    echo
    echo "| server | median (max) | p50 / p99 us |"
    echo "|---|---|---|"
    for s in "${SERVERS[@]}"; do
      local a a50 a99
      a=($(statmax "randwrite.$s.2x16" 1))
      a50=$(stats "randwrite.$s.2x16" 2 | cut -d' ' -f1); a99=$(stats "randwrite.$s.2x16" 3 | cut -d' ' -f1)
      printf "| %s | %s (%s) | %s / %s |\n" "$s" "${a[0]}" "${a[1]}" "$a50" "$a99"
    done
    echo
    for fmt in $FORMATS; do
      local p q f
      p=$(stats "randwrite.plugin-$fmt.2x16" 1 | cut -d' ' -f1)
      q=$(stats "randwrite.qemu-$fmt.2x16" 1 | cut -d' ' -f1)
      f=$(stats "randwrite.file-raw.2x16" 1 | cut -d' ' -f1)
      echo "* $fmt: plugin IOPS / qemu-nbd IOPS = $(ratio "$p" "$q"), plugin / nbdkit-file-raw = $(ratio "$p" "$f")"
    done
  fi
}

# --- main ---------------------------------------------------------------------------

FIO=
command -v fio >/dev/null && FIO=1
start_read_servers
verify_exports

if has_op seq; then
  note "sequential: $ROUNDS rounds (+1 warm-up) over ${#SERVERS[@]} servers"
  for ((r = 0; r <= ROUNDS; r++)); do
    for s in $(rotate "$r" "${SERVERS[@]}"); do
      for m in extents no-extents; do seq_run "$s" "$m"; done
    done
    # Round 0 warms up: throw it away.
    [ "$r" = 0 ] && rm -f "$RESULTS"/seq.*
  done
fi
if has_op randread; then
  note "random reads: $FIO_ROUNDS rounds"
  for ((r = 0; r < FIO_ROUNDS; r++)); do
    for s in $(rotate "$r" "${SERVERS[@]}"); do randread_run "$s"; done
  done
fi
for s in "${SERVERS[@]}"; do stop "${s//-/_}"; done
if has_op randwrite; then
  note "random writes: $FIO_ROUNDS rounds"
  for ((r = 0; r < FIO_ROUNDS; r++)); do
    for s in $(rotate "$r" "${SERVERS[@]}"); do randwrite_run "$s"; done
  done
fi
summary | tee "$RESULTS/summary.md"
