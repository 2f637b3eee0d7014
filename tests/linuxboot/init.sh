#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# /init of the test initramfs (busybox): load the modules, attach the
# virtual disk with vhdboot-attach, mount the root it names and switch to
# it. Kernel command line: root= (a device, or PARTUUID= resolved through
# the links vhdboot-attach makes), vhdtest.direct=1 (no attach: the root is
# a plain partition), vhdtest.onfail=shell|poweroff (what a failure does:
# the test powers off so that the boot ends; a person wants the shell),
# vhdtest.break=plugin (the plugin emptied first: nbdkit cannot start),
# vhdtest.attach=direct (run vhdboot-attach itself instead of the
# initramfs-tools boot script, which skips boots without vhdboot).
# The attach normally runs through the project's initramfs-tools script
# (scripts/local-top/vhdboot) with a stand-in for initramfs-tools'
# /scripts/functions, as it would in a Debian initramfs.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /newroot /tmp
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
up() { cut -d' ' -f1 /proc/uptime; }
echo "LINUXBOOT-INITRAMFS $(up)" > /dev/console
root= direct= onfail=poweroff how=script
for a in $(cat /proc/cmdline); do
  case "$a" in
    root=*) root=${a#root=} ;;
    vhdtest.direct=1) direct=1 ;;
    vhdtest.attach=direct) how=direct ;;
    vhdtest.onfail=*) onfail=${a#*=} ;;
    # wherever the build put it (the prefix decides: /usr/local/lib/... by default)
    vhdtest.break=plugin) find / -xdev -name nbdkit-vhd-plugin.so -type f | while read -r f; do : > "$f"; done ;;
  esac
done
failed() {
  echo "LINUXBOOT-FAILED: $*" > /dev/console
  [ "$onfail" = shell ] && exec sh
  poweroff -f
}
while read -r m; do insmod "$m" 2> /dev/null; done < /etc/modules.load
if [ -z "$direct" ]; then
  if [ "$how" = script ]; then
    ONFAIL=$onfail sh /scripts/local-top/vhdboot > /dev/console 2>&1 || failed "local-top script exit $?"
  else
    vhdboot-attach > /dev/console 2>&1 || failed "vhdboot-attach exit $?"
  fi
  echo "LINUXBOOT-ATTACHED $(up)" > /dev/console
fi
case "$root" in
  PARTUUID=*) dev=/dev/disk/by-partuuid/$(echo "${root#PARTUUID=}" | tr A-F a-f) ;;
  *) dev=$root ;;
esac
i=0
while [ ! -b "$dev" ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done
mount -t ext4 -o rw "$dev" /newroot || failed "cannot mount the root $dev"
mount --move /run /newroot/run
mount --move /dev /newroot/dev
mount --move /sys /newroot/sys
mount --move /proc /newroot/proc
exec switch_root /newroot /sbin/init
