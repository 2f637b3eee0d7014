#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# /init of test_linux_attach.py's initramfs (busybox): vhdtool attach and
# detach with the kernel's NBD driver. The images live on an ext4 file
# system on /dev/vda. Every result is a line "ATTACH-KEY: value" on the
# console; the host judges them and the image files afterwards.
# mke2fs is called by path: busybox sh prefers its own applets.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /host /mnt
say() { echo "$*" > /dev/console; }
fail() { say "ATTACH-FAILED: $*"; poweroff -f; }
while read -r m; do insmod "$m" 2> /dev/null; done < /etc/modules.load
mount -t ext4 /dev/vda /host || fail "cannot mount the host disk"
cd /host || fail "cd /host"

# 1. rw: the image holds an MBR with one partition (1 MiB + 48 MiB): a
#    pattern with dd past it, ext4 in the partition, a file in it, detach.
dev=$(vhdtool attach disk.vhdx 2> /tmp/err) || fail "attach rw: $(cat /tmp/err)"
say "ATTACH-DEV: $dev"
say "ATTACH-LIST: $(vhdtool attach --list | tr '\t' ' ')"
vhdtool attach disk.vhdx > /dev/null 2> /tmp/err
say "ATTACH-AGAIN: $? $(cat /tmp/err)"
dd if=pattern.bin of="$dev" bs=1M seek=60 conv=fsync 2> /dev/null || fail "dd"
[ -b "${dev}p1" ] && say "ATTACH-PART: yes" || say "ATTACH-PART: no ${dev}p1"
/sbin/mke2fs -q -F -t ext4 -b 4096 "${dev}p1" > /dev/console 2>&1 || fail "mke2fs exit $?"
mount -t ext4 "${dev}p1" /mnt || fail "mount ${dev}p1"
cp pattern.bin /mnt/file || fail "cp"
umount /mnt || fail "umount"
vhdtool detach "$dev" > /dev/console 2> /tmp/err
say "ATTACH-DETACH: $? $(cat /tmp/err)"
say "ATTACH-LIST-AFTER: $(vhdtool attach --list | wc -l)"
vhdtool check disk.vhdx > /tmp/check 2>&1
say "ATTACH-CHECK: $? $(tail -1 /tmp/check)"

# 2. cow over a differencing image: writes land in memory only.
before=$(sha256sum base.vhdx child.vhdx | cut -c1-64 | tr '\n' ' ')
dev=$(vhdtool attach --mode cow child.vhdx 2> /tmp/err) || fail "attach cow: $(cat /tmp/err)"
dd if=pattern.bin of="$dev" bs=1M seek=1 conv=fsync 2> /dev/null || fail "dd cow"
echo 3 > /proc/sys/vm/drop_caches
dd if="$dev" bs=1M skip=1 count=4 2> /dev/null | cmp -s - pattern.bin
say "ATTACH-COW-READ: $?"
vhdtool detach "$dev" > /dev/null 2> /tmp/err || fail "detach cow: $(cat /tmp/err)"
after=$(sha256sum base.vhdx child.vhdx | cut -c1-64 | tr '\n' ' ')
say "ATTACH-COW-SAME: $([ "$before" = "$after" ] && echo yes || echo "no: $before / $after")"

# 3. nbd-client missing: one line.
mv /sbin/nbd-client /sbin/nbd-client.away
vhdtool attach disk.vhdx > /dev/null 2> /tmp/err
say "ATTACH-NO-CLIENT: $? $(wc -l < /tmp/err) $(cat /tmp/err)"
mv /sbin/nbd-client.away /sbin/nbd-client

cd /
umount /host || fail "umount /host"
say "ATTACH-DONE"
poweroff -f
