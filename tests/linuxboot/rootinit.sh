#!/bin/sh
# /sbin/init of the busybox root inside the image: the marker, a file and
# 8 MiB of random data with their hash, then the shutdown order of issue
# 12: root read-only, the server stopped (its close makes the image
# clean), the host file system unmounted, power off.
export PATH=/bin:/sbin
up() { cut -d' ' -f1 /proc/uptime; }
pid=$(cat /run/vhdboot/nbdkit.pid 2>/dev/null)
name=
[ -n "$pid" ] && name=$(tr '\0' ' ' < /proc/$pid/cmdline | cut -d' ' -f1)
echo "LINUXBOOT-ROOT-MARKER $(up) root=$(awk '$2=="/" {print $1}' /proc/mounts) server=${name:-none}" > /dev/console
echo "written by the guest, boot $(cat /proc/sys/kernel/random/boot_id)" > /written.txt
dd if=/dev/urandom of=/big.bin bs=1M count=8 2> /dev/null
sha256sum /big.bin > /big.sha256
echo "LINUXBOOT-HASH: $(cut -d' ' -f1 /big.sha256)" > /dev/console
sync
mount -o remount,ro / || echo "LINUXBOOT-WARN remount ro failed" > /dev/console
if [ -n "$pid" ]; then
  kill "$pid"
  i=0
  while kill -0 "$pid" 2> /dev/null && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done
  kill -0 "$pid" 2> /dev/null && echo "LINUXBOOT-WARN server still running" > /dev/console
fi
if grep -q ' /run/vhdboot/host ' /proc/mounts; then
  umount /run/vhdboot/host 2> /dev/null || mount -o remount,ro /run/vhdboot/host ||
    echo "LINUXBOOT-WARN host file system still mounted rw" > /dev/console
fi
echo "LINUXBOOT-ROOT-DONE $(up)" > /dev/console
poweroff -f
