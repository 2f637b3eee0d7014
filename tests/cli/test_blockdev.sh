#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Block devices (issue 11.4, 11.6), on loop devices: as an image (size and
# sector size from the device), as a convert source (P2V) and as a convert
# destination written in place (what `qemu-img convert -O raw img /dev/sdX`
# is used for). The device node is never removed or truncated, whatever
# happens; a destination too small is refused naming both sizes.
#
# Oracles: the loop device's backing file (what is on the device), the
# device's size from blockdev(8), qemu-img convert for the image content,
# test -b for the node.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd losetup blockdev cmp truncate
command -v qemu-img > /dev/null || skip_all "qemu-img (the content oracle) is not installed"
cd "$WORK" || exit 1

# Each loop device as "NODE MAJOR MINOR" (hex), so that a build that removes
# the node (the defect this tests) cannot leave the machine without it.
LOOPS=()
detach_all() {
  local entry l maj min
  for entry in "${LOOPS[@]}"; do
    read -r l maj min <<< "$entry"
    if [ ! -b "$l" ]; then
      echo "# $l is no longer a block device node: made again"
      rm -f "$l" && mknod -m 600 "$l" b $((16#$maj)) $((16#$min))
    fi
    losetup -d "$l" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap detach_all EXIT

# attach FILE [losetup options]: a loop device over FILE in $LOOP.
attach() {
  local f=$1; shift
  LOOP=$(losetup -f --show "$@" "$f" 2>losetup.err) || return 1
  LOOPS+=("$LOOP $(stat -c '%t %T' "$LOOP")")
}
truncate -s 16M back16.img
attach back16.img || skip_all "cannot create a loop device here: $(head -c 200 losetup.err)"
L16=$LOOP

V() { "$VHDTOOL" "$@"; }
MiB=1048576

# --- a device as an image -------------------------------------------------------
V info --json "$L16" > info.json 2> cmd.err || not_ok "info on $L16: $(cat cmd.err)"
json_load info.json
check "info: the virtual size is the device's (blockdev --getsize64)" \
  [ "${J[virtual-size]:-}" = "$(blockdev --getsize64 "$L16")" ]

truncate -s 8M back4k.img
if attach back4k.img -b 4096; then
  V info --json "$LOOP" > info4k.json 2> cmd.err
  json_load info4k.json
  check "info: a 4096-byte-sector device reports 4096-byte logical sectors" \
    [ "${J[logical-sector-size]:-}" = "$(blockdev --getss "$LOOP")" -a "$(blockdev --getss "$LOOP")" = 4096 ]
  # An image that ends inside a device sector: zeroed and written all the same.
  head -c $((5 * MiB + 512)) /dev/urandom > odd.raw
  dd if=/dev/zero of=odd.raw bs=1M seek=1 count=2 conv=notrunc status=none
  head -c $((8 * MiB)) /dev/urandom > back4k.img
  V convert --force -O raw odd.raw "$LOOP" > /dev/null 2> cmd.err ||
    not_ok "convert onto a 4096-byte-sector device: $(cat cmd.err)"
  check "a 4096-byte-sector device holds an image of 5 MiB + 512 bytes, holes as zeros" \
    cmp -s -n $((5 * MiB + 512)) odd.raw "$LOOP"
else
  echo "# no 4096-byte-sector loop device here: $(head -c 200 losetup.err)"
fi

# --- convert from a device (P2V) -------------------------------------------------
head -c $((16 * MiB)) /dev/urandom > back16.img   # the device's content, through the file
dd if=/dev/zero of=back16.img bs=1M seek=4 count=4 conv=notrunc status=none   # a zero run
for fmt in vhdx vhd; do
  V convert -O $fmt "$L16" p2v.$fmt > /dev/null 2> cmd.err ||
    { not_ok "P2V $fmt: convert failed: $(cat cmd.err)"; continue; }
  qemu-img convert -O raw p2v.$fmt p2v.$fmt.raw
  check "P2V $fmt: the image holds the device's bytes (qemu-img reads it)" cmp -s p2v.$fmt.raw back16.img
done

# --- convert onto a device --------------------------------------------------------
V create -s 12M src.vhdx > /dev/null
head -c $((3 * MiB)) /dev/urandom | V write --offset $((2 * MiB)) src.vhdx
head -c $((1 * MiB)) /dev/urandom | V write --offset $((9 * MiB)) src.vhdx
qemu-img convert -O raw src.vhdx src.raw
head -c $((16 * MiB)) /dev/urandom > back16.img   # old content the holes must not show
cp back16.img old16.img

V convert -O raw src.vhdx "$L16" > /dev/null 2> cmd.err
st=$?
check "onto a device without --force: refused (exit $st)" sh -c "[ $st -eq 1 ] && grep -q 'exists' cmd.err"
check "the refused device is unchanged" cmp -s back16.img old16.img

V convert --force -O raw src.vhdx "$L16" > /dev/null 2> cmd.err ||
  not_ok "convert --force onto $L16: $(cat cmd.err)"
check "the device node is still there" [ -b "$L16" ]
check "the device still has its size" [ "$(blockdev --getsize64 "$L16")" = $((16 * MiB)) ]
check "the device's first 12 MiB are the image, holes as zeros (qemu-img oracle)" \
  cmp -s -n $((12 * MiB)) src.raw "$L16"
check "past the image, the device is untouched" \
  cmp -s -i $((12 * MiB)) -n $((4 * MiB)) back16.img old16.img
check "the backing file still has its size" [ "$(stat -c %s back16.img)" = $((16 * MiB)) ]

V create -s 20M big.vhdx > /dev/null
V convert --force -O raw big.vhdx "$L16" > /dev/null 2> cmd.err
st=$?
check "a device too small: refused (exit $st), naming it and both sizes" \
  sh -c "[ $st -eq 1 ] && [ \$(wc -l < cmd.err) -eq 1 ] && grep '$L16' cmd.err | grep -q '$((20 * MiB)).*$((16 * MiB))'"
check "after the refusal the device node is still there" [ -b "$L16" ]

V convert --force -O vhdx src.vhdx "$L16" > /dev/null 2> cmd.err
st=$?
check "a VHDX onto a device: refused (exit $st), naming the device" \
  sh -c "[ $st -eq 1 ] && grep -q '$L16: is a block device' cmd.err"
check "after it the device node is still there" [ -b "$L16" ]

# A device keeps its size: resizing the raw image it is fails and says so.
V resize "$L16" 32M > /dev/null 2> cmd.err
st=$?
check "resize of a device to more than it holds: refused (exit $st)" \
  sh -c "[ $st -eq 1 ] && grep -q '$L16: the image needs $((32 * MiB)) bytes, but the device holds only $((16 * MiB))' cmd.err"
V resize --shrink --force "$L16" 8M > /dev/null 2> cmd.err
st=$?
check "resize of a device to less: refused (exit $st)" \
  sh -c "[ $st -eq 1 ] && grep -q '$L16: is a block device of $((16 * MiB)) bytes' cmd.err"
check "after the resizes the device has its size" [ "$(blockdev --getsize64 "$L16")" = $((16 * MiB)) ]

# A link to a device (as /dev/disk/by-id/ names are) is written through and stays.
ln -s "$L16" disk-link
V convert --force -O raw src.vhdx disk-link > /dev/null 2> cmd.err ||
  not_ok "convert onto a link to the device: $(cat cmd.err)"
check "the link is still a link to the device" sh -c "[ -L disk-link ] && [ -b disk-link ]"
V convert --force -O raw big.vhdx disk-link > /dev/null 2>&1
check "a failed conversion through the link leaves the link" [ -L disk-link ]

finish
