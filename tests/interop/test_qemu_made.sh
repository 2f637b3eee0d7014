#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Images made by qemu-img must read through vhdtool exactly as the raw data
# they were made from (qemu-img is the independent writer here).
. "$(dirname "$0")/common.sh"
need_cmd qemu-img python3 cmp
need_vhdtool

M=$((1024 * 1024))

# qemu_case LABEL FMT OPTIONS SIZE SEED
qemu_case() {
  local label=$1 fmt=$2 opts=$3 size=$4 seed=$5
  local raw="$WORK/$label.raw" img="$WORK/$label.img"
  $GEN raw "$raw" "$size" "$seed"
  if ! qemu-img convert -q -f raw -O "$fmt" -o "$opts" "$raw" "$img"; then
    not_ok "$label: qemu-img convert failed (test setup)"
    return
  fi
  same_read "$label: vhdtool read equals the raw source" "$raw" "$VHDTOOL" read "$img"
  local vs
  vs=$(vhdtool_vsize "$img")
  check "$label: vhdtool info virtual-size $vs = $size" [ "$vs" = "$size" ]
  rm -f "$raw" "$img"
}

# VHD: qemu's vpc driver has a fixed 2 MiB block size; force_size keeps the
# size exact (creator "qem2").
for s in $M $((10 * M + 512)) $((64 * M)); do
  qemu_case "vhd-fixed-$s" vpc subformat=fixed,force_size=on "$s" "$s"
  qemu_case "vhd-dynamic-$s" vpc subformat=dynamic,force_size=on "$s" "$((s + 1))"
done
qemu_case "vhd-dynamic-1G" vpc subformat=dynamic,force_size=on $((1024 * M)) 7

# Without force_size qemu rounds the size up to a CHS product and writes
# creator "qemu": the content must still match what qemu itself reads back.
raw="$WORK/chs.raw"; img="$WORK/chs.vhd"
$GEN raw "$raw" $((10 * M)) 99
if qemu-img convert -q -f raw -O vpc "$raw" "$img" &&
   qemu-img convert -q -f vpc -O raw "$img" "$WORK/chs-qemu.raw"; then
  same_read "vhd-chs-rounded: vhdtool read equals qemu-img's read" "$WORK/chs-qemu.raw" "$VHDTOOL" read "$img"
  check "vhd-chs-rounded: virtual size agrees with qemu-img" \
    [ "$(vhdtool_vsize "$img")" = "$(qemu_vsize vpc "$img")" ]
else
  not_ok "vhd-chs-rounded: qemu-img setup failed"
fi
rm -f "$WORK"/chs*

# VHDX: fixed and dynamic, several block sizes; qemu always writes a log
# region and, by default, ZERO block states for zero blocks.
for s in $M $((10 * M + 512)) $((64 * M)); do
  qemu_case "vhdx-dynamic-b1M-$s" vhdx subformat=dynamic,block_size=$M "$s" "$((s + 1))"
done
qemu_case "vhdx-dynamic-b8M" vhdx subformat=dynamic,block_size=$((8 * M)) $((10 * M + 512)) 8
qemu_case "vhdx-dynamic-b32M" vhdx subformat=dynamic,block_size=$((32 * M)) $((64 * M)) 32
for bs in 1 32; do
  qemu_case "vhdx-fixed-b${bs}M" vhdx subformat=fixed,block_size=$((bs * M)) $((24 * M + 4096)) "$bs"
done
qemu_case "vhdx-dynamic-1G" vhdx subformat=dynamic,block_size=$((8 * M)) $((1024 * M)) 11
qemu_case "vhdx-dynamic-blockzero-off" vhdx subformat=dynamic,block_state_zero=off $((16 * M)) 12
qemu_case "vhdx-dynamic-log4M" vhdx subformat=dynamic,log_size=$((4 * M)) $((16 * M)) 13

finish
