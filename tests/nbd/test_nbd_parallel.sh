#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Two connections at once, each with several requests in flight: random
# writes of random sizes at random offsets (unaligned ones included), mixed
# with zero and trim requests. The connections own alternate 64 KiB
# stripes, so they allocate the same blocks concurrently while the
# expected content stays well defined; nbdclient.py keeps the model. Then:
# a third connection reads the model back, and after nbdkit has exited
# the file reads as the model through vhdtool (and qemu-img where it is an
# oracle) and checks clean.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd

SIZE=$((32 * 1024 * 1024))

# parallel_case LABEL IMAGE QEMU-FORMAT(or -) [NBDKIT-OPTIONS...]
parallel_case() {
  local label=$1 img=$2 qfmt=$3; shift 3
  local model="$WORK/$label.model"
  if captive "$@" "$img" -- "$NBDCLIENT random-io --socket \"\$unixsocket\" --clients 2 --depth 8 --ops 400 --zero --seed ${#label} --model '$model'" > "$WORK/out" 2>&1; then
    ok "$label: two connections' writes read back as the model"
  else
    not_ok "$label: random I/O from two connections: $(head -c 600 "$WORK/out")"
    return
  fi
  same_read "$label: vhdtool read after nbdkit exited = model" "$model" "$VHDTOOL" read "$img"
  if [ "$qfmt" != - ]; then
    rm -f "$WORK/q.raw"
    qemu-img convert -f "$qfmt" -O raw "$img" "$WORK/q.raw"
    same_file "$label: qemu-img reads the model" "$WORK/q.raw" "$model"
    rm -f "$WORK/q.raw"
  fi
  if [ "$qfmt" = vhdx ]; then
    check "$label: qemu-img check" qemu-img check -q -f vhdx "$img"
  fi
  [ "$qfmt" = raw ] || check_clean "$label: check clean" "$img"
  rm -f "$model"
}

# multi_conn_case LABEL IMAGE: a write on one connection, a flush on a
# second, then a read (after a cache request) on a third sees the write.
multi_conn_case() {
  if captive "$2" -- "$NBDCLIENT multi-conn --socket \"\$unixsocket\" --rounds 60" > "$WORK/out" 2>&1; then
    ok "$1: multi-conn: a flush on any connection makes writes visible on all"
  else
    not_ok "$1: multi-conn: $(head -c 300 "$WORK/out")"
  fi
}

truncate -s "$SIZE" "$WORK/disk.raw"
parallel_case raw "$WORK/disk.raw" raw
multi_conn_case raw "$WORK/disk.raw"
parallel_case raw-threads1 "$WORK/disk.raw" raw --threads=1

for fmt in vhd vhdx; do
  if ! vhdtool_can "$fmt"; then
    echo "# skipped: vhdtool cannot create $fmt images yet (driver not built)"
    continue
  fi
  qfmt=$fmt; [ "$fmt" = vhd ] && qfmt=vpc
  bs=512K; [ "$fmt" = vhdx ] && bs=1M
  "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" -b "$bs" "$WORK/dyn.$fmt"
  parallel_case "$fmt-dynamic-$bs" "$WORK/dyn.$fmt" "$qfmt"
  multi_conn_case "$fmt-dynamic-$bs" "$WORK/dyn.$fmt"
  check_clean "$fmt-dynamic-$bs: checks clean after the multi-conn rounds" "$WORK/dyn.$fmt"
  "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" "$WORK/dyn2.$fmt"
  parallel_case "$fmt-dynamic" "$WORK/dyn2.$fmt" "$qfmt"
  "$VHDTOOL" create -f "$fmt" -t fixed -s "$SIZE" "$WORK/fixed.$fmt"
  parallel_case "$fmt-fixed" "$WORK/fixed.$fmt" "$qfmt"
  # Differencing over a parent that already holds data: reads of
  # unwritten parts come from the parent, zeros must hide it.
  $GEN raw "$WORK/base.raw" "$SIZE" 51
  "$VHDTOOL" convert -O "$fmt" -b "$bs" "$WORK/base.raw" "$WORK/base.$fmt"
  (cd "$WORK" && "$VHDTOOL" create -f "$fmt" -t differencing -p "base.$fmt" "diff.$fmt")
  # qemu-img cannot read differencing images correctly: vhdtool only.
  parallel_case "$fmt-differencing" "$WORK/diff.$fmt" -
  same_read "$fmt-differencing: the parent still reads as before" "$WORK/base.raw" \
    "$VHDTOOL" read "$WORK/base.$fmt"
done

finish
