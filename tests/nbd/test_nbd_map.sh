#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Extents: `nbdinfo --map` through the plugin against the allocation the
# test made. Blocks written whole must be data, blocks never written must
# be hole+zero, a block written in part must be data where it was written;
# vhdtool's allocated-blocks count must match. qemu-img map over NBD asks
# with REQ_ONE (one extent per request) and must agree with nbdinfo. For
# raw files the oracle is nbdkit's own file plugin (SEEK_DATA/SEEK_HOLE).
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd
need_cmd qemu-img

MAPCHECK="$PYTHON $NBD_DIR/mapcheck.py"
SIZE=$((32 * 1024 * 1024))

# bytes SEED COUNT: COUNT seeded random bytes on stdout.
bytes() {
  $PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2])))' "$1" "$2"
}

# map_of LABEL IMAGE: normalised nbdinfo map into $WORK/LABEL.map, and the
# qemu-img (REQ_ONE) map into $WORK/LABEL.qmap.
map_of() {
  local label=$1 img=$2
  captive -r "$img" -- "nbdinfo --map \"\$uri\" > '$WORK/$label.nbdinfo' && qemu-img map -f raw --output=json \"\$uri\" > '$WORK/$label.qemu'" 2> "$WORK/err" ||
    { not_ok "$label: mapping failed: $(head -c 300 "$WORK/err")"; return 1; }
  $MAPCHECK nbdinfo "$WORK/$label.nbdinfo" > "$WORK/$label.map"
  $MAPCHECK qemu "$WORK/$label.qemu" > "$WORK/$label.qmap"
  same_file "$label: qemu-img map (REQ_ONE) agrees with nbdinfo --map" "$WORK/$label.map" "$WORK/$label.qmap"
}

# --- raw: same map as nbdkit-file-plugin ---------------------------------------
$GEN raw "$WORK/disk.raw" "$SIZE" 61
if map_of raw "$WORK/disk.raw"; then
  nbdkit -U - -r file "$WORK/disk.raw" --run "nbdinfo --map \"\$uri\"" > "$WORK/file.nbdinfo"
  $MAPCHECK nbdinfo "$WORK/file.nbdinfo" > "$WORK/file.map"
  same_file "raw: map = nbdkit file plugin's map" "$WORK/raw.map" "$WORK/file.map"
fi

# --- dynamic and differencing VHD / VHDX ------------------------------------------
for fmt in vhd vhdx; do
  if ! vhdtool_can "$fmt"; then
    echo "# skipped: vhdtool cannot create $fmt images yet (driver not built)"
    continue
  fi
  bs=$((512 * 1024)); [ "$fmt" = vhdx ] && bs=$((1024 * 1024))
  nblocks=$((SIZE / bs)); last=$((nblocks - 1))
  img="$WORK/dyn.$fmt"
  "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" -b "$bs" "$img"

  # Whole blocks 0, 3, 4, 5 and the last, 4 KiB inside block 9, and a block
  # of zeros at 12 (which must allocate nothing).
  for b in 0 3 4 5 $last; do
    bytes "$b" "$bs" | "$VHDTOOL" write --offset $((b * bs)) "$img"
  done
  bytes 9 4096 | "$VHDTOOL" write --offset $((9 * bs + 8192)) "$img"
  head -c "$bs" /dev/zero | "$VHDTOOL" write --offset $((12 * bs)) "$img"

  if map_of "$fmt-dynamic" "$img"; then
    if $MAPCHECK expect "$WORK/$fmt-dynamic.map" "$SIZE" "$bs" "0,3,4,5,$last" 9 "$((9 * bs + 8192))+4096" > "$WORK/out"; then
      ok "$fmt-dynamic: data exactly where written, hole+zero elsewhere ($(tail -1 "$WORK/out") data bytes)"
    else
      not_ok "$fmt-dynamic: map: $(head -5 "$WORK/out" | tr '\n' ';')"
    fi
  fi
  "$VHDTOOL" info --json "$img" > "$WORK/info.json"
  check "$fmt-dynamic: vhdtool counts 6 allocated blocks" test "$(json_get "$WORK/info.json" allocated-blocks)" = 6

  # Writes through the plugin show up in its own map at once (before any
  # flush): block 20 whole, and block 22 zeroed (stays a hole).
  captive "$img" -- "$NBDCLIENT op --socket \"\$unixsocket\" write --offset $((20 * bs)) --length $bs --byte 0x77 && $NBDCLIENT op --socket \"\$unixsocket\" zero --offset $((22 * bs)) --length $bs && nbdinfo --map \"\$uri\" > '$WORK/live.nbdinfo'" 2> "$WORK/err" ||
    not_ok "$fmt-dynamic: writes through the plugin failed: $(head -c 300 "$WORK/err")"
  $MAPCHECK nbdinfo "$WORK/live.nbdinfo" > "$WORK/live.map"
  if $MAPCHECK expect "$WORK/live.map" "$SIZE" "$bs" "0,3,4,5,20,$last" 9 > "$WORK/out"; then
    ok "$fmt-dynamic: a block written through the plugin is data in the same session"
  else
    not_ok "$fmt-dynamic: live map: $(head -5 "$WORK/out" | tr '\n' ';')"
  fi

  # Differencing: the child's map is the union of the layers.
  (cd "$WORK" && "$VHDTOOL" create -f "$fmt" -t differencing -p "dyn.$fmt" "child.$fmt")
  bytes 30 "$bs" | "$VHDTOOL" write --offset $((7 * bs)) "$WORK/child.$fmt"
  bytes 31 4096 | "$VHDTOOL" write --offset $((3 * bs)) "$WORK/child.$fmt"
  if map_of "$fmt-differencing" "$WORK/child.$fmt"; then
    if $MAPCHECK expect "$WORK/$fmt-differencing.map" "$SIZE" "$bs" "0,3,4,5,7,20,$last" 9 > "$WORK/out"; then
      ok "$fmt-differencing: data = union of child and parent allocation"
    else
      not_ok "$fmt-differencing: map: $(head -5 "$WORK/out" | tr '\n' ';')"
    fi
  fi

  # Fixed images: no allocation table, so data everywhere, or zero where
  # the library can tell; the raw file's data must never be a hole.
  "$VHDTOOL" convert -O "$fmt" -t fixed "$WORK/disk.raw" "$WORK/fixed.$fmt"
  written=$(awk '$3 == 0 { printf "%s%d+%d", sep, $1, $2; sep = "," }' "$WORK/file.map")
  if map_of "$fmt-fixed" "$WORK/fixed.$fmt"; then
    if $MAPCHECK expect "$WORK/$fmt-fixed.map" "$SIZE" "$SIZE" - 0 "$written" > "$WORK/out"; then
      ok "$fmt-fixed: the raw file's data is data in the map"
    else
      not_ok "$fmt-fixed: map: $(head -5 "$WORK/out" | tr '\n' ';')"
    fi
  fi
done

finish
