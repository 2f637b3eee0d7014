#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Trim, write-zeroes and fast-zero through the plugin. Whole blocks that
# are trimmed or zeroed with may-trim must be freed (vhdtool counts fewer
# allocated blocks; the file does not grow on the host), zero without
# may-trim keeps them allocated, every zeroed range reads as zeros and
# every other byte is unchanged (a partial trim may leave its bytes), and the image checks clean afterwards
# (vhdtool check; qemu-img check for VHDX). A fast zero either succeeds
# or fails with ENOTSUP leaving the range untouched. discard=false turns
# trim off and keeps blocks allocated.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd

SIZE=$((32 * 1024 * 1024))

bytes() {
  $PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2])))' "$1" "$2"
}

# zero_model MODEL OFFSET LENGTH
zero_model() {
  dd if=/dev/zero of="$1" bs=4096 seek="$2" count="$3" oflag=seek_bytes iflag=count_bytes conv=notrunc status=none
}

allocated() { "$VHDTOOL" info --json "$1" > "$WORK/info.json" && json_get "$WORK/info.json" allocated-blocks; }
host_bytes() { echo $(( $(stat -c %b "$1") * 512 )); }

# fill IMAGE MODEL BS: blocks 0..15 full of random data, in image and model
# (one contiguous write).
fill() {
  local img=$1 model=$2 bs=$3
  truncate -s "$SIZE" "$model"
  bytes "$bs" $((16 * bs)) > "$WORK/blks"
  "$VHDTOOL" write --offset 0 "$img" < "$WORK/blks"
  dd if="$WORK/blks" of="$model" bs=1M conv=notrunc status=none
  rm -f "$WORK/blks"
}

trim_case() {
  local fmt=$1 bs=$2 img="$WORK/t.$1" model="$WORK/t.model"
  rm -f "$img"
  if [ "$fmt" = raw ]; then
    truncate -s "$SIZE" "$img"
  else
    "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" -b "$bs" "$img"
  fi
  fill "$img" "$model" "$bs"
  local a0 d0 a1 d1
  [ "$fmt" = raw ] || a0=$(allocated "$img")
  d0=$(host_bytes "$img")

  local c="$NBDCLIENT op --socket \"\$unixsocket\""
  local fz="$NBDCLIENT fast-zero --socket \"\$unixsocket\""
  # Blocks 0-3 trimmed, 4-5 zeroed with may-trim, 6 zeroed keeping the
  # allocation, 4 KiB trimmed inside block 8 and 4 KiB zeroed in block 9.
  captive "$img" -- "
    $c trim --offset 0 --length $((4 * bs)) &&
    $c zero --may-trim --offset $((4 * bs)) --length $((2 * bs)) &&
    $c zero --offset $((6 * bs)) --length $bs &&
    $c trim --fua --offset $((8 * bs + 4096)) --length 4096 &&
    $c zero --offset $((9 * bs + 512)) --length 4096 &&
    $fz --offset $((10 * bs + 1024)) --length 4096 > '$WORK/fz-partial' &&
    $fz --offset $((20 * bs)) --length $((2 * bs)) > '$WORK/fz-hole' &&
    $fz --offset $((11 * bs)) --length $bs > '$WORK/fz-whole'
  " > "$WORK/out" 2>&1 || { not_ok "$fmt: trim/zero requests failed: $(head -c 500 "$WORK/out")"; return; }
  ok "$fmt: trim, zero and fast-zero requests accepted"

  zero_model "$model" 0 $((6 * bs))
  zero_model "$model" $((6 * bs)) "$bs"
  # A partial trim promises zeros or the old bytes (NBD: unspecified; the
  # library: nothing written, host pages punched where they lie inside).
  "$VHDTOOL" read --offset $((8 * bs + 4096)) --length 4096 "$img" > "$WORK/trimmed"
  dd if="$model" bs=4096 skip=$(((8 * bs + 4096) / 4096)) count=1 status=none > "$WORK/old"
  if cmp -s "$WORK/trimmed" "$WORK/old"; then
    echo "# $fmt: the partial trim left the old bytes"
  else
    check "$fmt: a partial trim reads as zeros or as before" cmp -s "$WORK/trimmed" /dev/zero -n 4096
    zero_model "$model" $((8 * bs + 4096)) 4096
  fi
  zero_model "$model" $((9 * bs + 512)) 4096
  local r
  r=$(cat "$WORK/fz-partial"); echo "# $fmt: fast zero inside an allocated block: $r"
  [ "$r" = ok ] && zero_model "$model" $((10 * bs + 1024)) 4096
  r=$(cat "$WORK/fz-hole")
  check "$fmt: fast zero of unallocated blocks succeeds ($r)" test "$r" = ok
  r=$(cat "$WORK/fz-whole"); echo "# $fmt: fast zero of a whole allocated block: $r"
  [ "$r" = ok ] && zero_model "$model" $((11 * bs)) "$bs"

  same_read "$fmt: zeroed ranges read as zeros, the rest is unchanged" "$model" "$VHDTOOL" read "$img"
  d1=$(host_bytes "$img")
  echo "# $fmt: host bytes before $d0, after $d1"
  check "$fmt: the file takes no more host space than before ($d0 -> $d1)" test "$d1" -le "$d0"
  if [ "$fmt" != raw ]; then
    a1=$(allocated "$img")
    check "$fmt: trim and may-trim zero freed at least blocks 0-5 (allocated $a0 -> $a1)" \
      test "$a1" -le $((a0 - 6))
    check_clean "$fmt: checks clean after trim" "$img"
    [ "$fmt" = vhdx ] && check "$fmt: qemu-img check" qemu-img check -q -f vhdx "$img"
  else
    check "raw: trim gave host space back" test "$d1" -lt "$d0"
  fi

  # discard=false: no trim offered, zero keeps blocks.
  [ "$fmt" = raw ] && return
  "$VHDTOOL" create --force -f "$fmt" -t dynamic -s "$SIZE" -b "$bs" "$img"
  fill "$img" "$model" "$bs"
  a0=$(allocated "$img")
  captive "$img" discard=false -- "$c flags > '$WORK/flags' && $c zero --may-trim --offset 0 --length $((4 * bs))" > "$WORK/out" 2>&1 ||
    { not_ok "$fmt discard=false: zero failed: $(head -c 300 "$WORK/out")"; return; }
  check "$fmt discard=false: trim is not offered ($(cat "$WORK/flags"))" \
    bash -c "! grep -qw trim '$WORK/flags'"
  zero_model "$model" 0 $((4 * bs))
  same_read "$fmt discard=false: zeroed range reads as zeros" "$model" "$VHDTOOL" read "$img"
  a1=$(allocated "$img")
  check "$fmt discard=false: blocks stay allocated ($a0 -> $a1)" test "$a1" = "$a0"
  check_clean "$fmt discard=false: checks clean" "$img"
}

trim_case raw $((512 * 1024))
for fmt in vhd vhdx; do
  if ! vhdtool_can "$fmt"; then
    echo "# skipped: vhdtool cannot create $fmt images yet (driver not built)"
    continue
  fi
  bs=$((512 * 1024)); [ "$fmt" = vhdx ] && bs=$((1024 * 1024))
  trim_case "$fmt" "$bs"
done

finish
