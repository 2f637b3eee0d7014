#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool map: the extents against qemu-img map (VHD dynamic and fixed:
# the same bytes are data, qemu's zeros are ours too) and against the
# allocation the test made (VHDX dynamic, which qemu-img maps as all data,
# and a two-level VHD chain, which qemu cannot open), compared as sets of
# bytes. Every run also checks that zero extents read as zeros and that
# each offset points at the disk's bytes in that layer's file.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd qemu-img
ORACLE="$PYTHON $(dirname "$0")/map_oracle.py"
SIZE=$((8 * 1024 * 1024))
BS=$((512 * 1024))

# put FILE OFFSET LENGTH SEED: seeded random bytes written through vhdtool
# and into the model disk FILE.model.
put() {
  $PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2])))' "$4" "$3" > "$WORK/chunk"
  "$VHDTOOL" write --offset "$2" "$1" < "$WORK/chunk" || not_ok "write $3 bytes at $2 into $1"
  dd if="$WORK/chunk" of="$1.model" bs=512 seek=$(($2 / 512)) conv=notrunc status=none
}

# new_model FILE: an all-zero model disk.
new_model() { rm -f "$1.model"; truncate -s "$SIZE" "$1.model"; }

# vs_qemu LABEL IMAGE FMT: our map against qemu-img's, content from qemu.
vs_qemu() {
  local label=$1 img=$2 fmt=$3
  "$VHDTOOL" map --json "$img" > "$WORK/ours.json" || { not_ok "$label: vhdtool map failed"; return; }
  qemu-img map -f "$fmt" --output=json "$img" > "$WORK/qemu.json"
  qemu-img convert -f "$fmt" -O raw "$img" "$WORK/content.raw"
  check "$label: qemu-img reads the model's bytes" cmp -s "$WORK/content.raw" "$img.model"
  if $ORACLE qemu "$WORK/ours.json" "$WORK/qemu.json" "$WORK/content.raw" "$img" > "$WORK/out"; then
    ok "$label: data and zero agree with qemu-img map ($(wc -l < "$WORK/ours.json") extents)"
  else
    not_ok "$label: $(head -3 "$WORK/out" | tr '\n' ';')"
  fi
}

# vs_model LABEL IMAGE MODELFILE LAYERS...: our map against the allocation
# the test made, content read by vhdtool and checked against the model.
vs_model() {
  local label=$1 img=$2 model=$3; shift 3
  "$VHDTOOL" map --json "$img" > "$WORK/ours.json" || { not_ok "$label: vhdtool map failed"; return; }
  "$VHDTOOL" read "$img" > "$WORK/content.raw"
  check "$label: vhdtool reads the model's bytes" cmp -s "$WORK/content.raw" "$img.model"
  if $ORACLE model "$WORK/ours.json" "$model" "$img.model" "$@" > "$WORK/out"; then
    ok "$label: data where the test stored it, at the right depth"
  else
    not_ok "$label: $(head -3 "$WORK/out" | tr '\n' ';')"
  fi
}

# --- VHD dynamic: whole blocks, a partial block, zeros that allocate nothing
img=$WORK/dyn.vhd
"$VHDTOOL" create -f vhd -t dynamic -s "$SIZE" -b "$BS" "$img"
new_model "$img"
put "$img" 0 "$BS" 1
put "$img" $((3 * BS)) $((2 * BS)) 2
put "$img" $((9 * BS + 8192)) 4096 3
head -c "$BS" /dev/zero | "$VHDTOOL" write --offset $((12 * BS)) "$img"
put "$img" $((SIZE - 4096)) 4096 4
vs_qemu "vhd dynamic" "$img" vpc

