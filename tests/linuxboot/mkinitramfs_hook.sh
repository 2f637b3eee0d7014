#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The project's initramfs-tools hook and local-top script run by the real
# mkinitramfs (no boot): the initramfs it makes must hold vhdboot-attach,
# nbdkit, the plugin, the cow filter, nbd-client, dmsetup, the nbd, dm-mod,
# vfat and exfat modules and scripts/local-top/vhdboot (lsinitramfs is the
# oracle).
#
# mkinitramfs reads /lib/modules/<version> and the hook copies the plugin
# from its installed path; neither exists for the cached Debian kernel and
# the built plugin without installing them on the host. So the run happens
# in a private mount namespace (unshare -m, needs root) where an overlay on
# /usr/lib adds the cached kernel's modules (depmod'ed in a copy) and the
# built plugin; the host sees nothing of it. Without root or unshare the test is skipped (77).
#
# Environment: VHDBOOT_ATTACH, NBD_PLUGIN, VHDBOOT_HOOK (the configured
# hook), LOCAL_TOP (the source script), PLUGIN_DIR, SBINDIR (the plugin's
# and the attach program's install directories), LINUXBOOT_CACHE (the
# kit's cache, with the unpacked kernel), OUT_INITRD (optional: where to
# leave the initramfs for a boot test).
set -u
skip() { echo "SKIP: $*"; exit 77; }
for p in mkinitramfs lsinitramfs unshare depmod; do
  command -v "$p" > /dev/null || skip "$p not installed (scripts/install-deps.sh: initramfs-tools)"
done
[ "$(id -u)" -eq 0 ] || skip "mkinitramfs needs /lib/modules/<version>; a private mount namespace for it needs root"
unshare -m true 2> /dev/null || skip "unshare -m does not work here"
kroot=$(ls -d "$LINUXBOOT_CACHE"/unpacked/linux-image-* 2> /dev/null | head -1)
[ -n "$kroot" ] && [ -d /boot ] || skip "no cached Debian kernel in $LINUXBOOT_CACHE (run a linuxboot boot test first)"
ver=$(basename "$(ls -d "$kroot"/lib/modules/* | head -1)")

