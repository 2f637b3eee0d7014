#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Installation honours the prefix and DESTDIR: `cmake --install --prefix P`
# run as an unprivileged user (nobody, when the suite runs as root)
# succeeds and writes nothing outside P, so a write to a system directory
# fails loudly instead of passing; the manifest lists only files under P.
# What it installed works from there: libvhd.pc gives P's paths (it is
# relocatable), and consumers built with pkg-config and with CMake's
# find_package(libvhd), shared and static, run.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd cmake pkg-config cc
BUILD=$(cd "$(dirname "$VHDTOOL")/.." && pwd)
[ -f "$BUILD/CMakeCache.txt" ] || skip_all "$BUILD is not a CMake build tree"
cached() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
[ "$(cached VHD_SANITIZE)" != ON ] ||
  skip_all "sanitized build: its consumers would need the sanitizer runtime (the normal build checks the install)"

# As root, the install runs as nobody; it may write only its own prefix
# and cmake's manifest in the build tree (made writable for it here). A
# checkout inside a private directory (mktemp -d makes one) cannot be read
# by nobody: then root installs, and the manifest alone proves that
# nothing went outside the prefix.
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  need_cmd setpriv
  chmod 755 "$WORK"
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  if ! "${as_user[@]}" test -r "$BUILD/cmake_install.cmake" -a -r "$WORK"; then
    echo "note - nobody cannot read $BUILD: installing as root"
    as_user=()
  fi
fi
install_as_user() {   # DESTDIR-or-empty PREFIX LOG
  rm -f "$BUILD/install_manifest.txt"   # never judge an earlier run's list
  [ ${#as_user[@]} -eq 0 ] || {
    touch "$BUILD/install_manifest.txt"; chown nobody "$BUILD/install_manifest.txt"
    chown nobody "$WORK/$4"; }
  DESTDIR=$1 "${as_user[@]}" cmake --install "$BUILD" --prefix "$2" > "$3" 2>&1
}

# --- --prefix ---------------------------------------------------------------------
mkdir "$WORK/p"
if install_as_user "" "$WORK/p" "$WORK/install.log" p; then
  ok "cmake --install --prefix as $( [ ${#as_user[@]} -eq 0 ] && id -un || echo nobody): exit 0"
else
  not_ok "cmake --install --prefix failed: $(grep -m3 -i 'error\|denied' "$WORK/install.log")"
fi
outside=$(grep -v "^$WORK/p/" "$BUILD/install_manifest.txt" 2>&1)
check "every installed file is under the prefix${outside:+ (outside: $outside)}" test -z "$outside"

expect=(include/vhd.h bin/vhdtool share/man/man1/vhdtool.1
        share/bash-completion/completions/vhdtool sbin/vhdboot-attach share/man/man8/vhdboot-attach.8
        share/initramfs-tools/hooks/vhdboot share/initramfs-tools/scripts/local-top/vhdboot
        lib/systemd/system-shutdown/vhdboot.shutdown)
libdir=$(cached CMAKE_INSTALL_LIBDIR)
expect+=("$libdir/libvhd.so" "$libdir/libvhd.a" "$libdir/pkgconfig/libvhd.pc"
         "$libdir/cmake/libvhd/libvhdConfig.cmake")
if [ -f "$BUILD/nbd-plugin/nbdkit-vhd-plugin.so" ]; then
  expect+=("$libdir/nbdkit/plugins/nbdkit-vhd-plugin.so")
  [ -z "$(cached POD2MAN)" ] || expect+=(share/man/man1/nbdkit-vhd-plugin.1)
fi
[ ! -f "$BUILD/efi-loader/vhdboot.efi" ] || expect+=("$libdir/vhdboot/vhdboot.efi")
for f in "${expect[@]}"; do
  check "installed $f" test -e "$WORK/p/$f"
done

# --- what was installed works from the prefix ----------------------------------------
export PKG_CONFIG_PATH=$WORK/p/$libdir/pkgconfig
check "pkg-config --cflags libvhd names the prefix ($(pkg-config --cflags libvhd))" \
  test "$(readlink -f "$(pkg-config --variable=includedir libvhd)")" = "$WORK/p/include"
CONSUMER=$(cd "$(dirname "$0")/../consumer" && pwd)
version=$("$VHDTOOL" --version | sed -n 's/^vhdtool \([^ ]*\).*/\1/p')
# shellcheck disable=SC2046  # pkg-config's words are meant to split
if cc -o "$WORK/consumer" "$CONSUMER/consumer.c" $(pkg-config --cflags --libs libvhd) 2> "$WORK/cc.log" &&
   out=$(LD_LIBRARY_PATH=$WORK/p/$libdir "$WORK/consumer") && [ "$out" = "$version" ]; then
  ok "a pkg-config consumer builds and runs against the prefix ($out)"
else
  not_ok "pkg-config consumer: $(head -3 "$WORK/cc.log") ${out:-}"
fi
if cmake -S "$CONSUMER" -B "$WORK/cm/b" -DCMAKE_PREFIX_PATH="$WORK/p" > "$WORK/cm.log" 2>&1 &&
   cmake --build "$WORK/cm/b" >> "$WORK/cm.log" 2>&1; then
  ok "find_package(libvhd): shared and static consumers build"
  check "the static consumer needs no libvhd.so" \
    sh -c "! ldd '$WORK/cm/b/static' | grep -q libvhd"
  check "the static consumer runs" test "$("$WORK/cm/b/static")" = "$version"
  check "the shared consumer runs" test "$("$WORK/cm/b/shared")" = "$version"
else
  not_ok "find_package(libvhd) consumer: $(grep -m3 -i error "$WORK/cm.log")"
fi

# --- DESTDIR --------------------------------------------------------------------------
mkdir "$WORK/d"
if install_as_user "$WORK/d" /usr "$WORK/destdir.log" d; then
  ok "DESTDIR=... cmake --install --prefix /usr: exit 0"
else
  not_ok "DESTDIR install failed: $(grep -m3 -i 'error\|denied' "$WORK/destdir.log")"
fi
outside=$(find "$WORK/d" -mindepth 1 -maxdepth 1 ! -name usr)
check "DESTDIR: everything under DESTDIR/usr${outside:+ (also: $outside)}" test -z "$outside"
check "DESTDIR: vhdtool in DESTDIR/usr/bin" test -x "$WORK/d/usr/bin/vhdtool"
finish
