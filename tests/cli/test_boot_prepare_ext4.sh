#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool boot-prepare on ext4 (issue 13): unwritten (fallocated) extents
# read as zeros to Linux, and a block vhdboot.efi writes into one through
# the host disk would stay unwritten (read back as zeros). boot-prepare
# must leave none in the image's file: a fixed VHD and a dynamic VHDX
# preallocated with fallocate, and a reserve whose free space is
# preallocated, are checked with filefrag -v (the kernel's FIEMAP flags)
# besides the oracles of boot_prepare_lib.sh. A dynamic image on a block
# device (a loop device) is left alone: no file system between it and the
# loader.
#
# Usage: tests/cli/test_boot_prepare_ext4.sh /path/to/vhdtool
# Needs root and a loop device for the ext4 file system; skipped (77)
# otherwise, with the reason.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd qemu-img python3 sha256sum mkfs.ext4 filefrag fallocate mount umount
. "$(dirname "$0")/boot_prepare_lib.sh"
RESERVE="$PYTHON $(cd "$(dirname "$0")" && pwd)/vhdboot_reserve.py"
[ "$(id -u)" = 0 ] || skip_all "needs root to loop-mount an ext4 file system"
cd "$WORK" || exit 2
truncate -s 1G ext4.img
mkfs.ext4 -q -F ext4.img || skip_all "mkfs.ext4 failed"
mkdir mnt
mount -o loop ext4.img mnt 2> mount.err || skip_all "cannot loop-mount ext4: $(cat mount.err)"
trap 'cd /; umount "$WORK/mnt"; rm -rf "$WORK"' EXIT
cd mnt || exit 2

unwritten() { filefrag -v "$1" | grep -q unwritten; }
none_unwritten() { [ -f "$1" ] && ! unwritten "$1"; }
preallocate() { fallocate -l "$(stat -c %s "$1")" "$1"; }

"$VHDTOOL" create -f vhd -t fixed -s 64M fixed.vhd > /dev/null
head -c $MiB /dev/urandom | "$VHDTOOL" write --offset $((10 * MiB)) fixed.vhd
preallocate fixed.vhd
cp fixed.vhd fixed.before
check "fixed VHD: unwritten extents before" unwritten fixed.vhd
"$VHDTOOL" boot-prepare fixed.vhd > fixed.out 2>&1
check "fixed VHD: boot-prepare wrote them ($(cat fixed.out))" grep -q "no reserve" fixed.out
check "fixed VHD: no unwritten extent left (filefrag -v)" none_unwritten fixed.vhd
check "fixed VHD: no hole" no_holes fixed.vhd
check "fixed VHD: same content" same_as vhd fixed.vhd fixed.before
check "fixed VHD: vhdtool check clean" vhdtool_clean fixed.vhd
rm -f fixed.before

"$VHDTOOL" create -f vhdx -s 256M dyn.vhdx > /dev/null
head -c $((3 * MiB)) /dev/urandom | "$VHDTOOL" write --offset $((5 * MiB)) dyn.vhdx
preallocate dyn.vhdx
check "dynamic VHDX: unwritten extents before" unwritten dyn.vhdx
prepared_case "dynamic VHDX on ext4" vhdx dyn.vhdx $((20 * MiB))
check "dynamic VHDX: no unwritten extent left (filefrag -v)" none_unwritten dyn.vhdx

# A reserve made as vhdboot.efi's layout says, its free space a hole, then
# preallocated: big enough, so it is kept, but its space gets written.
"$VHDTOOL" create -f vhd -s 256M res.vhd > /dev/null
head -c $MiB /dev/urandom | "$VHDTOOL" write --offset 0 res.vhd
$RESERVE add res.vhd $((30 * MiB))
preallocate res.vhd
size=$(stat -c %s res.vhd)
check "VHD with a preallocated reserve: unwritten extents before" unwritten res.vhd
"$VHDTOOL" boot-prepare --reserve $((30 * MiB)) res.vhd > res.out 2>&1
check "VHD with a preallocated reserve: kept ($(cat res.out))" [ "$(stat -c %s res.vhd)" = "$size" ]
check "VHD with a preallocated reserve: no unwritten extent left" none_unwritten res.vhd
check "VHD with a preallocated reserve: vhdtool check clean" vhdtool_clean res.vhd

"$VHDTOOL" create -f vhdx -s 64M dev.vhdx > /dev/null
truncate -s 64M dev.vhdx
if loop=$(losetup -f --show dev.vhdx 2> /dev/null); then
  hash=$(sha256sum < "$loop")
  if "$VHDTOOL" boot-prepare "$loop" > dev.out 2>&1; then
    ok "block device: exit 0 ($(cat dev.out))"
  else
    not_ok "block device: exit 0" "$(cat dev.out)"
  fi
  check "block device: not written" [ "$(sha256sum < "$loop")" = "$hash" ]
  losetup -d "$loop"
else
  echo "# no loop device for the block device case"
fi
finish
