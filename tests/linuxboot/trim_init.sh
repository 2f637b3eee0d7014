#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# /init of test_linux_trim.py's initramfs (busybox): the thin provisioning
# run of issue 19 with the kernel's own NBD client. The image lives on an
# ext4 file system on /dev/vda (so the guest's punch-hole works and
# st_blocks means something); nbdkit serves it on a Unix socket, the
# kernel attaches /dev/nbd0 over two connections, ext4 made with discard
# and mounted -o discard gets files written, a third deleted, fstrim, more
# files, and every file is verified after a remount. TRIM-STAT lines give
# the image's st_blocks (512-byte units) and size at each step.
# mke2fs and fstrim are called by path: busybox sh prefers its own applets.
# Command line: trim.plugin=vhd|file, trim.image=NAME, trim.files=N and
# trim.more=M (4 MiB files before and after the trim), trim.online=0 (mount
# without -o discard: fstrim alone gives the space back).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /host /mnt
plugin=vhd image= files=24 more=8 online=1
for a in $(cat /proc/cmdline); do
  case "$a" in
    trim.plugin=*) plugin=${a#*=} ;;
    trim.image=*) image=${a#*=} ;;
    trim.files=*) files=${a#*=} ;;
    trim.more=*) more=${a#*=} ;;
    trim.online=*) online=${a#*=} ;;
  esac
done
say() { echo "$*" > /dev/console; }
fail() { say "TRIM-FAILED: $*"; poweroff -f; }
stat_line() { sync; say "TRIM-STAT $1 $(stat -c '%b %s' "/host/$image")"; }
while read -r m; do insmod "$m" 2> /dev/null; done < /etc/modules.load
mount -t ext4 /dev/vda /host || fail "cannot mount the host disk"
stat_line start
nbdkit -U /run/nbd.sock -P /run/nbdkit.pid "$plugin" "file=/host/$image" \
  > /dev/console 2>&1 || fail "nbdkit exit $?"
nbd-client -unix /run/nbd.sock /dev/nbd0 -b 512 -C 2 > /dev/console 2>&1 \
  || fail "nbd-client exit $?"
/sbin/mke2fs -q -F -t ext4 -b 4096 -E discard /dev/nbd0 > /dev/console 2>&1 || fail "mke2fs exit $?"
opts=nodiscard
[ "$online" = 1 ] && opts=discard
mount -t ext4 -o "$opts" /dev/nbd0 /mnt || fail "cannot mount /dev/nbd0"
stat_line formatted
write() {   # write NAME-PREFIX COUNT: 4 MiB files of random data
  i=1
  while [ "$i" -le "$2" ]; do
    dd if=/dev/urandom of="/mnt/$1$i" bs=1M count=4 2> /dev/null || fail "write $1$i"
    i=$((i + 1))
  done
  sync
}
write f "$files"
stat_line written
deleted=0 i=1
while [ "$i" -le "$files" ]; do
  if [ $((i % 3)) -eq 0 ]; then rm "/mnt/f$i"; deleted=$((deleted + 1)); fi
  i=$((i + 1))
done
sync
stat_line deleted
say "TRIM-DELETED: $deleted"
/sbin/fstrim -v /mnt > /dev/console 2>&1 || fail "fstrim exit $?"
stat_line trimmed
write g "$more"
stat_line rewritten
(cd /mnt && sha256sum f* g*) > /tmp/sums
umount /mnt || fail "umount"
mount -t ext4 /dev/nbd0 /mnt || fail "cannot mount /dev/nbd0 again"
(cd /mnt && sha256sum -c /tmp/sums > /tmp/verify 2>&1) || fail "verify: $(grep -v OK /tmp/verify | head -3)"
say "TRIM-VERIFIED: $(wc -l < /tmp/sums)"
umount /mnt || fail "umount"
nbd-client -d /dev/nbd0 > /dev/null 2>&1
pid=$(cat /run/nbdkit.pid)
kill "$pid"
i=0
while [ -d "/proc/$pid" ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.1; done
stat_line closed
# The image's own check, here where its holes are still holes (a copy
# taken out with debugfs would have them filled).
if [ "$plugin" != "${plugin%nbdkit-vhd-plugin.so}" ]; then
  /sbin/vhdtool check "/host/$image" > /tmp/check 2>&1
  say "TRIM-CHECK: $?"
  sed 's/^/TRIM-CHECK-OUT /' /tmp/check > /dev/console
fi
umount /host || fail "umount /host"
say "TRIM-DONE"
poweroff -f
