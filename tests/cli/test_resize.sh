#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool resize: grow and shrink VHD and VHDX (fixed, dynamic,
# differencing) and raw images, and the refusals.
#
# Oracles: a raw model file holding the bytes written, grown or cut the
# same way (truncate), compared with cmp against qemu-img convert -O raw
# where qemu reads the image (VHD and VHDX, not differencing), libvhdi
# (vhdi_read) for every VHD and VHDX (differencing ones only up to the
# parent's size: libvhdi fails reading a child past its parent's end) and
# vhdtool read for all. qemu-img info must show the exact new size and
# qemu-img check be clean for VHDX (qemu cannot check vpc); vhdtool check
# must be clean for everything.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd python3 cmp truncate dd qemu-img
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
have_vhdi=false
[ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ] && have_vhdi=true

head -c 3145728 /dev/urandom > data3m
head -c 65536 /dev/urandom > data64k

# Sizes from the text outputs: no python start per check on a busy machine.
bytes_of() { sed -n 's/^virtual size:.*(\([0-9]*\) bytes).*/\1/p'; }
vsize() { V info "$1" | bytes_of; }
qsize() { qemu-img info -f "$1" "$2" | bytes_of; }

qfmt() { case $1 in *.vhdx) echo vhdx ;; *.vhd) echo vpc ;; *) echo raw ;; esac; }

# verify NAME IMG MODEL [PARENT]: every oracle reads IMG as MODEL.
verify() {
  local name=$1 img=$2 model=$3 parent=${4:-} size fmt
  size=$(stat -c %s "$model")
  fmt=$(qfmt "$img")
  check "$name: vhdtool check is clean" V check "$img" > /dev/null
  check "$name: vhdtool info says $size bytes" test "$(vsize "$img")" = "$size"
  same_read "$name: vhdtool read equals the model" "$model" V read "$img"
  if [ -z "$parent" ]; then
    check "$name: qemu-img info says $size bytes" test "$(qsize "$fmt" "$img")" = "$size"
    qemu-img convert -f "$fmt" -O raw "$img" q.raw &&
      check "$name: qemu-img reads the model" cmp -s q.raw "$model"
    rm -f q.raw
    if [ "$fmt" = vhdx ]; then
      check "$name: qemu-img check is clean" qemu-img check -q -f vhdx "$img"
    fi
    if $have_vhdi && [ "$fmt" != raw ]; then
      same_read "$name: libvhdi reads the model" "$model" "$VHDI_READ" "$img"
      check "$name: libvhdi media size is $size" test "$(vhdi_media_size "$img")" = "$size"
    fi
  elif $have_vhdi; then
    local psize
    psize=$(vsize "$parent")
    [ "$psize" -gt "$size" ] && psize=$size
    # vhdi_read stops with an error at the parent's end; under ASan its
    # leak report there must not cut the output short.
    ASAN_OPTIONS=detect_leaks=0 "$VHDI_READ" "$img" "$parent" 2>/dev/null |
      head -c "$psize" > v.raw
    check "$name: libvhdi reads the model up to the parent's size" \
      cmp -s v.raw <(head -c "$psize" "$model")
    rm -f v.raw
  fi
}

# verify_light NAME IMG MODEL: our own check and read only, for the
# steps between fully verified ones (keeps the test fast).
verify_light() {
  check "$1: vhdtool check is clean" V check "$2" > /dev/null
  same_read "$1: vhdtool read equals the model" "$3" V read "$2"
}

# model SRC SIZE OUT: SRC's bytes, cut or zero-extended to SIZE.
model() { head -c "$2" "$1" > "$3"; truncate -s "$2" "$3"; }

