#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# 4 KiB-aligned dynamic VHDs (issue 22): every block libvhd allocates in a
# dynamic or differencing VHD has its data on a 4 KiB file offset, as
# Windows lays out its own VHDs (the padding before the sector bitmap).
# The host offsets come from `vhdtool map --json`; qemu-img and libvhdi
# must read the same bytes as the model; `convert --profile hyperv -t
# dynamic` succeeds (qemu-img has no check for VHD, "vpc": qemu reading
# every byte is its oracle here). An old-layout image
# (qemu-made, data at 512 mod 4096) keeps reading, and the blocks libvhd
# adds to it are aligned too.
. "$(dirname "$0")/common.sh"
need_vhdtool
need_cmd qemu-img cmp
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
MiB=1048576

# misaligned IMG BLOCK_SIZE: the block data starts of layer 0 that are not
# multiples of 4096, one a line (none: empty output); "none" when no block
# is allocated at all, so an empty map cannot pass.
misaligned() {
  V map --json "$1" | $PYTHON -c '
import json, sys
bs = int(sys.argv[1])
starts = {e["offset"] - e["start"] % bs for e in json.load(sys.stdin)
          if e.get("data") and "offset" in e and e["depth"] == 0}
print("\n".join(str(s) for s in sorted(starts) if s % 4096) if starts else "none")' "$2"
}

# random_writes IMG MODEL SIZE N: N writes of 1..9 sectors at random
# sector offsets, into the image and into the raw model.
random_writes() {
  local img=$1 model=$2 size=$3 n=$4 i off len
  for i in $(seq 1 "$n"); do
    off=$(( (RANDOM * 32768 + RANDOM) % (size / 512 - 16) * 512 ))
    len=$(( (RANDOM % 9 + 1) * 512 ))
    head -c "$len" /dev/urandom > piece
    V write --offset "$off" "$img" < piece || return 1
    dd if=piece of="$model" bs=512 seek=$((off / 512)) conv=notrunc status=none
  done
}

same_bytes() {   # DESC MODEL COMMAND...: COMMAND's stdout equals MODEL
  local desc=$1 model=$2; shift 2
  check "$desc" cmp -s <("$@" 2>/dev/null) "$model"
}

oracles() {   # LABEL IMG MODEL [PARENT...]
  local label=$1 img=$2 model=$3; shift 3
  same_bytes "$label: vhdtool reads the model" "$model" V read "$img"
  if [ $# -eq 0 ]; then
    qemu-img convert -f vpc -O raw "$img" q.raw
    check "$label: qemu-img reads the model" cmp -s q.raw "$model"
    rm -f q.raw
  fi
  if [ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ]; then
    same_bytes "$label: libvhdi reads the model" "$model" "$VHDI_READ" "$img" "$@"
  else
    echo "# libvhdi oracle not built: $label not read through libvhdi"
  fi
}

# A new dynamic VHD, several block sizes (the bitmap is 1 sector up to
# 2 MiB blocks, 8 at 16 MiB: already a whole 4 KiB).
for b in 524288 2097152 16777216; do
  bs=$((b / 1024))K
  size=$((64 * MiB))
  rm -f dyn.vhd
  V create -t dynamic -b "$bs" -s 64M dyn.vhd > /dev/null
  head -c "$size" /dev/zero > dyn.raw
  random_writes dyn.vhd dyn.raw "$size" 40 || not_ok "dynamic $bs: writes failed"
  check "dynamic $bs: every block's data is 4 KiB-aligned" test -z "$(misaligned dyn.vhd "$b")"
  check "dynamic $bs: vhdtool check clean" sh -c "'$VHDTOOL' check dyn.vhd > /dev/null"
  oracles "dynamic $bs" dyn.vhd dyn.raw
done

# A differencing VHD over a dynamic one: its own blocks are aligned.
V create -t dynamic -s 64M base.vhd > /dev/null
head -c $((64 * MiB)) /dev/zero > chain.raw
random_writes base.vhd chain.raw $((64 * MiB)) 10
V create -t differencing -p base.vhd child.vhd > /dev/null
random_writes child.vhd chain.raw $((64 * MiB)) 20
check "differencing: every block's data is 4 KiB-aligned" \
  test -z "$(misaligned child.vhd $((2 * MiB)))"
check "differencing: vhdtool check clean" sh -c "'$VHDTOOL' check child.vhd > /dev/null"
oracles "differencing" child.vhd chain.raw base.vhd

# convert --profile hyperv -t dynamic: accepted, and the output meets the
# profile it was made for.
head -c $((24 * MiB)) /dev/urandom > src.raw
dd if=/dev/zero of=src.raw bs=1M seek=4 count=8 conv=notrunc status=none
if V convert --profile hyperv -t dynamic src.raw hv.vhd > conv.out 2>&1; then
  ok "convert --profile hyperv -t dynamic succeeds"
  check "... check --profile hyperv passes" sh -c "'$VHDTOOL' check --profile hyperv hv.vhd > /dev/null"
  check "... every block's data is 4 KiB-aligned" test -z "$(misaligned hv.vhd $((2 * MiB)))"
  oracles "hyperv dynamic" hv.vhd src.raw
else
  not_ok "convert --profile hyperv -t dynamic: $(cat conv.out)"
fi

# Old layout: a qemu-made dynamic VHD (data at 512 mod 4096) still reads
# and takes writes; libvhd's new blocks in it are aligned.
head -c $((64 * MiB)) /dev/zero > old.raw
dd if=src.raw of=old.raw conv=notrunc status=none
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on old.raw old.vhd
qemu-img convert -f vpc -O raw old.vhd old.raw
old_bad=$(misaligned old.vhd $((2 * MiB)) | grep -vc none)
echo "# qemu-made: $old_bad block(s) with misaligned data before libvhd writes"
check "qemu-made: has the old layout (misaligned data)" test "$old_bad" -gt 0
random_writes old.vhd old.raw $((64 * MiB)) 30
oracles "qemu-made after libvhd writes" old.vhd old.raw
check "qemu-made: vhdtool check clean" sh -c "'$VHDTOOL' check old.vhd > /dev/null"
now_bad=$(misaligned old.vhd $((2 * MiB)) | grep -vc none)
check "qemu-made: only qemu's blocks are misaligned ($now_bad of them)" test "$now_bad" = "$old_bad"
finish
