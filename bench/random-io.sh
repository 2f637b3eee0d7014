#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# random-io.sh: 4 KiB random I/O through nbdkit-vhd-plugin against the
# ceiling, nbdkit's file plugin on the raw disk the images were made from,
# in one run, as ratios (issue 18). Prints:
#  - random reads, fio nbd engine, N connections x qd16 for each N of -c
#    (fio numjobs=N: every job opens its own NBD connection), so the same
#    table shows how each server scales with connections;
#  - allocating random writes, 2 connections x qd16, into a fresh empty
#    image (or a fresh sparse raw file) per run;
#  - the server's CPU time per request (user+system from /proc/PID/stat,
#    every nbdkit thread), which stays comparable on a loaded machine when
#    IOPS do not.
# Rounds rotate the order of the servers (A B C, B C A, ...), so each sees
# the same background noise; medians over the rounds. Nothing here asserts
# a time; see bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=random-io
. "$HERE/common.sh"
NBD_PLUGIN=${NBD_PLUGIN:-$BUILD/nbd-plugin/nbdkit-vhd-plugin.so}
ROUNDS=3
SECONDS_PER_RUN=5
CONNS="1 2 4"
OPS="randread randwrite"
SRC=

usage() {
  cat <<EOF
usage: $0 [options]
  -r N        rounds (default $ROUNDS)
  -t SECONDS  length of each fio run (default $SECONDS_PER_RUN)
  -c "N..."   connection counts for the reads (default "$CONNS")
  -o "OPS"    among: randread randwrite (default both)
  -s FILE     raw source (default: \$BENCH_DIR/raw-2g.img, made by make-dataset)
environment: BENCH_DIR ($BENCH_DIR), BUILD ($BUILD), VHDTOOL, NBD_PLUGIN,
             ALT_PLUGIN (a second plugin build, A/B: adds rows alt-vhd, alt-vhdx),
             ALT_VHDTOOL (creates alt-*'s empty images; reads share one image)
EOF
}

while getopts "r:t:c:o:s:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    t) SECONDS_PER_RUN=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    o) OPS=$OPTARG ;;
    s) SRC=$OPTARG ;;
    h) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

[ -x "$VHDTOOL" ] || die "no vhdtool at $VHDTOOL (set BUILD)"
[ -f "$NBD_PLUGIN" ] || die "no plugin at $NBD_PLUGIN"
for c in nbdkit nbdcopy fio python3; do
  command -v $c >/dev/null || die "$c is not installed (fio: apt-get install fio)"
done
fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*nbd' || die "this fio has no nbd engine"

mkdir -p "$BENCH_DIR"
if [ -z "$SRC" ]; then
  SRC=$BENCH_DIR/raw-2g.img
  "$HERE/make-dataset" "$SRC" > /dev/null || die "make-dataset failed"
fi
SRC_SIZE=$(stat -c %s "$SRC")
WORK=$BENCH_DIR/random-io-work
RESULTS=$BENCH_DIR/random-io-$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK" "$RESULTS"
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# Servers: file-raw, plugin-vhd, plugin-vhdx (and alt-* with ALT_PLUGIN).
SERVERS=(file-raw plugin-vhd plugin-vhdx)
[ -n "${ALT_PLUGIN:-}" ] && SERVERS+=(alt-vhd alt-vhdx)
plugin_of() { case $1 in alt-*) echo "$ALT_PLUGIN" ;; *) echo "$NBD_PLUGIN" ;; esac; }
vhdtool_of() { case $1 in alt-*) echo "${ALT_VHDTOOL:-$VHDTOOL}" ;; *) echo "$VHDTOOL" ;; esac; }
fmt_of() { echo "${1#*-}"; }

for fmt in vhd vhdx; do
  note "making $WORK/dyn.$fmt"
  "$VHDTOOL" convert -O $fmt -t dynamic --force "$SRC" "$WORK/dyn.$fmt"
done

