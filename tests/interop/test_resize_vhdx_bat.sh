#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# VHDX resize past the BAT region (issue 22): the Windows-made samples
# (1 MiB BAT region, data right behind it, so the region moves to the end),
# a qemu-made VHDX with data (metadata behind its BAT: the region moves too)
# and an empty libvhd-made one (BAT last: it grows in place) are grown to
# 4 TiB and 64 TiB. qemu is the oracle: qemu-img check clean, qemu-img info
# shows the size, qemu-img reads the old range as before and zeros after
# it, and a write near the new end through qemu-io reads back (through
# qemu and vhdtool). Then a SIGKILL loop during the BAT move: each
# survivor has the old or the new size, checks clean (a leak allowed),
# reads as before, and a rerun completes.
#
# qemu-img compare is not used for the grown part: qemu's VHDX driver has
# no block status, so it would read 64 TiB of zeros.
. "$(dirname "$0")/common.sh"
need_vhdtool
need_cmd qemu-img qemu-io cmp
[ -n "$SHARED_DIR" ] && [ -r "$SHARED_DIR/images/CATALOG.md" ] ||
  skip_all "the shared images ($SHARED_DIR) are not available"
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
bytes_of() { sed -n 's/^virtual size:.*(\([0-9]*\) bytes).*/\1/p'; }
vsize() { V info "$1" 2>/dev/null | bytes_of; }
quiet() { "$@" > /dev/null 2>&1; }
# Offset of the BAT region as region table 1 says (after any log replay:
# only for images with an empty log).
bat_region() {
  $PYTHON -c '
import struct, sys
t = open(sys.argv[1], "rb").read()[192 * 1024:256 * 1024]
for i in range(struct.unpack_from("<I", t, 8)[0]):
    e = t[16 + 32 * i:48 + 32 * i]
    if e[:4] == bytes.fromhex("6677c22d"):
        print(struct.unpack_from("<Q", e, 16)[0])' "$1"
}
allocated() { V check "$1" 2>&1 | sed -n 's/.* \([0-9]*\) of [0-9]* blocks .*/\1/p'; }
unpack() {
  case $1 in
    *.gz) gzip -dc "$SHARED_DIR/images/$1" > "$2" ;;
    *.bz2) bzip2 -dc "$SHARED_DIR/images/$1" > "$2" ;;
  esac
}
TIB=$((1 << 40))

# The old disk's bytes as qemu reads them (a copy with a pending log is
# replayed by qemu-img check -r first: qemu replays only read-write).
reference() {
  cp "$1" ref.vhdx
  qemu-img check -q -r all -f vhdx ref.vhdx > /dev/null 2>&1
  qemu-img convert -f vhdx -O raw ref.vhdx "$2"
  rm -f ref.vhdx
}

# grow_case NAME ORIG NEWSIZE: every check of one grow, on a copy.
grow_case() {
  local name=$1 orig=$2 new=$3
  local old blocks img=g.vhdx
  old=$(vsize "$orig")
  blocks=$(allocated "$orig")
  cp "$orig" "$img"
  if ! V resize "$img" "$new" > resize.out 2>&1; then
    not_ok "$name: resize to $new: $(cat resize.out)"
    return
  fi
  check "$name: vhdtool check clean" quiet V check "$img"
  check "$name: qemu-img check clean" qemu-img check -q -f vhdx "$img"
  local want=$((${new%T} * TIB))
  check "$name: qemu-img info shows $want bytes" \
    test "$(qemu-img info -f vhdx "$img" | bytes_of)" = "$want"
  check "$name: no block allocated by the grow" test "$(allocated "$img")" = "$blocks"
  qemu-img dd -f vhdx -O raw if="$img" of=now.raw bs=1M count=$((old / 1048576)) 2> /dev/null
  check "$name: qemu reads the old range as before" cmp -s now.raw old.raw
  rm -f now.raw
  check "$name: qemu reads zeros past the old end" \
    qemu-io -f vhdx -c "read -q -P 0 $old 1M" -c "read -q -P 0 $((want - 2097152)) 1M" "$img"
  local at=$((want - 65536))
  qemu-io -f vhdx -c "write -q -P 0x5a $at 64k" "$img" &&
    check "$name: a write near the new end reads back through qemu" \
      qemu-io -f vhdx -c "read -q -P 0x5a $at 64k" "$img" &&
    check "$name: ... and through vhdtool" \
      cmp -s <(V read --offset "$at" --length 65536 "$img") <(head -c 65536 /dev/zero | tr '\0' Z) &&
    check "$name: vhdtool check clean after qemu's write" quiet V check "$img"
  rm -f "$img"
}

