#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool convert round trips: every path through VHD/VHDX/raw gives back the
# source bytes; all-zero blocks become holes in raw outputs and stay
# unallocated in dynamic ones.
. "$(dirname "$0")/common.sh"
need_cmd python3 cmp du
need_vhdtool

M=$((1024 * 1024))
SIZE=$((64 * M))
src="$WORK/src.raw"
$GEN raw "$src" "$SIZE" 2024

# convert_ok DESC ARGS...: run vhdtool convert, counting a failure.
convert_ok() {
  local desc=$1; shift
  if "$VHDTOOL" convert "$@" 2> "$WORK/.err"; then
    return 0
  fi
  not_ok "$desc: vhdtool convert $* failed: $(head -c 300 "$WORK/.err")"
  return 1
}

# round_trip LABEL STEP... : each STEP is "FORMAT[:TYPE[:BLOCK]]"; the source
# goes through every step in turn, then back to raw, and must be unchanged.
round_trip() {
  local label=$1; shift
  local cur=$src n=0 step fmt type bs args out
  for step in "$@"; do
    IFS=: read -r fmt type bs <<< "$step"
    args=(-O "$fmt")
    [ -n "$type" ] && args+=(-t "$type")
    [ -n "$bs" ] && args+=(-b "$bs")
    n=$((n + 1))
    out="$WORK/$label.$n.$fmt"
    convert_ok "$label" "${args[@]}" "$cur" "$out" || return
    [ "$cur" != "$src" ] && rm -f "$cur"
    cur=$out
  done
  out="$WORK/$label.back.raw"
  convert_ok "$label" -O raw "$cur" "$out" || return
  check "$label: round trip equals the source" cmp -s "$out" "$src"
  # Holes: the source is mostly zeros, so a sparse raw output takes far
  # less space than its length.
  local apparent used
  apparent=$(stat -c %s "$out")
  used=$(($(stat -c %b "$out") * $(stat -c %B "$out")))
  check "$label: raw output is sparse ($used of $apparent bytes allocated)" [ "$used" -lt $((apparent / 2)) ]
  check "$label: raw output has the source's length" [ "$apparent" = "$SIZE" ]
  rm -f "$cur" "$out"
}

round_trip raw-vhd-dynamic vhd:dynamic
round_trip raw-vhd-fixed vhd:fixed
round_trip raw-vhd-dynamic-b512k vhd:dynamic:$((512 * 1024))
round_trip raw-vhdx-dynamic vhdx:dynamic
round_trip raw-vhdx-fixed vhdx:fixed
round_trip raw-vhdx-dynamic-b1M vhdx:dynamic:$M
round_trip vhd-to-vhdx vhd:dynamic vhdx:dynamic
round_trip vhdx-to-vhd vhdx:dynamic:$M vhd:fixed
round_trip vhd-fixed-to-vhdx-fixed vhd:fixed vhdx:fixed vhd:dynamic
round_trip raw-raw raw

# A dynamic output keeps all-zero blocks unallocated: its file holds no more
# than the source's non-zero blocks plus the metadata.
nonzero_blocks() {
  "$PYTHON" -c '
import sys
bs = int(sys.argv[2]); z = bytes(bs); n = 0
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(bs)
        if not b: break
        n += b != z[:len(b)]
print(n)' "$1" "$2"
}
dyn="$WORK/dyn.vhd"
if convert_ok "dynamic sparse" -O vhd -t dynamic "$src" "$dyn"; then
  sz=$(stat -c %s "$dyn")
  max=$(( $(nonzero_blocks "$src" $((2 * M))) * (2 * M + 4096) + 64 * 1024 ))
  check "dynamic vhd holds only non-zero blocks ($sz <= $max)" [ "$sz" -le "$max" ]
fi
dynx="$WORK/dyn.vhdx"
if convert_ok "dynamic sparse" -O vhdx -t dynamic -b $M "$src" "$dynx"; then
  sz=$(stat -c %s "$dynx")
  max=$(( $(nonzero_blocks "$src" $M) * M + 8 * M ))
  check "dynamic vhdx holds only non-zero blocks ($sz <= $max)" [ "$sz" -le "$max" ]
fi

# -p (progress) changes nothing in the output.
if convert_ok "progress" -p -O vhd "$src" "$WORK/p.vhd" > "$WORK/p.out" 2>&1; then
  same_read "convert -p output reads as the source" "$src" "$VHDTOOL" read "$WORK/p.vhd"
fi

# Converting a differencing image flattens its chain.
base="$WORK/cbase.vhd"; top="$WORK/ctop.vhd"; model="$WORK/cmodel.raw"
cp --sparse=always "$src" "$model"
if "$VHDTOOL" convert -O vhd "$src" "$base" 2> "$WORK/.err" &&
   "$VHDTOOL" create -t differencing -p "$base" "$top" 2>> "$WORK/.err"; then
  mkdir -p "$WORK/w"
  $GEN writes 77 10 "$SIZE" unaligned "$WORK/w" t > "$WORK/w.list"
  check "flatten: writes into the child" apply_writes "$top" "$model" "$WORK/w.list"
  for f in vhd vhdx raw; do
    if convert_ok "flatten to $f" -O "$f" "$top" "$WORK/flat.$f"; then
      same_read "flatten: differencing -> $f reads as the model" "$model" "$VHDTOOL" read "$WORK/flat.$f"
      if [ "$f" != raw ]; then
        "$VHDTOOL" info --json "$WORK/flat.$f" > "$WORK/flat.json" 2>/dev/null
        check "flatten: $f output has no parent" [ -z "$(json_get "$WORK/flat.json" parent)" ]
      fi
    fi
  done
else
  not_ok "flatten: setup failed: $(head -c 300 "$WORK/.err")"
fi

finish