SOCK=$WORK/s.sock
# serve NAME FILE [-r]: one nbdkit for NAME on $SOCK; its pid in SERVER_PID.
serve() {
  local name=$1 file=$2; shift 2
  rm -f "$SOCK"
  case $name in
    file-raw) nbdkit -f "$@" -U "$SOCK" file "$file" > "$WORK/server.log" 2>&1 & ;;
    *) nbdkit -f "$@" -U "$SOCK" "$(plugin_of "$name")" "$file" > "$WORK/server.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  local i
  for i in $(seq 200); do
    [ -S "$SOCK" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || die "$name did not start: $(cat "$WORK/server.log")"
    sleep 0.05
  done
  die "$name: no socket after 10 s"
}
unserve() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# fio_run RESULT RW JOBS: one run against $SOCK; records "iops us_cpu_per_request".
fio_run() {
  local f=$1 rw=$2 jobs=$3 c0 c1
  c0=$(cpu_ticks "$SERVER_PID")
  fio --name=b --ioengine=nbd --uri="nbd+unix:///?socket=$SOCK" --rw="$rw" --bs=4k \
      --iodepth=16 --numjobs="$jobs" --time_based --runtime="$SECONDS_PER_RUN" \
      --randseed=1234 --group_reporting --output-format=json > "$WORK/fio.json" 2> "$WORK/fio.err" ||
    die "fio failed: $(tail -3 "$WORK/fio.err")"
  c1=$(cpu_ticks "$SERVER_PID")
  python3 - "$WORK/fio.json" "$rw" "$(( (c1 - c0) * 1000000 / TICK ))" >> "$RESULTS/$f" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
j = json.loads(text[text.index("{"):])["jobs"][0]["write" if "write" in sys.argv[2] else "read"]
ios = j["total_ios"] or 1
print("%d %.2f" % (j["iops"], int(sys.argv[3]) / ios))
EOF
}

read_file_of() { case $1 in file-raw) echo "$SRC" ;; *) echo "$WORK/dyn.$(fmt_of "$1")" ;; esac; }

randread_round() {
  local s=$1 n f
  f=$(read_file_of "$s")
  serve "$s" "$f" -r
  cat "$f" > /dev/null
  for n in $CONNS; do fio_run "read.$s.$n" randread "$n"; done
  unserve
}

randwrite_round() {
  local s=$1 img
  case $s in
    file-raw) img=$WORK/w.raw; rm -f "$img"; truncate -s "$SRC_SIZE" "$img" ;;
    *) img=$WORK/w.$(fmt_of "$s"); rm -f "$img"
       "$(vhdtool_of "$s")" create -f "$(fmt_of "$s")" -t dynamic -s "$SRC_SIZE" "$img" > /dev/null ;;
  esac
  serve "$s" "$img"
  fio_run "write.$s" randwrite 2
  unserve
  if [ "$s" != file-raw ]; then
    "$VHDTOOL" check "$img" > "$WORK/check.out" 2>&1 ||
      die "$s: vhdtool check after random writes failed: $(tail -1 "$WORK/check.out")"
  fi
  rm -f "$img"
}

for ((r = 0; r < ROUNDS; r++)); do
  note "round $((r + 1)) of $ROUNDS"
  for s in $(rotate "$r" "${SERVERS[@]}"); do
    has_op randread && randread_round "$s"
    has_op randwrite && randwrite_round "$s"
  done
done

# median FILE COLUMN
median() {
  [ -f "$RESULTS/$1" ] || { echo -; return; }
  awk -v c="$2" '{ print $c }' "$RESULTS/$1" | sort -g | awk '
    { v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

summary() {
  echo "## random-io $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), nbdkit $(nbdkit --version | cut -d' ' -f2)," \
       "$(fio --version); $SRC ($SRC_SIZE bytes); $ROUNDS rounds of ${SECONDS_PER_RUN} s; raw runs in $RESULTS"
  local s n
  if has_op randread; then
    echo
    echo "### 4 KiB random reads, N connections x qd16: IOPS median, vs file-raw, server CPU us per request"
    echo
    printf "| server |"; for n in $CONNS; do printf " %s conn IOPS | vs raw | CPU us/req |" "$n"; done; echo
    printf "|---|"; for n in $CONNS; do printf -- "---|---|---|"; done; echo
    for s in "${SERVERS[@]}"; do
      printf "| %s |" "$s"
      for n in $CONNS; do
        printf " %s | %s | %s |" "$(median "read.$s.$n" 1)" \
          "$(ratio "$(median "read.$s.$n" 1)" "$(median "read.file-raw.$n" 1)")" "$(median "read.$s.$n" 2)"
      done
      echo
    done
    echo
    first=${CONNS%% *}
    for s in "${SERVERS[@]}"; do
      printf "* %s scaling (IOPS vs %s connection):" "$s" "$first"
      for n in $CONNS; do printf " %s: %s" "$n" "$(ratio "$(median "read.$s.$n" 1)" "$(median "read.$s.$first" 1)")"; done
      echo
    done
  fi
  if has_op randwrite; then
    echo
    echo "### 4 KiB allocating random writes, 2 connections x qd16, fresh image per run"
    echo
    echo "| server | IOPS median | vs file-raw | CPU us/req |"
    echo "|---|---|---|---|"
    for s in "${SERVERS[@]}"; do
      echo "| $s | $(median "write.$s" 1) | $(ratio "$(median "write.$s" 1)" "$(median write.file-raw 1)") | $(median "write.$s" 2) |"
    done
  fi
}
summary | tee "$RESULTS/summary.md"
