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
# qemu-img check must be clean. Then compact is killed (SIGKILL) at random
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
# --- SIGKILL at random moments ------------------------------------------------
# 8 kills per format; 4 in the sanitizer pass (VHD_TEST_SMALL=1), where each
# vhdtool start costs ASan's set-up and the same code already ran 8 times.
KILLS=8
[ "${VHD_TEST_SMALL:-0}" = 1 ] && KILLS=4
# Small blocks make many moves (each with its own flushes), so the kills land
# inside the work.
for fmt in vhd vhdx; do
  rm -f orig.$fmt model.raw
  "$VHDTOOL" create -f $fmt -s 16M -b $([ $fmt = vhd ] && echo 16K || echo 1M) orig.$fmt >/dev/null
  truncate -s 16M model.raw
  put orig.$fmt model.raw 0 16 random
  for z in 1 4 7 11 14; do put orig.$fmt model.raw $z 1 zero; done
  # How long one whole compact takes here and now: the kills are spread
  # over that span, whatever the machine's load.
  cp orig.$fmt "$K/k.$fmt"
  t0=$(date +%s%N)
  "$VHDTOOL" compact "$K/k.$fmt" > /dev/null 2>&1
  span_us=$((($(date +%s%N) - t0) / 1000))
  bad=0
  landed=0   # kills that hit a running compact (the rest came after it ended)
  for i in $(seq 1 "$KILLS"); do
    cp orig.$fmt "$K/k.$fmt"
    "$VHDTOOL" compact "$K/k.$fmt" > /dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%06d' $(((RANDOM * 32768 + RANDOM) % span_us % 1000000)))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ $? -eq 137 ] && landed=$((landed + 1))
    "$VHDTOOL" check "$K/k.$fmt" > check.out 2>&1
    rc=$?
    # 0 clean, 3 leaked space only (allowed after a crash).
    if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
      bad=1; not_ok "$fmt kill $i: check after the kill (rc $rc)" "$(cat check.out)"; continue
    fi
    # vhdtool read here, the independent readers after the rerun below.
    if ! "$VHDTOOL" read "$K/k.$fmt" > own.raw || ! cmp -s own.raw model.raw; then
      bad=1; not_ok "$fmt kill $i: content after the kill"; continue
    fi
    if ! "$VHDTOOL" compact "$K/k.$fmt" > /dev/null 2> err; then
      bad=1; not_ok "$fmt kill $i: rerun" "$(cat err)"; continue
    fi
    if ! same_content "$K/k.$fmt" model.raw || ! "$VHDTOOL" check "$K/k.$fmt" > /dev/null 2>&1; then
      bad=1; not_ok "$fmt kill $i: content and check after the rerun"; continue
    fi
  done
  [ $bad -eq 0 ] && ok "$fmt: $KILLS compacts killed at random moments ($landed while running), each image valid, same content, rerun completes"
done

echo "# $SECONDS s in all"
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