# Every Windows-made VHDX of the catalogue with 32 MiB blocks, and the
# Disk2VHD one (2 MiB blocks) to 4 TiB: at 64 TiB its BAT would pass the
# in-memory cap (vhdx.h), which refuses it with a clear error below.
for sample in btrfs.vhdx.gz dissect-dynamic.vhdx.gz iotest-dynamic-1G.vhdx.bz2 \
              vhdx-log-replay.vhdx.gz test-disk2vhd.vhdx.bz2; do
  base=${sample%.*}
  unpack "$sample" "$base"
  reference "$base" old.raw
  for size in 4T 64T; do
    [ "$base" = test-disk2vhd.vhdx ] && [ "$size" = 64T ] && continue
    grow_case "$base to $size" "$base" "$size"
  done
  rm -f old.raw
done
cp test-disk2vhd.vhdx big.vhdx
V resize big.vhdx 64T > big.out 2>&1
st=$?
check "2 MiB blocks to 64 TiB: refused, one line naming the file" \
  test "$st" != 0 -a "$(wc -l < big.out)" = 1 -a -n "$(grep big.vhdx big.out)"
check "... and the image is unchanged" cmp -s big.vhdx test-disk2vhd.vhdx
rm -f big.vhdx test-disk2vhd.vhdx

# qemu-made: BAT at 2 MiB, metadata behind it, data behind both.
qemu-img create -q -f vhdx qemu.vhdx 10G
qemu-io -f vhdx -c "write -q -P 0x11 0 1M" -c "write -q -P 0x22 5G 3M" \
  -c "write -q -P 0x33 $((10 * 1024 * 1048576 - 1048576)) 1M" qemu.vhdx
reference qemu.vhdx old.raw
grow_case "qemu-made 10G to 4T" qemu.vhdx 4T
grow_case "qemu-made 10G to 64T" qemu.vhdx 64T
rm -f old.raw

# libvhd-made and empty: the BAT region is the last structure and grows
# where it is.
V create -t dynamic -s 1G own.vhdx > /dev/null
reference own.vhdx old.raw
grow_case "empty libvhd-made 1G to 64T (in place)" own.vhdx 64T
rm -f old.raw

# Kill loop: SIGKILL at spread moments of the 64 TiB grow of a Windows
# sample, whose BAT region moves (17 MiB written, then the region tables
# through the log). A survivor whose region moved but whose size is still
# the old one was killed between the move and the size's commit.
unpack iotest-dynamic-1G.vhdx.bz2 orig.vhdx
old=$(vsize orig.vhdx)
new=$((64 * TIB))
V read orig.vhdx > old.raw
cp orig.vhdx k.vhdx
t0=$(date +%s%N)
V resize k.vhdx 64T > /dev/null
dur_us=$((($(date +%s%N) - t0) / 1000))
echo "# an uninterrupted 64 TiB grow takes $((dur_us / 1000)) ms"
bat_before=$(bat_region orig.vhdx)
KILLS=16
bad=0 olds=0 news=0 leaks=0 moved=0
for i in $(seq 1 $KILLS); do
  cp orig.vhdx k.vhdx
  "$VHDTOOL" resize k.vhdx 64T > /dev/null 2>&1 &
  pid=$!
  # Spread over an uninterrupted run's duration, plus jitter.
  us=$((dur_us * i / KILLS + RANDOM % 2000))
  sleep "$(printf '%d.%06d' $((us / 1000000)) $((us % 1000000)))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  size=$(vsize k.vhdx)
  V check k.vhdx > check.out 2>&1
  st=$?
  case $size in
    "$old") olds=$((olds + 1))
      [ "$st" = 0 ] && [ "$(bat_region k.vhdx)" != "$bat_before" ] && moved=$((moved + 1)) ;;
    "$new") news=$((news + 1)) ;;
    *) bad=1; echo "  kill $i: size '$size' is neither $old nor $new" ;;
  esac
  case $st in
    0) ;;
    3) leaks=$((leaks + 1)) ;;
    *) bad=1; echo "  kill $i: check exit $st: $(grep -v '^info' check.out | head -2)" ;;
  esac
  cmp -s <(V read --length "$old" k.vhdx 2>/dev/null) old.raw ||
    { bad=1; echo "  kill $i: the old range reads differently"; }
  if ! V resize k.vhdx 64T > rerun.out 2>&1; then
    bad=1; echo "  kill $i: rerun failed: $(cat rerun.out)"
  elif ! V check k.vhdx > check.out 2>&1 || [ "$(vsize k.vhdx)" != "$new" ]; then
    bad=1; echo "  kill $i: after the rerun: size $(vsize k.vhdx), $(grep -v '^info' check.out | head -2)"
  elif ! qemu-img check -q -f vhdx k.vhdx; then
    bad=1; echo "  kill $i: qemu-img check after the rerun failed"
  else
    qemu-img dd -f vhdx -O raw if=k.vhdx of=now.raw bs=1M count=$((old / 1048576)) 2> /dev/null
    cmp -s now.raw old.raw || { bad=1; echo "  kill $i: after the rerun qemu reads other bytes"; }
  fi
done
echo "# $KILLS kills: $olds left the old size ($moved of them with the BAT region moved), $news the new, $leaks a leak"
check "kill loop: every survivor valid, old or new size, content kept, rerun completes" \
  test "$bad" = 0
finish