for fmt in vhd vhdx; do
  bs=512K
  [ $fmt = vhdx ] && bs=1M
  for type in fixed dynamic; do
    n=$fmt-$type
    img=$n.$fmt
    V create -t $type -b $bs -s 3M $img >/dev/null
    V write $img < data3m || not_ok "$n: write the data"
    # Grow (absolute), grow (relative), shrink refused, shrink forced, regrow.
    V resize $img 7M > /dev/null && model data3m 7M m.raw
    verify "$n grown to 7M" $img m.raw
    V resize $img +1M > /dev/null && model data3m 8M m.raw
    verify_light "$n grown by +1M" $img m.raw
    if V resize $img 2M 2>/dev/null; then not_ok "$n: shrink without --shrink is refused"
    else ok "$n: shrink without --shrink is refused"; fi
    if V resize --shrink $img 2M 2> err; then not_ok "$n: shrink over data is refused"
    else check "$n: the refusal names the data past the end" grep -q "data lies past" err; fi
    check "$n: refused shrinks left 8M" test "$(vsize $img)" = 8388608
    V resize --shrink --force $img -- -6656K > /dev/null && model data3m 1536K m.raw
    verify "$n shrunk (forced) to 1.5M" $img m.raw
    V resize $img 5M > /dev/null && model data3m 1536K m.raw && truncate -s 5M m.raw
    verify "$n regrown to 5M (the cut part reads as zeros)" $img m.raw
    # A shrink over an empty tail needs no --force (a fixed VHDX has every
    # block allocated, so it always does).
    [ $n = vhdx-fixed ] && continue
    V resize --shrink $img 2M > /dev/null && model data3m 1536K m.raw && truncate -s 2M m.raw
    verify_light "$n shrunk over zeros without --force" $img m.raw
    check "$n: now 2M" test "$(vsize $img)" = 2097152
  done

  # Differencing: the child grows past its parent; parent data beyond a
  # shrink of the child must not come back when it grows again.
  n=$fmt-differencing
  V create -t dynamic -b $bs -s 3M p.$fmt > /dev/null && V write p.$fmt < data3m
  V create -t differencing -p p.$fmt c.$fmt > /dev/null
  # 4 KiB aligned: libvhdi 20210425 takes a VHD bitmap byte with any bit
  # set as "all 8 sectors here", so partly written 4 KiB runs would read
  # differently there.
  V write --offset 1003520 c.$fmt < data64k
  cp data3m cm.raw
  dd if=data64k of=cm.raw bs=4096 seek=245 conv=notrunc status=none
  V resize c.$fmt 6M > /dev/null && model cm.raw 6M m.raw
  verify "$n grown past its parent" c.$fmt m.raw p.$fmt
  V resize --shrink --force c.$fmt 1M > /dev/null && model cm.raw 1M m.raw
  verify "$n shrunk below its parent's data" c.$fmt m.raw p.$fmt
  V resize c.$fmt 4M > /dev/null && model cm.raw 1M m.raw && truncate -s 4M m.raw
  verify "$n regrown: the parent's data stays hidden" c.$fmt m.raw p.$fmt
  check "$n: the parent is unchanged" cmp -s <(V read p.$fmt) data3m
done

# The BAT-move case: a dynamic VHD made small, so the table has no room,
# with data in the blocks right after it, grown a lot.
V create -t dynamic -b 4K -s 256K move.vhd > /dev/null && V write move.vhd < <(head -c 262144 data3m)
bat_end() { "$PYTHON" -c '
import struct, sys
f = open(sys.argv[1], "rb"); f.seek(512 + 16); off = struct.unpack(">Q", f.read(8))[0]
f.seek(512 + 28); n = struct.unpack(">I", f.read(4))[0]
f.seek(off); first = struct.unpack(">I", f.read(4))[0]
print(off + n * 4, first * 512)' "$1"; }
read -r end0 first0 < <(bat_end move.vhd)
# (its bitmap padded so the data starts on the next 4 KiB boundary)
check "move: block 0 sits right after the BAT" test $((first0 - end0)) -lt 4096
V resize -p move.vhd 64M > /dev/null
read -r end1 first1 < <(bat_end move.vhd)
check "move: the BAT grew past where block 0 was ($end1 > $first0)" test "$end1" -gt "$first0"
check "move: block 0 moved behind the BAT" test "$first1" -ge "$end1"
model data3m 256K m.raw && truncate -s 64M m.raw
verify "move: dynamic VHD grown 256x" move.vhd m.raw

# A differencing VHD whose locators follow the BAT: they move too. (1 MiB:
# vhdi_read reads whole MiBs, and fails on one past the parent's end.)
V create -t dynamic -b 4K -s 1M lp.vhd > /dev/null && V write lp.vhd < <(head -c 1048576 data3m)
V create -t differencing -p lp.vhd lc.vhd > /dev/null
V write --offset 4096 lc.vhd < data64k
model data3m 1M m.raw
dd if=data64k of=m.raw bs=4096 seek=1 conv=notrunc status=none
V resize lc.vhd 32M > /dev/null && truncate -s 32M m.raw
verify "move: differencing VHD with locators after the BAT" lc.vhd m.raw lp.vhd
check "move: the child still finds its parent from another directory" \
  bash -c "cd / && '$VHDTOOL' read '$WORK/lc.vhd' | cmp -s - '$WORK/m.raw'"

# A creator read by its geometry (Virtual PC): the size becomes a CHS
# product, the same for qemu, libvhdi and vhdtool.
V create --vpc-compat -t dynamic -s 3M vpc.vhd > /dev/null && V write vpc.vhd < data3m
V resize vpc.vhd 10000000 > /dev/null
vs=$(vsize vpc.vhd)
check "vpc: size rounded up to a CHS product ($vs >= 10000000)" test "$vs" -ge 10000000
model data3m "$vs" m.raw
verify "vpc: CHS-sized VHD grown" vpc.vhd m.raw

# raw
cp data3m r.raw
V resize r.raw 5M > /dev/null && model data3m 5M m.raw
check "raw grown" cmp -s r.raw m.raw
V resize --shrink --force r.raw 1M > /dev/null && model data3m 1M m.raw
check "raw shrunk" cmp -s r.raw m.raw

# Usage errors.
for bad in "resize" "resize x.vhd" "resize vhd-dynamic.vhd 1Q" "resize --force vhd-dynamic.vhd 1M"; do
  if V $bad 2>/dev/null; then not_ok "vhdtool $bad fails"; else ok "vhdtool $bad fails"; fi
done
check "vhdtool resize --help" bash -c "'$VHDTOOL' resize --help | grep -q -- --shrink"
finish
