#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The smoke test of the installed Debian packages (scripts/test-packages.sh
# runs it in an empty directory with the system's PATH): every program,
# file and consumer path a user of the packages meets, nothing from the
# build tree. VERSION is the version the packages must report, CONSUMER
# the directory of the consumer program (tests/consumer).
set -eu
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok - $*"; }
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)

# vhdtool: create, convert, check, with its version.
[ "$(vhdtool --version)" = "vhdtool $VERSION (libvhd $VERSION)" ] ||
  fail "vhdtool --version: $(vhdtool --version)"
ok "vhdtool --version: $VERSION"
head -c 3M /dev/urandom > data.raw
head -c 1M /dev/zero >> data.raw
vhdtool convert data.raw disk.vhdx > /dev/null || fail "vhdtool convert raw -> vhdx"
vhdtool create -f vhd -t dynamic -s 4M empty.vhd > /dev/null || fail "vhdtool create"
vhdtool check disk.vhdx > /dev/null || fail "vhdtool check disk.vhdx"
vhdtool check empty.vhd > /dev/null || fail "vhdtool check empty.vhd"
ok "vhdtool create, convert, check"

# The plugin by its short name, read back through NBD.
size=$(nbdkit -U - vhd file=disk.vhdx --run 'nbdinfo --size "$uri"') ||
  fail "nbdkit vhd file=disk.vhdx with nbdinfo"
[ "$size" -eq 4194304 ] || fail "nbdinfo size $size, not 4194304"
nbdkit -U - -r vhd file=disk.vhdx --run 'nbdcopy "$uri" back.raw' || fail "nbdcopy"
cmp -s data.raw back.raw || fail "the data read through nbdkit vhd differs"
plugin=$(nbdkit vhd --version | sed -n 's/^vhd //p')
[ "$plugin" = "$VERSION" ] || fail "nbdkit vhd --version: $plugin"
ok "nbdkit vhd file=disk.vhdx: nbdinfo, nbdcopy, --version $VERSION"

# Consumers of libvhd-dev: pkg-config, and CMake's package shared and static.
# shellcheck disable=SC2046  # pkg-config's words are meant to split
cc -o pc-consumer "$CONSUMER/consumer.c" $(pkg-config --cflags --libs libvhd) || fail "pkg-config consumer build"
[ "$(./pc-consumer)" = "$VERSION" ] || fail "pkg-config consumer output"
ok "pkg-config --cflags --libs libvhd: a consumer builds and runs"
cmake -S "$CONSUMER" -B cm/build > cm.log 2>&1 && cmake --build cm/build >> cm.log 2>&1 ||
  { cat cm.log; fail "find_package(libvhd) consumers"; }
[ "$(cm/build/shared)" = "$VERSION" ] || fail "CMake shared consumer output"
ldd cm/build/shared | grep -Eq "libvhd.so.1 => (/usr)?/lib/$multiarch/" || fail "shared consumer uses the packaged libvhd.so.1"
[ "$(cm/build/static)" = "$VERSION" ] || fail "CMake static consumer output"
! ldd cm/build/static | grep -q libvhd || fail "the static consumer needs libvhd.so"
ok "find_package(libvhd): libvhd::vhd and libvhd::vhd_static consumers build and run"

# Manual pages and completion where man and bash look.
for page in vhdtool nbdkit-vhd-plugin vhdboot-attach; do
  MANWIDTH=80 man "$page" 2> man.err | grep -q "$page" || fail "man $page"
  [ ! -s man.err ] || fail "man $page: $(cat man.err)"
done
ok "man vhdtool, man nbdkit-vhd-plugin, man vhdboot-attach render"
[ -f /usr/share/bash-completion/completions/vhdtool ] || fail "bash completion for vhdtool"
ok "bash completion installed"

# The loader where docs/efi-loader.md says, and the OS-side pieces.
efi=/usr/lib/$multiarch/vhdboot/vhdboot.efi
[ "$(head -c 2 "$efi")" = MZ ] || fail "$efi is missing or not a PE image"
[ -x /usr/sbin/vhdboot-attach ] && [ -x /usr/share/initramfs-tools/hooks/vhdboot ] &&
  [ -x /usr/share/initramfs-tools/scripts/local-top/vhdboot ] ||
  fail "vhdboot-attach or its initramfs-tools hook"
ok "vhdboot.efi in /usr/lib/$multiarch/vhdboot, vhdboot-attach and its hooks installed"
echo "packages smoke test: all passed"
