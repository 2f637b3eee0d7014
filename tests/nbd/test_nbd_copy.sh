#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Whole-disk reads through the plugin, for every format and type: nbdcopy
# the export to a file and compare it with `vhdtool convert -O raw` of the
# same image and with the raw model the image was made from. Images come
# from vhdtool and, as an independent writer, from qemu-img. Also: the
# export size, read-only (-r) serving, and serving without structured
# replies (--no-sr: no extents at all).
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd

SIZE=$((24 * 1024 * 1024 + 512 * 3))   # not a multiple of any block size
$GEN raw "$WORK/model.raw" "$SIZE" 41

# copy_case LABEL IMAGE [NBDKIT-OPTIONS/PARAMS...]: the export, copied
# whole, equals vhdtool's raw conversion and the model.
copy_case() {
  local label=$1 img=$2; shift 2
  # One reference per image: the -r and --no-sr cases serve the same one.
  local out="$WORK/$label.out" ref="$img.ref"
  rm -f "$out"
  if [ ! -f "$ref" ] && ! "$VHDTOOL" convert -O raw "$img" "$ref" 2> "$WORK/err"; then
    not_ok "$label: vhdtool convert -O raw failed: $(head -c 300 "$WORK/err")"
    rm -f "$ref"
    return
  fi
  if ! captive "$@" "$img" -- "nbdcopy \"\$uri\" '$out'" 2> "$WORK/err"; then
    not_ok "$label: nbdcopy through the plugin failed: $(head -c 300 "$WORK/err")"
    return
  fi
  same_file "$label: export = vhdtool convert -O raw" "$out" "$ref"
  same_file "$label: export = model" "$out" "$MODEL"
  rm -f "$out"
}

# size_case LABEL IMAGE: export size = vhdtool's virtual size.
size_case() {
  local label=$1 img=$2 got want
  want=$(vhdtool_vsize "$img")
  got=$(captive -r "$img" -- 'nbdinfo --size "$uri"' 2>/dev/null)
  check "$label: export size $got = virtual size $want" test -n "$want" -a "$got" = "$want"
}

# --- raw ---------------------------------------------------------------------
MODEL="$WORK/model.raw"
cp --sparse=always "$MODEL" "$WORK/disk.raw"
copy_case raw "$WORK/disk.raw"
copy_case raw-ro "$WORK/disk.raw" -r
copy_case raw-nosr "$WORK/disk.raw" --no-sr
size_case raw "$WORK/disk.raw"

# --- VHD and VHDX made by vhdtool ----------------------------------------------
for fmt in vhd vhdx; do
  if ! vhdtool_can "$fmt"; then
    echo "# skipped: vhdtool cannot create $fmt images yet (driver not built)"
    continue
  fi
  MODEL="$WORK/model.raw"
  for type in fixed dynamic; do
    img="$WORK/$type.$fmt"
    if "$VHDTOOL" convert -O "$fmt" -t "$type" "$MODEL" "$img" 2> "$WORK/err"; then
      copy_case "$fmt-$type" "$img"
      size_case "$fmt-$type" "$img"
    else
      not_ok "$fmt-$type: vhdtool convert failed: $(head -c 300 "$WORK/err")"
    fi
  done
  # A small block size: many blocks, many extents.
  img="$WORK/small.$fmt"
  bs=512K; [ "$fmt" = vhdx ] && bs=1M
  if "$VHDTOOL" convert -O "$fmt" -t dynamic -b "$bs" "$MODEL" "$img" 2> "$WORK/err"; then
    copy_case "$fmt-dynamic-$bs" "$img"
    copy_case "$fmt-dynamic-$bs-ro" "$img" -r
    copy_case "$fmt-dynamic-$bs-nosr" "$img" --no-sr
  else
    not_ok "$fmt-dynamic-$bs: vhdtool convert failed: $(head -c 300 "$WORK/err")"
  fi

  # Differencing: a child over the dynamic image, with its own writes
  # (unaligned ones too) applied to a copy of the model.
  child="$WORK/child.$fmt"
  MODEL="$WORK/child-model.raw"
  cp --sparse=always "$WORK/model.raw" "$MODEL"
  if (cd "$WORK" && "$VHDTOOL" create -f "$fmt" -t differencing -p "dynamic.$fmt" "child.$fmt") 2> "$WORK/err"; then
    mkdir -p "$WORK/w-$fmt"
    $GEN writes 43 10 "$SIZE" unaligned "$WORK/w-$fmt" w > "$WORK/w-$fmt.list"
    check "$fmt-differencing: writes into the child" apply_writes "$child" "$MODEL" "$WORK/w-$fmt.list"
    copy_case "$fmt-differencing" "$child"
    copy_case "$fmt-differencing-ro" "$child" -r
    size_case "$fmt-differencing" "$child"
  else
    not_ok "$fmt-differencing: vhdtool create failed: $(head -c 300 "$WORK/err")"
  fi
done

# --- made by qemu-img (an independent writer) ---------------------------------
MODEL="$WORK/model.raw"
if vhdtool_can vhd; then
  qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$MODEL" "$WORK/q-dyn.vhd"
  copy_case qemu-vpc-dynamic "$WORK/q-dyn.vhd" -r
  qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on "$MODEL" "$WORK/q-fixed.vhd"
  copy_case qemu-vpc-fixed "$WORK/q-fixed.vhd" -r
fi
if vhdtool_can vhdx; then
  qemu-img convert -f raw -O vhdx -o block_size=1M "$MODEL" "$WORK/q.vhdx"
  copy_case qemu-vhdx "$WORK/q.vhdx" -r
fi

finish