work=$(mktemp -d "${TMPDIR:-/tmp}/mkinitramfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
# An overlay over /usr/lib (/lib on a merged-/usr system) adds the
# modules (a copy, hard links where possible, for depmod to write
# modules.dep into: the package ships none) and the built plugin.
# A plugin directory elsewhere (the default /usr/local/lib/nbdkit/plugins)
# gets an overlay of its own on its nearest existing parent.
up="$work/up"
case "$PLUGIN_DIR" in
  /usr/lib/*) plugin_low=/usr/lib plugin_up=$up ;;
  *) plugin_low=$PLUGIN_DIR
     while [ ! -d "$plugin_low" ]; do plugin_low=$(dirname "$plugin_low"); done
     plugin_up=$work/plugin-up
     mkdir -p "$plugin_up" "$work/ow3" ;;
esac
plugin_rel=${PLUGIN_DIR#"$plugin_low"}
mkdir -p "$up/modules" "$work/ow" "$work/root" "$plugin_up/$plugin_rel"
ln -s ../up "$work/root/lib"
cp -al "$kroot/lib/modules/$ver" "$up/modules/" 2> /dev/null ||
  cp -a "$kroot/lib/modules/$ver" "$up/modules/"
depmod -b "$work/root" -a "$ver" || { echo "FAIL: depmod of the cached kernel $ver"; exit 1; }
cp "$NBD_PLUGIN" "$plugin_up/$plugin_rel/nbdkit-vhd-plugin.so"

conf="$work/conf"
mkdir -p "$conf/hooks" "$conf/scripts/local-top" "$conf/conf.d"
cp /etc/initramfs-tools/initramfs.conf "$conf/"
: > "$conf/modules"
cp "$VHDBOOT_HOOK" "$conf/hooks/vhdboot"
cp "$LOCAL_TOP" "$conf/scripts/local-top/vhdboot"
chmod 755 "$conf/hooks/vhdboot" "$conf/scripts/local-top/vhdboot"
# The attach program and, when the host has none, nbd-client (the kit's
# cached one, with its libnl-genl for copy_exec's ldd) where the hook looks
# for them: SBINDIR, the configured install directory, through an overlay.
[ -d "$SBINDIR" ] || skip "$SBINDIR (the install's sbin) does not exist to lay an overlay on"
mkdir -p "$work/sbin" "$work/ow2"
cp "$VHDBOOT_ATTACH" "$work/sbin/vhdboot-attach"
nbdroot="$LINUXBOOT_CACHE/unpacked/nbd-client"
[ -x /usr/sbin/nbd-client ] || cp "$nbdroot/sbin/nbd-client" "$work/sbin/" 2> /dev/null ||
  cp "$nbdroot/usr/sbin/nbd-client" "$work/sbin/" ||
  skip "no nbd-client on the host nor in $LINUXBOOT_CACHE"
# Its libnl-genl (not on a host without nbd-client) joins the /usr/lib
# overlay, where copy_exec's ldd finds it as it would the package's.
if ! [ -x /usr/sbin/nbd-client ]; then
  mkdir -p "$up/x86_64-linux-gnu"
  cp -a "$LINUXBOOT_CACHE"/unpacked/libnl-genl-3-200/lib/x86_64-linux-gnu/libnl-genl-3.so* \
    "$up/x86_64-linux-gnu/" || skip "libnl-genl-3-200 is not in $LINUXBOOT_CACHE"
fi
out="$work/initrd.img"

unshare -m sh -c '
  set -e
  mount -t overlay overlay -o "lowerdir=/usr/lib,upperdir=$1/up,workdir=$1/ow" /usr/lib
  mount -t overlay overlay -o "lowerdir=$7,upperdir=$1/sbin,workdir=$1/ow2" "$7"
  [ "$8" = /usr/lib ] ||
    mount -t overlay overlay -o "lowerdir=$8,upperdir=$1/plugin-up,workdir=$1/ow3" "$8"
  mount --bind "$6/boot" /boot   # the kernel config: which compressions it takes
  mkinitramfs -d "$3" -o "$4" "$5"
' sh "$work" "$PLUGIN_DIR" "$conf" "$out" "$ver" "$kroot" "$SBINDIR" "$plugin_low" > "$work/log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  cat "$work/log"
  echo "FAIL: mkinitramfs exit $rc"
  exit 1
fi
grep -i "vhdboot" "$work/log" && { echo "FAIL: the hook complained"; exit 1; }

lsinitramfs "$out" > "$work/list"
fail=0
want() {
  if grep -Eq "$1" "$work/list"; then echo "ok   $2"; else echo "FAIL $2 not in the initramfs"; fail=1; fi
}
want '(^|/)s?bin/vhdboot-attach$' vhdboot-attach
want '(^|/)bin/nbdkit$' nbdkit
want '/nbdkit/plugins/nbdkit-vhd-plugin\.so$' "the vhd plugin"
want '/nbdkit/filters/nbdkit-cow-filter\.so$' "the cow filter"
want '(^|/)s?bin/nbd-client$' nbd-client
want '/libnl-genl-3\.so\.200$' "nbd-client's libnl-genl"
want '(^|/)s?bin/dmsetup$' dmsetup
want '/kernel/drivers/block/nbd\.ko' "the nbd module"
want '/kernel/drivers/md/dm-mod\.ko' "the dm-mod module"
want '/kernel/fs/fat/vfat\.ko' "the vfat module"
want '/kernel/fs/exfat/exfat\.ko' "the exfat module"
want '^scripts/local-top/vhdboot$' "scripts/local-top/vhdboot"
if [ -n "${OUT_INITRD:-}" ] && [ $fail -eq 0 ]; then
  cp "$out" "$OUT_INITRD"
fi
exit $fail