# --- VHD fixed from a sparse raw disk: holes read as zeros ----------------
raw=$WORK/sparse.raw
truncate -s "$SIZE" "$raw"
img=$WORK/fixed.vhd
new_model "$img"
for spec in "65536 8192 5" "$((2 * 1024 * 1024)) 1048576 6" "$((SIZE - 512)) 512 7"; do
  set -- $spec
  $PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2])))' "$3" "$2" > "$WORK/chunk"
  dd if="$WORK/chunk" of="$raw" bs=512 seek=$(($1 / 512)) conv=notrunc status=none
  dd if="$WORK/chunk" of="$img.model" bs=512 seek=$(($1 / 512)) conv=notrunc status=none
done
"$VHDTOOL" convert -O vhd -t fixed "$raw" "$img"
vs_qemu "vhd fixed" "$img" vpc

# --- VHDX dynamic: qemu-img maps it all as data, so the model decides -----
img=$WORK/dyn.vhdx
XBS=$((1024 * 1024))
"$VHDTOOL" create -f vhdx -t dynamic -s "$SIZE" -b "$XBS" "$img"
new_model "$img"
put "$img" 0 "$XBS" 8
put "$img" $((3 * XBS + 4096)) 8192 9
put "$img" $((7 * XBS)) "$XBS" 10
printf '0 0 %d\n0 %d %d\n0 %d %d\n' "$XBS" $((3 * XBS)) "$XBS" $((7 * XBS)) "$XBS" > "$WORK/vhdx.model"
vs_model "vhdx dynamic" "$img" "$WORK/vhdx.model" "$img"
qemu-img convert -f vhdx -O raw "$img" "$WORK/q.raw"
check "vhdx dynamic: qemu-img reads the model's bytes" cmp -s "$WORK/q.raw" "$img.model"

# --- a two-level VHD chain: the child's sectors at depth 0, the parent's
# blocks at depth 1, the rest zeros of the base ----------------------------
base=$WORK/base.vhd child=$WORK/child.vhd
"$VHDTOOL" create -f vhd -t dynamic -s "$SIZE" -b "$BS" "$base"
new_model "$base"
put "$base" 0 "$BS" 11
put "$base" $((4 * BS)) 65536 12
(cd "$WORK" && "$VHDTOOL" create -f vhd -t differencing -p base.vhd child.vhd)
cp "$base.model" "$child.model"
put "$child" 4096 8192 13
put "$child" $((6 * BS)) "$BS" 14
printf '0 4096 8192\n0 %d %d\n1 0 %d\n1 %d %d\n' $((6 * BS)) "$BS" "$BS" $((4 * BS)) "$BS" > "$WORK/chain.model"
vs_model "vhd chain" "$child" "$WORK/chain.model" "$child" "$base"
depths=$($PYTHON -c 'import json, sys; print(sorted({e["depth"] for e in json.load(open(sys.argv[1]))}))' "$WORK/ours.json")
check "vhd chain: extents at depths 0 and 1 ($depths)" test "$depths" = "[0, 1]"
present=$($PYTHON -c 'import json, sys; print(all(e["present"] for e in json.load(open(sys.argv[1]))))' "$WORK/ours.json")
check "vhd chain: the base defines its unallocated blocks (present everywhere)" test "$present" = True

# --- the human map lists the data extents with their file -----------------
"$VHDTOOL" map "$child" > "$WORK/human"
check "human map: header as qemu-img's" grep -q '^Offset          Length          Mapped to       File$' "$WORK/human"
check "human map: the child's and the base's files named" \
  sh -c "grep -q 'child.vhd\$' '$WORK/human' && grep -q 'base.vhd\$' '$WORK/human'"
"$VHDTOOL" map --start-offset $((6 * BS)) --max-length "$BS" --json "$child" > "$WORK/part.json"
check "--start-offset/--max-length: one extent of the child's block" \
  test "$($PYTHON -c 'import json,sys; e=json.load(open(sys.argv[1])); print(len(e), e[0]["start"], e[0]["length"], e[0]["depth"])' "$WORK/part.json")" = "1 $((6 * BS)) $BS 0"
"$VHDTOOL" map --output=xml "$child" 2> "$WORK/err"
check "unknown --output is a usage error (status 1)" test $? -eq 1

finish
