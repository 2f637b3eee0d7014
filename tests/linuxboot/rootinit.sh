#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# /sbin/init of the busybox root inside the image: the marker, a file and
# 8 MiB of random data with their hash, then the shutdown order of issue
# 12: root read-only, the NBD device disconnected, the server stopped (its
# close makes the image clean), the host file system unmounted, power off.
export PATH=/bin:/sbin
up() { cut -d' ' -f1 /proc/uptime; }
pid=$(cat /run/vhdboot/nbdkit.pid 2>/dev/null)
name=
[ -n "$pid" ] && name=$(tr '\0' ' ' < /proc/$pid/cmdline | cut -d' ' -f1)
echo "LINUXBOOT-ROOT-MARKER $(up) root=$(awk '$2=="/" {print $1}' /proc/mounts) server=${name:-none}" > /dev/console
# The root disk's request limits: the NBD path must not cut a 1 MiB read
# into 128 KiB requests (linuxkit.expect_root checks).
q=/sys/class/block/$(readlink -f "$(awk '$2=="/" {print $1}' /proc/mounts)" | sed 's,.*/,,')/../queue
echo "LINUXBOOT-QUEUE: max_kb=$(cat $q/max_sectors_kb 2>/dev/null) ra_kb=$(cat $q/read_ahead_kb 2>/dev/null)" > /dev/console
echo "written by the guest, boot $(cat /proc/sys/kernel/random/boot_id)" > /written.txt
# vhdtest.bigmib=N: N MiB of random data instead of 8 (test_linux_bigdisk.py).
big=8
for a in $(cat /proc/cmdline); do
  case "$a" in vhdtest.bigmib=*) big=${a#*=} ;; esac
done
dd if=/dev/urandom of=/big.bin bs=1M count="$big" 2> /dev/null || echo "LINUXBOOT-WARN writing /big.bin failed" > /dev/console
sha256sum /big.bin > /big.sha256
echo "LINUXBOOT-HASH: $(cut -d' ' -f1 /big.sha256)" > /dev/console
sync || echo "LINUXBOOT-WARN sync failed" > /dev/console
echo "LINUXBOOT-WRITTEN $(up)" > /dev/console
# vhdtest.bench=N: sequential write (fsync'd) then read (caches dropped) of
# an N MiB file on the root, timed from /proc/uptime (bench_linux.py).
for a in $(cat /proc/cmdline); do
  case "$a" in vhdtest.bench=*) mib=${a#*=} ;; esac
done
if [ -n "$mib" ]; then
  # vhdtest.maxkb=N: the root disk's max request size for the run (what
  # the NBD device's 128 KiB default costs, bench_linux.py).
  for a in $(cat /proc/cmdline); do
    case "$a" in vhdtest.maxkb=*) echo "${a#*=}" > $q/max_sectors_kb ;; esac
  done
  t0=$(up); dd if=/dev/zero of=/bench.bin bs=1M count="$mib" conv=fsync 2> /dev/null; t1=$(up)
  echo 3 > /proc/sys/vm/drop_caches
  t2=$(up); dd if=/bench.bin of=/dev/null bs=1M 2> /dev/null; t3=$(up)
  rm -f /bench.bin; sync
  # The root's disk's queue: what read-ahead and request size it got.
  echo "LINUXBOOT-BENCH: mib=$mib write_s=$(echo "$t0 $t1" | awk '{print $2-$1}') read_s=$(echo "$t2 $t3" | awk '{print $2-$1}') ra_kb=$(cat $q/read_ahead_kb) max_kb=$(cat $q/max_sectors_kb)" > /dev/console
fi
echo "LINUXBOOT-SYNCED $(up)" > /dev/console
mount -o remount,ro / || echo "LINUXBOOT-WARN remount ro failed" > /dev/console
echo "LINUXBOOT-READONLY $(up)" > /dev/console
# What a system-shutdown hook does on a systemd system (docs/linux-boot.md):
# disconnect, stop the server, unmount the host. Past this point the root
# cannot be read: only busybox, already in memory, runs.
vhdboot-attach --detach > /dev/console 2>&1 || echo "LINUXBOOT-WARN detach failed" > /dev/console
echo "LINUXBOOT-ROOT-DONE $(up)" > /dev/console
exec /bin/busybox poweroff -f
