#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool boot-prepare on NTFS through ntfs-3g (issue 13): NTFS keeps the
# never-written parts of an image file as sparse runs, which vhdboot.efi's
# NTFS mapper cannot write into, but ntfs-3g (a FUSE file system) answers
# SEEK_HOLE with the end of the file and has no FIEMAP: only its block
# count shows the holes. boot-prepare must leave the file fully allocated
# (st_blocks * 512 >= size, as ntfs-3g counts clusters) with the same
# content, besides the oracles of boot_prepare_lib.sh.
#
# Usage: tests/cli/test_boot_prepare_ntfs.sh /path/to/vhdtool
# Needs root, /dev/fuse, mkntfs and ntfs-3g; skipped (77) otherwise.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd qemu-img python3 sha256sum mkntfs ntfs-3g umount
. "$(dirname "$0")/boot_prepare_lib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root to mount NTFS with ntfs-3g"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
cd "$WORK" || exit 2
truncate -s 1G ntfs.img
mkntfs -q -F -Q ntfs.img > /dev/null 2>&1 || skip_all "mkntfs failed"
mkdir mnt
ntfs-3g ntfs.img mnt 2> mount.err || skip_all "cannot mount NTFS with ntfs-3g: $(cat mount.err)"
trap 'cd /; umount "$WORK/mnt"; rm -rf "$WORK"' EXIT
cd mnt || exit 2

allocated_bytes() { echo $(($(stat -c %b "$1") * 512)); }
sparse() { [ "$(allocated_bytes "$1")" -lt "$(stat -c %s "$1")" ]; }
fully_allocated() { [ -f "$1" ] && ! sparse "$1"; }

"$VHDTOOL" create -f vhdx -s 256M dyn.vhdx > /dev/null
head -c $((3 * MiB)) /dev/urandom | "$VHDTOOL" write --offset $((5 * MiB)) dyn.vhdx
cp dyn.vhdx dyn.before
check "dynamic VHDX on NTFS: sparse before" sparse dyn.vhdx
"$VHDTOOL" boot-prepare --reserve $((20 * MiB)) dyn.vhdx > prep.out 2>&1
check "dynamic VHDX on NTFS: fully allocated after boot-prepare ($(cat prep.out))" \
  fully_allocated dyn.vhdx
check "dynamic VHDX on NTFS: same content" same_as vhdx dyn.vhdx dyn.before
"$VHDTOOL" boot-prepare --reserve $((20 * MiB)) dyn.vhdx > again.out 2>&1
check "dynamic VHDX on NTFS: a second run writes nothing" wrote_nothing again.out
rm -f dyn.before
prepared_case "dynamic VHDX on NTFS" vhdx dyn.vhdx $((40 * MiB))

"$VHDTOOL" create -f vhd -t fixed -s 64M fixed.vhd > /dev/null
head -c $MiB /dev/urandom | "$VHDTOOL" write --offset $((10 * MiB)) fixed.vhd
cp fixed.vhd fixed.before
check "fixed VHD on NTFS: sparse before" sparse fixed.vhd
"$VHDTOOL" boot-prepare fixed.vhd > fixed.out 2>&1
check "fixed VHD on NTFS: fully allocated ($(cat fixed.out))" fully_allocated fixed.vhd
check "fixed VHD on NTFS: same content" same_as vhd fixed.vhd fixed.before
check "fixed VHD on NTFS: vhdtool check clean" vhdtool_clean fixed.vhd
finish
