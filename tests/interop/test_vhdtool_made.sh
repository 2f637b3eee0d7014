#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Images made by vhdtool (create + write, and convert from raw) must be read
# by qemu-img and libvhdi as the raw data they were made from, with the exact
# virtual size, and pass the checkers (qemu-img check for VHDX only: it does
# not support vpc).
. "$(dirname "$0")/common.sh"
need_cmd qemu-img vhdiinfo python3 cmp
need_vhdtool

M=$((1024 * 1024))

qemu_fmt() { [ "$1" = vhd ] && echo vpc || echo vhdx; }

# verify LABEL FMT IMG RAW SIZE: every peer agrees IMG holds RAW.
verify() {
  local label=$1 fmt=$2 img=$3 raw=$4 size=$5 qf out rc
  qf=$(qemu_fmt "$fmt")
  if out=$(qemu-img compare -q -f raw -F "$qf" "$raw" "$img" 2>&1); then
    ok "$label: qemu-img compare identical"
  else
    not_ok "$label: qemu-img compare: ${out:-differs}"
  fi
  local qs
  qs=$(qemu_vsize "$qf" "$img")
  check "$label: qemu-img virtual size ${qs:-?} = $size" [ "$qs" = "$size" ]
  if [ "$fmt" = vhdx ]; then
    if out=$(qemu-img check -q -f vhdx "$img" 2>&1); then
      ok "$label: qemu-img check clean"
    else
      not_ok "$label: qemu-img check: $out"
    fi
  fi
  local ms
  if vhdiinfo "$img" > "$WORK/.vhdiinfo" 2>&1; then
    ms=$(sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p' "$WORK/.vhdiinfo")
    check "$label: vhdiinfo media size ${ms:-?} = $size" [ "$ms" = "$size" ]
  else
    not_ok "$label: vhdiinfo failed: $(tail -3 "$WORK/.vhdiinfo")"
  fi
  # libvhdi reads VHD at about 30 MiB/s: in the sanitizer pass (VHD_TEST_SMALL)
  # the large VHD cases leave the content to qemu-img and vhd_oracle.py.
  if [ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ] &&
     ! { [ "${VHD_TEST_SMALL:-0}" = 1 ] && [ "$fmt" = vhd ] && [ "$size" -gt $((16 * M)) ]; }; then
    same_read "$label: libvhdi reads the raw source" "$raw" "$VHDI_READ" "$img"
  fi
  if [ "$fmt" = vhd ]; then
    same_read "$label: vhd_oracle.py reads the raw source" "$raw" "$PYTHON" "$TESTS_DIR/interop/vhd_oracle.py" "$img"
  fi
  "$VHDTOOL" check "$img" > "$WORK/.check" 2>&1
  rc=$?
  check "$label: vhdtool check exit $rc = 0" [ "$rc" = 0 ]
}

# one_case FMT TYPE SIZE BLOCK SEED
one_case() {
  local fmt=$1 type=$2 size=$3 bs=$4 seed=$5
  local label="$fmt-$type-$size-b$bs" raw="$WORK/src.raw"
  local battr=()
  [ "$bs" != default ] && battr=(-b "$bs")
  $GEN raw "$raw" "$size" "$seed"

  # create + write (the whole source through stdin, plus one more small
  # unaligned overwrite applied to both sides).
  local img="$WORK/made.$fmt"
  if "$VHDTOOL" create -f "$fmt" -t "$type" -s "$size" "${battr[@]}" "$img" 2> "$WORK/.err" &&
     "$VHDTOOL" write --offset 0 "$img" < "$raw" 2>> "$WORK/.err"; then
    printf 'libvhd interop' > "$WORK/patch"
    "$VHDTOOL" write --offset $((size / 3 + 1)) "$img" < "$WORK/patch" 2>> "$WORK/.err"
    dd if="$WORK/patch" of="$raw" bs=64k seek=$((size / 3 + 1)) oflag=seek_bytes conv=notrunc status=none
    verify "create+write $label" "$fmt" "$img" "$raw" "$size"
  else
    not_ok "create+write $label: vhdtool failed: $(head -c 300 "$WORK/.err")"
  fi
  rm -f "$img"

  # convert from raw
  img="$WORK/conv.$fmt"
  if "$VHDTOOL" convert -O "$fmt" -t "$type" "${battr[@]}" "$raw" "$img" 2> "$WORK/.err"; then
    verify "convert $label" "$fmt" "$img" "$raw" "$size"
  else
    not_ok "convert $label: vhdtool failed: $(head -c 300 "$WORK/.err")"
  fi
  rm -f "$img" "$raw"
}

seed=1
for fmt in vhd vhdx; do
  for size in $M $((10 * M + 512)); do
    one_case "$fmt" fixed "$size" default $seed; seed=$((seed + 1))
  done
  for size in $M $((10 * M + 512)) $((64 * M)); do
    one_case "$fmt" dynamic "$size" default $seed; seed=$((seed + 1))
  done
done
# Non-default block sizes (dynamic; fixed VHD has no blocks).
one_case vhd dynamic $((10 * M + 512)) $((512 * 1024)) 40
one_case vhd dynamic $((24 * M)) $((4 * M)) 41
one_case vhdx dynamic $((24 * M + 4096)) $((1 * M)) 42
one_case vhdx fixed $((10 * M)) $((8 * M)) 44

finish
