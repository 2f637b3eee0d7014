#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool resize killed (SIGKILL) at random moments: afterwards the image
# opens, has its old or its new size, checks without corruption (a block
# copy interrupted before its BAT entry moved is leaked space, exit 3),
# reads as the model of that size, and a rerun of the same command
# completes: new size, check clean (exit 0, no leak left), content equal to
# the model, and qemu-img reads the same.
#
# Each case is first run once uninterrupted to time it; the kills then land
# at uniformly random points of that duration. The slow case is the
# BAT-move grow of a dynamic VHD with many small blocks behind its table
# (each block move is three flushes). KEEP_FAILED=DIR keeps a copy of each
# killed image there, for a post-mortem.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd cmp truncate qemu-img
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
bytes_of() { sed -n 's/^virtual size:.*(\([0-9]*\) bytes).*/\1/p'; }
vsize() { V info "$1" 2>/dev/null | bytes_of; }
model() { head -c "$2" "$1" > "$3"; truncate -s "$2" "$3"; }
now_ms() { date +%s%3N; }

# crash_case NAME ORIG DATA OLD NEW ROUNDS QFMT SIZE [OPTION...]: ORIG holds
# DATA's bytes on a disk of OLD bytes; `vhdtool resize OPTION... IMG SIZE`
# makes it NEW. QFMT: qemu's name of the format, or - (do not ask qemu).
crash_case() {
  local name=$1 orig=$2 data=$3 old=$4 new=$5 rounds=$6 qfmt=$7 size_arg=$8
  shift 8
  local ext=${orig##*.} img=img.${orig##*.} min=$old
  [ "$new" -lt "$min" ] && min=$new
  model "$data" "$old" old.raw
  model "$data" "$min" new.raw && truncate -s "$new" new.raw

  cp "$orig" "$img"
  local t0 t1 dur
  t0=$(now_ms)
  V resize "$@" "$img" "$size_arg" > /dev/null || { not_ok "$name: uninterrupted resize"; return; }
  t1=$(now_ms)
  dur=$((t1 - t0 + 1))
  echo "# $name: an uninterrupted resize takes $dur ms"

  local i bad=0 leaks=0 olds=0 news=0
  for i in $(seq 1 "$rounds"); do
    cp "$orig" "$img"
    # vhdtool itself in the background (not the V function, whose
    # subshell would die and leave vhdtool running).
    "$VHDTOOL" resize "$@" "$img" "$size_arg" > /dev/null 2>&1 &
    local pid=$!
    sleep "$(printf '0.%03d' $((RANDOM % dur % 1000)))"
    [ "$dur" -ge 1000 ] && sleep $((RANDOM % (dur / 1000 + 1)))
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null

    local size st
    [ -n "${KEEP_FAILED:-}" ] && cp "$img" "$KEEP_FAILED/killed-$i.${ext}"
    size=$(vsize "$img")
    V check "$img" > check.out 2>&1
    st=$?
    if [ "$size" = "$old" ]; then
      olds=$((olds + 1))
      cmp -s <(V read "$img" 2>/dev/null) old.raw || { bad=1; echo "  round $i: old size, content differs"; }
    elif [ "$size" = "$new" ]; then
      news=$((news + 1))
      # A fixed VHD killed right after its new footer shows the old one's
      # bytes in the new area (docs/vhdtool.md): compare what was there.
      if [ "$qfmt" = - ]; then
        cmp -s <(V read "$img" 2>/dev/null | head -c "$min") <(head -c "$min" new.raw) ||
          { bad=1; echo "  round $i: new size, old content differs"; }
      else
        cmp -s <(V read "$img" 2>/dev/null) new.raw || { bad=1; echo "  round $i: new size, content differs"; }
      fi
    else
      bad=1
      echo "  round $i: size '$size' is neither $old nor $new"
    fi
    case $st in
      0) ;;
      3) leaks=$((leaks + 1)) ;;
      *) bad=1; echo "  round $i: check exit $st: $(grep -v '^info' check.out | head -2)" ;;
    esac
    # The rerun finishes the job.
    if ! V resize "$@" "$img" "$size_arg" > rerun.out 2>&1; then
      bad=1; echo "  round $i: rerun failed: $(cat rerun.out)"
    elif ! V check "$img" > check.out 2>&1; then
      bad=1; echo "  round $i: check after the rerun: $(grep -v '^info' check.out | head -2)"
    elif [ "$(vsize "$img")" != "$new" ] || ! cmp -s <(V read "$img" 2>/dev/null) new.raw; then
      if [ "$qfmt" != - ] || ! cmp -s <(V read "$img" 2>/dev/null | head -c "$min") <(head -c "$min" new.raw); then
        bad=1; echo "  round $i: after the rerun the size or content is wrong"
      fi
    fi
  done
  echo "# $name: $rounds kills: $olds left the old size, $news the new, $leaks a leak"
  if [ $bad -eq 0 ]; then ok "$name: every kill left a valid image and the rerun finished"
  else not_ok "$name: a kill left a bad image or the rerun did not finish"; fi
  if [ "$qfmt" != - ]; then
    qemu-img convert -f "$qfmt" -O raw "$img" q.raw &&
      check "$name: qemu-img reads the last image as the model" cmp -s q.raw new.raw
    rm -f q.raw
  fi
}

head -c 4194304 /dev/urandom > data4m
head -c 2097152 data4m > data2m

# The BAT-move grow: 512 blocks of 4 KiB right behind a full table; at
# 128 MiB the table needs 128 KiB, so about 29 blocks move.
V create -t dynamic -b 4K -s 2M move.vhd > /dev/null && V write move.vhd < data2m
# 10 kills of the block-moving grow; 5 in the sanitizer pass (VHD_TEST_SMALL=1),
# which runs the same code under ASan and pays its start-up per vhdtool run.
MOVE_KILLS=10
[ "${VHD_TEST_SMALL:-0}" = 1 ] && MOVE_KILLS=5
crash_case "VHD dynamic grow with block moves" move.vhd data2m 2097152 134217728 $MOVE_KILLS vpc 128M -p

# Shrinks and grows of the other kinds: short, so many kills land before
# or after; each still has to leave a valid image. A fixed VHD is not
# given to qemu: its new area may hold the old footer (see above).
V create -t dynamic -b 4K -s 4M shr.vhd > /dev/null && V write shr.vhd < data4m
crash_case "VHD dynamic shrink" shr.vhd data4m 4194304 1048576 4 vpc 1M --shrink --force
V create -t fixed -s 4M fix.vhd > /dev/null && V write fix.vhd < data4m
crash_case "VHD fixed grow" fix.vhd data4m 4194304 8388608 4 - 8M
V create -t dynamic -b 1M -s 4M dyn.vhdx > /dev/null && V write dyn.vhdx < data4m
crash_case "VHDX dynamic grow" dyn.vhdx data4m 4194304 12582912 4 vhdx 12M
# 8 kills: freeing blocks before the size changed once let a kill show
# zeros at the old size, in about one kill in 25 (the window is short).
crash_case "VHDX dynamic shrink" dyn.vhdx data4m 4194304 1572864 8 vhdx 1536K --shrink --force
finish
