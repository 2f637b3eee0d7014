#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool compact, end to end, VHD and VHDX.
#
# Usage: tests/cli/test_compact.sh /path/to/vhdtool
#
# Each image gets a raw model written with the same bytes (dd); the image's
# content is compared with it before and after compact through qemu-img
# convert (dynamic images) or libvhdi's vhdi_read (VHD chains, when built),
# and through vhdtool read otherwise. The file must give back at least the
# freed blocks (VHD: its length; VHDX: host blocks), vhdtool check and
# qemu-img check must be clean; a VHDX with every other block freed must
# shrink to within one block of its data (blocks moved into the gaps). Then compact is killed (SIGKILL) at random
# moments: every time the image must check without corruption, read as the
# model, and a rerun must finish the job.
set -u

[ $# -eq 1 ] || { echo "usage: $0 /path/to/vhdtool" >&2; exit 2; }
VHDTOOL=$1
case $VHDTOOL in /*) ;; *) VHDTOOL=$(pwd)/$VHDTOOL ;; esac
[ -x "$VHDTOOL" ] || { echo "$0: $VHDTOOL is not an executable" >&2; exit 2; }
command -v qemu-img >/dev/null 2>&1 || { echo "$0: qemu-img not installed; skipping" >&2; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "$0: python3 not installed; skipping" >&2; exit 77; }
VHDI_READ=${VHDI_READ:-}

T=$(mktemp -d "${TMPDIR:-/tmp}/compact-cli.XXXXXX") || exit 2
# The kill loop runs on a disk (/var/tmp) when it can: there each flush
# takes real time, so the kills land inside the work, not after it.
K=$(mktemp -d /var/tmp/compact-kill.XXXXXX 2>/dev/null) || K=$T
trap 'rm -rf "$T" "$K"' EXIT
cd "$T" || exit 2

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name" "command: $*"; fi; }

MiB=1048576
# put IMG MODEL OFFSET_MIB COUNT_MIB random|zero: the same bytes into both.
put() {
  local src=/dev/urandom
  [ "$5" = zero ] && src=/dev/zero
  head -c $(($4 * MiB)) $src > chunk
  "$VHDTOOL" write --offset $(($3 * MiB)) "$1" < chunk || return 1
  dd if=chunk of="$2" bs=$MiB seek="$3" conv=notrunc status=none
}

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
host_bytes() { echo $(($(stat -c %b "$1") * $(stat -c %B "$1"))); }

# same_content IMG MODEL [PARENTS...]: the image reads as the model.
same_content() {
  local img=$1 model=$2 fmt
  shift 2
  fmt=$("$VHDTOOL" info --json "$img" | json_field format)
  if [ $# -eq 0 ]; then
    [ "$fmt" = vhd ] && fmt=vpc
    qemu-img convert -f "$fmt" -O raw "$img" qemu.raw && cmp -s qemu.raw "$model" || return 1
  elif [ "$fmt" = vhd ] && [ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ]; then
    "$VHDI_READ" "$img" "$@" > vhdi.raw && cmp -s vhdi.raw "$model" || return 1
  fi
  "$VHDTOOL" read "$img" > own.raw && cmp -s own.raw "$model"
}

# --- dynamic ---------------------------------------------------------------
for fmt in vhd vhdx; do
  img=dyn.$fmt
  rm -f "$img" model.raw
  "$VHDTOOL" create -f $fmt -s 20M -b 1M "$img" >/dev/null
  truncate -s 20M model.raw
  put "$img" model.raw 0 16 random
  # Eight whole blocks of zeros (one of them the last written) and half a
  # block that must stay.
  put "$img" model.raw 2 3 zero
  put "$img" model.raw 8 1 zero
  put "$img" model.raw 11 3 zero
  put "$img" model.raw 15 1 zero
  head -c $((MiB / 2)) /dev/zero > half
  "$VHDTOOL" write --offset $((5 * MiB)) "$img" < half
  dd if=half of=model.raw bs=$((MiB / 2)) seek=10 conv=notrunc status=none
  check "$fmt dynamic: content before compact" same_content "$img" model.raw
  size_before=$(stat -c %s "$img")
  host_before=$(host_bytes "$img")
  if "$VHDTOOL" compact --json "$img" > out.json 2> err; then
    ok "$fmt dynamic: compact exits 0"
  else
    not_ok "$fmt dynamic: compact exits 0" "$(cat err)"
  fi
  freed=$(json_field blocks-freed < out.json)
  check "$fmt dynamic: 8 blocks freed (got $freed)" test "$freed" -eq 8
  check "$fmt dynamic: content after compact" same_content "$img" model.raw
  size_after=$(stat -c %s "$img")
  host_after=$(host_bytes "$img")
  if [ $fmt = vhd ]; then
    check "vhd: file shorter by >= 8 blocks ($size_before -> $size_after)" \
      test $((size_before - size_after)) -ge $((8 * (MiB + 512)))
  else
    check "vhdx: host bytes fewer by >= 8 blocks ($host_before -> $host_after)" \
      test $((host_before - host_after)) -ge $((8 * MiB))
  fi
  json_after=$(json_field file-size-after < out.json)
  check "$fmt dynamic: JSON file-size-after is the file's size" test "$json_after" -eq "$size_after"
  check "$fmt dynamic: vhdtool check clean" "$VHDTOOL" check "$img"
  if [ $fmt = vhdx ]; then
    check "vhdx dynamic: qemu-img check clean" qemu-img check -q -f vhdx "$img"
  fi
  alloc=$("$VHDTOOL" info --json "$img" | json_field allocated-blocks)
  check "$fmt dynamic: 8 blocks left allocated (got $alloc)" test "$alloc" -eq 8
  "$VHDTOOL" compact "$img" > out.txt 2>&1
  check "$fmt dynamic: text report of a second run says 0 blocks" grep -q ": 0 blocks freed" out.txt
  check "$fmt dynamic: content after a second compact" same_content "$img" model.raw
done

echo "# $SECONDS s so far"
# --- differencing: zeros over parent data stay visible as zeros ------------
for fmt in vhd vhdx; do
  rm -f base.$fmt child.$fmt model.raw
  "$VHDTOOL" create -f $fmt -s 8M -b 1M base.$fmt >/dev/null
  truncate -s 8M model.raw
  put base.$fmt model.raw 0 4 random
  "$VHDTOOL" create -f $fmt -b 1M -p base.$fmt child.$fmt >/dev/null
  put child.$fmt model.raw 1 1 zero     # hides parent data
  put child.$fmt model.raw 5 1 random
  put child.$fmt model.raw 5 1 zero     # zeros over zeros: may go
  put child.$fmt model.raw 6 1 random
  base_sum=$(sha256sum < base.$fmt)
  check "$fmt differencing: content before compact" same_content child.$fmt model.raw base.$fmt
  "$VHDTOOL" compact --json child.$fmt > out.json 2> err || not_ok "$fmt differencing: compact" "$(cat err)"
  freed=$(json_field blocks-freed < out.json)
  want=1
  [ $fmt = vhdx ] && want=2   # block 1 becomes a ZERO block too
  check "$fmt differencing: $want blocks freed (got $freed)" test "$freed" -eq $want
  check "$fmt differencing: content after compact (parent data stays hidden)" \
    same_content child.$fmt model.raw base.$fmt
  check "$fmt differencing: check clean" "$VHDTOOL" check child.$fmt
  check "$fmt differencing: parent untouched" test "$(sha256sum < base.$fmt)" = "$base_sum"
done

echo "# $SECONDS s so far"
# --- usage -------------------------------------------------------------------
"$VHDTOOL" compact > /dev/null 2> err
check "compact without FILE is a usage error" grep -q "missing FILE" err
"$VHDTOOL" compact nosuch.vhd > /dev/null 2> err
rc=$?
check "compact of a missing file fails naming it (rc $rc)" grep -q "nosuch.vhd" err
"$VHDTOOL" help compact > out.txt
check "help compact shows the synopsis" grep -q "vhdtool compact" out.txt

echo "# $SECONDS s so far"
# --- VHDX packing -------------------------------------------------------------
# Many blocks written, every other one then zeroed: compact must free the
# zero blocks and move the others down into the gaps, so the file ends
# within one block of its data. "Its data" is measured independently: an
# empty file made the same way (vhdtool create or qemu-img create) plus the
# allocated blocks.
# make_scattered MAKER IMG MODEL: a 48 MiB VHDX in 1 MiB blocks, odd blocks
# random, even ones zeros written over random data.
make_scattered() {
  rm -f "$2" "$3"
  case $1 in
    vhdtool) "$VHDTOOL" create -f vhdx -s 48M -b 1M "$2" >/dev/null ;;
    qemu) qemu-img create -q -f vhdx -o block_size=1M,log_size=1M "$2" 48M ;;
  esac
  truncate -s 48M "$3"
  put "$2" "$3" 0 48 random
  for b in $(seq 0 2 47); do put "$2" "$3" "$b" 1 zero; done
}
for maker in vhdtool qemu; do
  make_scattered $maker pack.vhdx model.raw
  case $maker in
    vhdtool) "$VHDTOOL" create -f vhdx -s 48M -b 1M empty.vhdx >/dev/null ;;
    qemu) rm -f empty.vhdx; qemu-img create -q -f vhdx -o block_size=1M,log_size=1M empty.vhdx 48M ;;
  esac
  cp pack.vhdx before.vhdx
  size_before=$(stat -c %s pack.vhdx)
  "$VHDTOOL" compact pack.vhdx > /dev/null 2> err || not_ok "vhdx packing ($maker): compact" "$(cat err)"
  alloc=$("$VHDTOOL" info --json pack.vhdx | json_field allocated-blocks)
  data=$(($(stat -c %s empty.vhdx) + alloc * MiB))
  size_after=$(stat -c %s pack.vhdx)
  check "vhdx packing ($maker): 24 blocks left (got $alloc)" test "$alloc" -eq 24
  check "vhdx packing ($maker): file within one block of its data ($size_before -> $size_after, data $data)" \
    test "$size_after" -le $((data + MiB))
  check "vhdx packing ($maker): qemu-img compare with the copy made before" \
    qemu-img compare -q -f vhdx -F vhdx pack.vhdx before.vhdx
  check "vhdx packing ($maker): content" same_content pack.vhdx model.raw
  check "vhdx packing ($maker): vhdtool check clean" "$VHDTOOL" check pack.vhdx
  check "vhdx packing ($maker): qemu-img check clean" qemu-img check -q -f vhdx pack.vhdx
done

echo "# $SECONDS s so far"
# --- SIGKILL at random moments ------------------------------------------------
# kill_loop NAME ORIG MODEL KILLS: compact a copy of ORIG (on $K) and kill it
# at a random moment, KILLS times. Every time the image must check without
# corruption and read as MODEL (a pending log replayed by the reader), and a
# rerun must finish the job, after which the independent readers agree.
kill_loop() {
  local name=$1 orig=$2 model=$3 kills=$4 ext=${2##*.}
  local k="$K/k.$ext" i pid rc bad=0 landed=0 span_us t0
  # How long one whole compact takes here and now: the kills are spread
  # over that span, whatever the machine's load.
  cp "$orig" "$k"
  t0=$(date +%s%N)
  "$VHDTOOL" compact "$k" > /dev/null 2>&1
  span_us=$((($(date +%s%N) - t0) / 1000))
  for i in $(seq 1 "$kills"); do
    cp "$orig" "$k"
    "$VHDTOOL" compact "$k" > /dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%06d' $(((RANDOM * 32768 + RANDOM) % span_us % 1000000)))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ $? -eq 137 ] && landed=$((landed + 1))
    "$VHDTOOL" check "$k" > check.out 2>&1
    rc=$?
    # 0 clean, 3 leaked space only (allowed after a crash).
    if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
      bad=1; not_ok "$name kill $i: check after the kill (rc $rc)" "$(cat check.out)"; continue
    fi
    # vhdtool read here, the independent readers after the rerun below.
    if ! "$VHDTOOL" read "$k" > own.raw || ! cmp -s own.raw "$model"; then
      bad=1; not_ok "$name kill $i: content after the kill"; continue
    fi
    if ! "$VHDTOOL" compact "$k" > /dev/null 2> err; then
      bad=1; not_ok "$name kill $i: rerun" "$(cat err)"; continue
    fi
    if ! same_content "$k" "$model" || ! "$VHDTOOL" check "$k" > /dev/null 2>&1; then
      bad=1; not_ok "$name kill $i: content and check after the rerun"; continue
    fi
    if [ "$ext" = vhdx ] && ! qemu-img check -q -f vhdx "$k" > /dev/null 2>&1; then
      bad=1; not_ok "$name kill $i: qemu-img check after the rerun"; continue
    fi
  done
  [ $bad -eq 0 ] && ok "$name: $kills compacts killed at random moments ($landed while running), each image valid, same content, rerun completes"
}

# 8 kills per format, 4 in the sanitizer pass (VHD_TEST_SMALL=1), where each
# vhdtool start costs ASan's set-up and the same code already ran in full;
# the VHDX packing gets 12, and 10 even there (its moves are the newest code).
KILLS=8
PACK_KILLS=12
[ "${VHD_TEST_SMALL:-0}" = 1 ] && KILLS=4 && PACK_KILLS=10
# Small blocks make many moves (each with its own flushes), so the kills land
# inside the work.
for fmt in vhd vhdx; do
  rm -f orig.$fmt model.raw
  "$VHDTOOL" create -f $fmt -s 16M -b $([ $fmt = vhd ] && echo 16K || echo 1M) orig.$fmt >/dev/null
  truncate -s 16M model.raw
  put orig.$fmt model.raw 0 16 random
  for z in 1 4 7 11 14; do put orig.$fmt model.raw $z 1 zero; done
  kill_loop $fmt orig.$fmt model.raw $KILLS
done
make_scattered vhdtool orig.vhdx model.raw
kill_loop "vhdx packing" orig.vhdx model.raw $PACK_KILLS

echo "# $SECONDS s in all"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
