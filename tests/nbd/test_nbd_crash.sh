#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Crash: a client writes numbered records (unaligned, spread over the disk
# so that blocks keep being allocated) and flushes every 10 writes,
# logging after each flush how many writes that flush acknowledged (or,
# in the -fua cases, sends every write with FUA and logs each one). nbdkit
# is killed with SIGKILL in the middle: by the writer itself, right after
# it sent a request chosen at random (that request is in flight; the point
# is printed). Afterwards the image must open,
# `vhdtool check` must find no corruption (exit 0, or 3 = leaked space,
# which a crash may leave; the test prints which), and every acknowledged
# write must be in the image. For VHDX, qemu-img replaying the log of a
# copy must find the same acknowledged writes.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd

SIZE=$((256 * 1024 * 1024))
COUNT=3000

verify_quiet() { $NBDCLIENT crash-verify "$@" > /dev/null; }

crash_case() {
  local label=$1 img=$2 qfmt=$3 mode=${4:-}
  local sock="$WORK/nbd.sock" pid="$WORK/nbd.pid" log="$WORK/$label.log"
  rm -f "$log"
  serve "$sock" "$pid" -- "$img" ||
    { not_ok "$label: nbdkit did not start"; return; }
  # Some 40 to 100 flushes complete first (or 400 to 1000 FUA writes).
  local kill_after=$((400 + RANDOM % 600))
  $NBDCLIENT crash-writer --socket "$sock" --log "$log" --count $COUNT --every 10 $mode \
    --kill-pid "$(cat "$pid")" --kill-after $kill_after > "$WORK/writer.out" 2>&1
  # The server is gone unless the writer failed before its kill point.
  { kill -KILL "$SERVER_PID"; wait "$SERVER_PID"; } 2>/dev/null
  local acked
  acked=$(tail -1 "$log" 2>/dev/null)
  echo "# $label: killed at request $kill_after, after $acked acknowledged writes $(head -c 300 "$WORK/writer.out")"
  check "$label: some writes were acknowledged before the kill" test "${acked:-0}" -gt 0
  check "$label: the kill came before the writer finished" test "${acked:-0}" -lt $COUNT

  "$VHDTOOL" check "$img" > "$WORK/check.out" 2>&1
  local rc=$?
  case $rc in
    0) ok "$label: vhdtool check clean after the crash" ;;
    3) ok "$label: vhdtool check: leaked space only (exit 3) after the crash: $(grep -m1 leak "$WORK/check.out")" ;;
    *) not_ok "$label: vhdtool check exit $rc: $(head -c 400 "$WORK/check.out")" ;;
  esac
  if "$VHDTOOL" read "$img" > "$WORK/after.raw" 2> "$WORK/err"; then
    ok "$label: the image opens and reads after the crash"
    if $NBDCLIENT crash-verify --disk "$WORK/after.raw" --log "$log" --count $COUNT > "$WORK/verify.out"; then
      ok "$label: every acknowledged write is there ($(cat "$WORK/verify.out"))"
    else
      not_ok "$label: $(head -6 "$WORK/verify.out" | tr '\n' ';')"
    fi
  else
    not_ok "$label: vhdtool read failed: $(head -c 300 "$WORK/err")"
  fi
  if [ "$qfmt" = vhdx ]; then
    cp "$img" "$WORK/q.vhdx"
    # qemu-img will not check an image whose log needs replay without
    # repairing (replaying) it first; after that it must find it clean.
    qemu-img check -q -r all -f vhdx "$WORK/q.vhdx" > /dev/null 2>&1
    if qemu-img check -f vhdx "$WORK/q.vhdx" > "$WORK/qcheck.out" 2>&1; then
      ok "$label: qemu-img check clean (after its replay)"
    else
      not_ok "$label: qemu-img check: $(head -c 300 "$WORK/qcheck.out")"
    fi
    rm -f "$WORK/q.raw"
    if qemu-img convert -f vhdx -O raw "$WORK/q.vhdx" "$WORK/q.raw" 2> "$WORK/err"; then
      check "$label: qemu-img (after its own replay) finds every acknowledged write" \
        verify_quiet --disk "$WORK/q.raw" --log "$log" --count $COUNT
    else
      not_ok "$label: qemu-img cannot read the image: $(head -c 300 "$WORK/err")"
    fi
    rm -f "$WORK/q.vhdx" "$WORK/q.raw"
  fi
  # Scratch space is memory (tmpfs): each crashed image holds ~256 MiB.
  rm -f "$WORK/after.raw" "$img"
}

truncate -s "$SIZE" "$WORK/disk.raw"
crash_case raw "$WORK/disk.raw" raw

for fmt in vhd vhdx; do
  if ! vhdtool_can "$fmt"; then
    echo "# skipped: vhdtool cannot create $fmt images yet (driver not built)"
    continue
  fi
  bs=512K; [ "$fmt" = vhdx ] && bs=1M
  "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" -b "$bs" "$WORK/dyn.$fmt"
  crash_case "$fmt-dynamic" "$WORK/dyn.$fmt" "$fmt"
  # FUA instead of flushes: each write is acknowledged durable by itself.
  "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" -b "$bs" "$WORK/fua.$fmt"
  crash_case "$fmt-dynamic-fua" "$WORK/fua.$fmt" "$fmt" --fua
  # Differencing: allocation in the child over a parent with data.
  "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" -b "$bs" "$WORK/base.$fmt"
  head -c 1048576 /dev/urandom | "$VHDTOOL" write --offset 0 "$WORK/base.$fmt"
  (cd "$WORK" && "$VHDTOOL" create -f "$fmt" -t differencing -p "base.$fmt" "child.$fmt")
  crash_case "$fmt-differencing" "$WORK/child.$fmt" -
done

finish
