#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool compare against qemu-img compare, the oracle: the same exit status
# and the same lines (first differing offset, size warnings) for pairs that
# are equal, differ in one sector (data against data, data against a hole),
# or differ only in size (zeros past the end, or data there), with each
# image as VHD, VHDX or raw.
. "$(dirname "$0")/common.sh"
need_cmd qemu-img cmp
need_vhdtool

M=$((1024 * 1024))
SIZE=$((8 * M))
$GEN raw "$WORK/a.raw" "$SIZE" 16 || exit 1

# poke RAW OFFSET BYTES: write BYTES (text) into a copy's sector.
poke() { printf '%s' "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# Raw variants of the pairs' second image.
cp "$WORK/a.raw" "$WORK/same.raw"
cp "$WORK/a.raw" "$WORK/onesector.raw"
# First byte of a sector inside random data: the two differ by one byte.
off=$(python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
i = next(i for i in range(4096 * 512, len(d), 512) if d[i] != 0)
print(i + 7)' "$WORK/a.raw")
poke "$WORK/onesector.raw" "$off" "$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(chr(ord("A") + (d[int(sys.argv[2])] % 2)))' "$WORK/a.raw" "$off")"
# Data where a holds a hole (zeros): a reads as zeros there.
hole=$(python3 -c 'import sys
d = open(sys.argv[1], "rb").read()
i = next(i for i in range(1 << 20, len(d), 4096) if d[i:i + 4096] == bytes(4096))
print(i + 1000)' "$WORK/a.raw")
cp "$WORK/a.raw" "$WORK/inhole.raw"
poke "$WORK/inhole.raw" "$hole" "x"
cp "$WORK/a.raw" "$WORK/longzero.raw"
truncate -s $((SIZE + M)) "$WORK/longzero.raw"
cp "$WORK/longzero.raw" "$WORK/longdata.raw"
poke "$WORK/longdata.raw" $((SIZE + 4096 + 3)) "y"

# A raw file of an odd length: qemu-img counts it in whole sectors.
head -c 1000001 "$WORK/a.raw" > "$WORK/odd.raw"
cp "$WORK/odd.raw" "$WORK/oddpoke.raw"
poke "$WORK/oddpoke.raw" 1000000 "q"

qfmt() { case $1 in vhd) echo vpc ;; *) echo "$1" ;; esac; }

# image NAME FMT: NAME.raw as FMT (dynamic), path printed.
image() {
  local out="$WORK/$1.$2"
  if [ "$2" != raw ] && [ ! -e "$out" ]; then
    "$VHDTOOL" convert -O "$2" "$WORK/$1.raw" "$out" || return 1
  fi
  echo "$out"
}

# same_as_qemu A_NAME A_FMT B_NAME B_FMT [-s]: both tools, same status, same output.
same_as_qemu() {
  local a b want got wst gst strict=${5:-}
  a=$(image "$1" "$2") && b=$(image "$3" "$4") || { not_ok "$*: convert failed"; return; }
  want=$(qemu-img compare $strict -f "$(qfmt "$2")" -F "$(qfmt "$4")" "$a" "$b" 2>&1); wst=$?
  got=$("$VHDTOOL" compare $strict -f "$2" -F "$4" "$a" "$b" 2>&1); gst=$?
  if [ "$gst" = "$wst" ] && [ "$got" = "$want" ]; then
    ok "compare $strict $1.$2 $3.$4: status $gst, $(echo "$got" | tail -1)"
  else
    not_ok "compare $strict $1.$2 $3.$4: qemu-img says $wst '$want', vhdtool $gst '$got'"
  fi
}

for fa in raw vhd vhdx; do
  for fb in raw vhd vhdx; do
    for other in same onesector inhole longzero longdata; do
      same_as_qemu a "$fa" "$other" "$fb"
    done
    same_as_qemu longdata "$fb" a "$fa"
    # Strict: qemu-img also compares allocation, which differs between
    # formats by design, so it is the oracle only for the size check.
    same_as_qemu a "$fa" longzero "$fb" -s
  done
done

for fb in raw vhd vhdx; do
  same_as_qemu odd raw odd "$fb"
  same_as_qemu oddpoke raw odd "$fb"
done
same_as_qemu odd raw odd raw -s
# (qemu-img -s would also compare allocation, here raw's against VHD's.)
"$VHDTOOL" compare -s "$WORK/odd.raw" "$(image odd vhdx)" > /dev/null
check "compare -s of an odd-length raw file and its VHDX copy: 0" [ $? = 0 ]

# Strict on equal sizes judges content only.
"$VHDTOOL" compare -s "$(image a vhdx)" "$(image same vhd)" > /dev/null
check "compare -s of equal-sized equal images: 0" [ $? = 0 ]
"$VHDTOOL" compare -s "$(image a vhdx)" "$(image onesector vhd)" > /dev/null
check "compare -s of equal-sized different images: 1" [ $? = 1 ]

# Errors are 2, not 1 ("different").
"$VHDTOOL" compare "$WORK/a.raw" "$WORK/missing.vhd" 2> "$WORK/err"
check "a missing image: status 2" [ $? = 2 ]
check "a missing image: one line naming it" grep -q "missing.vhd" "$WORK/err"
"$VHDTOOL" compare "$WORK/a.raw" 2> /dev/null
check "a missing operand: status 2" [ $? = 2 ]
"$VHDTOOL" compare -f vhdx "$WORK/a.raw" "$WORK/a.raw" 2> /dev/null
check "-f vhdx on a raw file: status 2" [ $? = 2 ]

finish
