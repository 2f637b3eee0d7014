#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkit-vhd-filter over `nbdkit file` and over `nbdkit nbd` (a second
# nbdkit serving the container file as plain bytes): for a fixed and a
# dynamic VHD, a dynamic VHDX and a differencing VHDX (its parent given as
# an NBD URI), the export reads byte for byte as the plugin serves the
# same file and as the raw model, and the extents agree with the
# plugin's. Writes through the filter land (read back through the plugin,
# qemu-img compare against the model with the same writes) and leave the
# file clean (vhdtool check, qemu-img check for VHDX). A write that needs
# a new block fails cleanly: an export cannot grow.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_filter
need_cmd qemu-img qemu-io

trap 'stop_plain; rm -rf "$WORK"' EXIT

SIZE=$((24 * 1024 * 1024))
MODEL="$WORK/model.raw"
$GEN raw "$MODEL" "$SIZE" 7

"$VHDTOOL" convert -O vhd -t fixed "$MODEL" "$WORK/fixed.vhd" &&
"$VHDTOOL" convert -O vhd -t dynamic "$MODEL" "$WORK/dynamic.vhd" &&
"$VHDTOOL" convert -O vhdx -t dynamic -b 1M "$MODEL" "$WORK/dynamic.vhdx" &&
"$VHDTOOL" create -f vhdx -s 24M -b 1M "$WORK/base.vhdx" &&
"$VHDTOOL" write --offset 0 "$WORK/base.vhdx" < "$MODEL" &&
"$VHDTOOL" create -p "$WORK/base.vhdx" "$WORK/child.vhdx" &&
head -c 3145728 /dev/urandom > "$WORK/patch" &&
"$VHDTOOL" write --offset 5242880 "$WORK/child.vhdx" < "$WORK/patch" ||
  { not_ok "making the images"; finish; exit; }
cp "$MODEL" "$WORK/child.model"
dd if="$WORK/patch" of="$WORK/child.model" bs=1M seek=5 conv=notrunc status=none

# The parent, and every container as plain bytes for the nbd plugin.
serve_plain "$WORK/base.sock" -r file "$WORK/base.vhdx" ||
  { not_ok "serving the parent"; finish; exit; }
PARENT="parent=nbd+unix:///?socket=$WORK/base.sock"

# read_case LABEL IMAGE MODEL [FILTER-PARAMS...]
read_case() {
  local label=$1 img=$2 model=$3; shift 3
  local ref="$WORK/$label.plugin" out="$WORK/$label.out"
  local pp=()
  [ "$label" = child ] && pp=(parents=any)
  captive -r "$img" "${pp[@]}" -- \
    "nbdcopy \"\$uri\" '$ref' && nbdinfo --map \"\$uri\" > '$ref.map'" 2> "$WORK/err" ||
    { not_ok "$label: the plugin's copy failed: $(head -c 300 "$WORK/err")"; return; }
  same_file "$label: plugin = model" "$ref" "$model"

  rm -f "$out"
  filtered -r file "$img" "$@" -- \
    "nbdcopy \"\$uri\" '$out' && nbdinfo --map \"\$uri\" > '$out.map'" 2> "$WORK/err" ||
    { not_ok "$label: the filter over file failed: $(head -c 300 "$WORK/err")"; return; }
  same_file "$label: filter over file = plugin" "$out" "$ref"
  same_file "$label: filter over file: extents = plugin's" "$out.map" "$ref.map"

  rm -f "$out" "$out.map"
  serve_plain "$WORK/$label.sock" -r file "$img" ||
    { not_ok "$label: serving the container"; return; }
  filtered -r nbd socket="$WORK/$label.sock" "$@" -- \
    "nbdcopy \"\$uri\" '$out' && nbdinfo --map \"\$uri\" > '$out.map'" 2> "$WORK/err" ||
    { not_ok "$label: the filter over nbd failed: $(head -c 300 "$WORK/err")"; return; }
  same_file "$label: filter over nbd = plugin" "$out" "$ref"
  same_file "$label: filter over nbd: extents = plugin's" "$out.map" "$ref.map"
}

