#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Installs everything libvhd needs to build, test, benchmark and demo on
# Debian 12. Run as root (CI does); uses sudo when run as another user.
set -eu
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# tests/linuxboot needs e2fsprogs (mkfs.ext4 -d, debugfs), dmsetup and
# binutils (objcopy) on the host; the guest's kernel, busybox-static,
# nbd-client and systemd-boot-efi it downloads itself (apt-get download
# into the build tree), so they are not installed here. initramfs-tools
# (mkinitramfs, lsinitramfs) runs the project's hook in a test; installing
# it in a machine without a kernel package changes nothing of its boot.
# ntfs-3g (mkntfs, ntfscp, ntfsinfo, ntfsfix) and attr (setfattr) build
# the NTFS host partitions the loader's mapper is tested on. debhelper and
# lintian build and check the Debian packages (scripts/test-packages.sh).
# sbsigntool (sbsign, sbverify) and openssl sign the loader for the Secure
# Boot tests (tests/efi/test_secure_boot.py, with ovmf's snakeoil keys);
# shim-unsigned gives tests/efi/test_secure_boot_shim.py a real shim.
# libnbd-dev lets vhdtool and the library read NBD URIs; lighttpd is the
# HTTP server of the filter's curl test (nbdkit itself holds the curl
# plugin on Debian 12); qemu-block-extra gives qemu-img its curl driver
# (bench/remote-bench.sh).
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential cmake pkg-config clang libclang-rt-14-dev \
  zlib1g-dev uuid-dev libcriterion-dev \
  nbdkit nbdkit-plugin-dev libnbd-bin libnbd-dev lighttpd \
  qemu-utils libvhdi-dev libvhdi-utils \
  gnu-efi ovmf qemu-system-x86 mtools gdisk dosfstools exfatprogs \
  sbsigntool openssl shim-unsigned \
  python3 bzip2 gzip coreutils strace groff-base man-db \
  e2fsprogs dmsetup binutils dpkg initramfs-tools mmdebstrap ntfs-3g attr \
  debhelper lintian qemu-block-extra
