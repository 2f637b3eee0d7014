#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# remote-bench.sh: reading an image over HTTP (issue 21). A full read of a
# dynamic VHDX (default: bench/make-dataset's 2 GiB half-data disk,
# converted by vhdtool) three ways, in the same run:
#   local    nbdkit-vhd-plugin on the file, nbdcopy to null:
#   filter   nbdkit curl (lighttpd on 127.0.0.1) + nbdkit-vhd-filter,
#            nbdcopy to null:
#   qemu     qemu-img convert -m 1 from the same URL (qemu's curl driver,
#            qemu-block-extra) into a null-co target
# Rounds rotate the order; the file is re-read into the page cache before
# each run, so the HTTP jobs measure the protocol, not the disk. Reported:
# median and minimum wall time, median CPU time of the client process
# tree (bench-timer; nbdkit and lighttpd are children of the timed command
# for the local and filter jobs, lighttpd is not), HTTP requests of one
# run (lighttpd's access log), and each job's ratio to local.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_NAME=remote-bench
. "$HERE/common.sh"
PLUGIN=${PLUGIN:-$BUILD/nbd-plugin/nbdkit-vhd-plugin.so}
FILTER=${FILTER:-$BUILD/nbd-plugin/nbdkit-vhd-filter.so}
ROUNDS=3
SRC=
FILTER_PARAMS=()

while getopts "r:s:p:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    s) SRC=$OPTARG ;;
    p) FILTER_PARAMS+=("$OPTARG") ;;
    *) echo "usage: $0 [-r ROUNDS] [-s RAW] [-p FILTER-PARAM]...  (env BUILD, BENCH_DIR, VHDTOOL, TIMER, PLUGIN, FILTER)" >&2
       exit 2 ;;
  esac
done
for f in "$VHDTOOL" "$TIMER"; do [ -x "$f" ] || die "no $f"; done
for f in "$PLUGIN" "$FILTER"; do [ -f "$f" ] || die "no $f"; done
command -v lighttpd > /dev/null || die "no lighttpd"
command -v nbdcopy > /dev/null || die "no nbdcopy"
nbdkit curl --dump-plugin > /dev/null 2>&1 || die "no nbdkit curl plugin"
QEMU=yes
qemu-img --help 2>/dev/null | grep -qw http || QEMU=  # qemu-block-extra's curl driver
mkdir -p "$BENCH_DIR"
if [ -z "$SRC" ]; then
  SRC=$BENCH_DIR/raw-2g.img
  "$HERE/make-dataset" "$SRC" > /dev/null || die "make-dataset failed"
fi
WORK=$(mktemp -d "$BENCH_DIR/remote-bench.XXXXXX")
. "$ROOT/tests/nbd/http_server.sh"
trap '[ -z "$HTTP_PID" ] || kill "$HTTP_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

http_setup "$WORK"
"$VHDTOOL" convert -O vhdx "$SRC" "$WORK/www/disk.vhdx"
SIZE=$(stat -c %s "$SRC")
URL=http://127.0.0.1:$HTTP_PORT/disk.vhdx

job() {
  case $1 in
    local) CMD=(nbdkit -U - -r "$PLUGIN" "$WORK/www/disk.vhdx" --run 'nbdcopy "$uri" null:') ;;
    filter) CMD=(nbdkit -U - -r --filter="$FILTER" curl "$URL" "${FILTER_PARAMS[@]}"
                 --run 'nbdcopy "$uri" null:') ;;
    # -m 1: with its default 8 coroutines, qemu-img 7.2 over its curl
    # driver stopped for good after some 70 requests (lighttpd idle).
    qemu) CMD=(timeout 600 qemu-img convert -m 1 -n --image-opts --target-image-opts
               "driver=vhdx,file.driver=http,file.url=$URL"
               "driver=null-co,size=$SIZE") ;;
  esac
}

JOBS=(local filter)
[ -n "$QEMU" ] && JOBS+=(qemu)
declare -A REQS
for ((round = 0; round < ROUNDS; round++)); do
  order=("${JOBS[@]:round % ${#JOBS[@]}}" "${JOBS[@]:0:round % ${#JOBS[@]}}")
  for name in "${order[@]}"; do
    job "$name"
    cat "$WORK/www/disk.vhdx" > /dev/null
    [ "$name" = local ] || start_http || die "lighttpd did not start: $(cat "$WORK/error.log")"
    "$TIMER" -o "$WORK/$name.times" -- "${CMD[@]}" > /dev/null || die "$name failed"
    [ "$name" = local ] || { stop_http; REQS[$name]=$REQUESTS; }
  done
done

echo "image: dynamic VHDX of $SRC ($SIZE bytes virtual, $(stat -c %s "$WORK/www/disk.vhdx") bytes file), $ROUNDS rounds"
echo "filter parameters: ${FILTER_PARAMS[*]:-(defaults)}; $(qemu-img --version | head -1)"
[ -n "$QEMU" ] || echo "qemu-img has no curl driver (install qemu-block-extra): qemu job skipped"
read -r lm _ _ <<< "$(timer_stats "$WORK/local.times")"
printf '%-8s %10s %10s %10s %10s %8s\n' job "median ms" "min ms" "cpu ms" "requests" "ratio"
for name in "${JOBS[@]}"; do
  read -r m mn c <<< "$(timer_stats "$WORK/$name.times")"
  printf '%-8s %10s %10s %10s %10s %8s\n' "$name" "$m" "$mn" "$c" "${REQS[$name]:--}" \
    "$(awk -v a="$m" -v b="$lm" 'BEGIN { printf "%.2f", a / b }')"
done