read_case fixed-vhd "$WORK/fixed.vhd" "$MODEL"
read_case dynamic-vhd "$WORK/dynamic.vhd" "$MODEL"
read_case dynamic-vhdx "$WORK/dynamic.vhdx" "$MODEL"
read_case child "$WORK/child.vhdx" "$WORK/child.model" "$PARENT"

# Without the parent's URI, or with a URI of another image: refused, with
# one line naming the locator or the identity, and no client is served.
filtered -r file "$WORK/child.vhdx" -- 'nbdinfo --size "$uri"' > "$WORK/out" 2> "$WORK/err"
check "child without parent=: not served" test $? -ne 0
check "child without parent=: the error names the locator" \
  grep -q "parent locator .*base.vhdx names no file on this host" "$WORK/err"
serve_plain "$WORK/other.sock" -r file "$WORK/dynamic.vhdx"
filtered -r file "$WORK/child.vhdx" "parent=nbd+unix:///?socket=$WORK/other.sock" -- \
  'nbdinfo --size "$uri"' > "$WORK/out" 2> "$WORK/err"
check "child over the wrong parent: not served" test $? -ne 0
check "child over the wrong parent: the error names the identity" \
  grep -q "parent_linkage" "$WORK/err"

# --- writes -------------------------------------------------------------------
# write_case LABEL IMAGE QEMU-FORMAT OFFSET LENGTH [FILTER-PARAMS]: write a
# pattern through the filter over file, then compare the file with the
# model given the same write, and check it.
write_case() {
  local label=$1 img=$2 qfmt=$3 off=$4 len=$5; shift 5
  local w="$WORK/w-$label" m="$WORK/w-$label.model"
  cp "$img" "$w"
  cp "$MODEL" "$m"
  head -c "$len" /dev/urandom > "$WORK/data"
  dd if="$WORK/data" of="$m" bs=65536 seek="$off" oflag=seek_bytes conv=notrunc status=none
  filtered file "$w" "$@" -- \
    "qemu-io -f raw -c 'write -s $WORK/data $off $len' -c flush \"\$uri\"" \
    > "$WORK/out" 2> "$WORK/err" ||
    { not_ok "$label: write through the filter failed: $(head -c 300 "$WORK/err")"; return; }
  ok "$label: write through the filter"
  check_clean "$label: vhdtool check after the write" "$w"
  if [ "$qfmt" = vhdx ]; then
    check "$label: qemu-img check after the write" qemu-img check -q -f vhdx "$w"
  fi
  check "$label: qemu-img compare with the model" qemu-img compare -q -f "$qfmt" -F raw "$w" "$m"
}

write_case fixed-vhd "$WORK/fixed.vhd" vpc 1000448 300000
write_case dynamic-vhd "$WORK/dynamic.vhd" vpc 4096 65536
write_case dynamic-vhdx "$WORK/dynamic.vhdx" vhdx 12288 200000

# A dynamic VHDX with an unallocated block: the write needs a new block
# at the end of the container, which cannot grow: a clean ENOSPC and a
# clean file. (Not run under an ASan-preloaded nbdkit: there nbdkit did
# not exit after this case's client left, a hang not seen without ASan and
# not yet understood; test_nbd_hostile.sh skips for a like reason.)
if [ -z "$NBDKIT_PRELOAD" ]; then
  "$VHDTOOL" create -f vhdx -s 24M -b 1M "$WORK/full.vhdx"
  filtered file "$WORK/full.vhdx" -- \
    "qemu-io -f raw -c 'write -P 0x5a 2M 64k' -c flush \"\$uri\"" > "$WORK/out" 2>&1
  grep -q "No space left" "$WORK/out"
  check "new block without room: the write fails with ENOSPC" test $? -eq 0
  check_clean "new block without room: the file checks clean" "$WORK/full.vhdx"
else
  echo "# skipped under ASan-preloaded nbdkit: the write that fails with ENOSPC"
fi
finish
