#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Configure says what it builds, and optional parts follow their
# dependencies: with nbdkit's and gnu-efi's headers hidden
# (CMAKE_IGNORE_PATH), an explicit -DVHD_NBD_PLUGIN=ON or
# -DVHD_EFI_LOADER=ON is an error naming the Debian package to install;
# the default (AUTO) leaves the part out and the summary says why; the
# same build tree configured again with the headers visible builds it (a
# part left out once does not stay out). Warnings are errors only with
# VHD_WERROR, and the user's CFLAGS can still turn them off.
. "$(dirname "$0")/../interop/common.sh"
need_cmd cmake
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ -f /usr/include/nbdkit-plugin.h ] && [ -f /usr/include/efi/efi.h ] ||
  skip_all "nbdkit-plugin-dev and gnu-efi are needed to show a part coming back"
hide=(-DCMAKE_IGNORE_PATH="/usr/include;/usr/include/efi")
quick=(-DVHD_TESTS=OFF -DVHD_BENCH=OFF)
configure() {   # LOG-NAME BUILD-DIR-NAME CMAKE-ARGS...
  cmake -S "$SRC" -B "$WORK/$2" "${quick[@]}" "${@:3}" > "$WORK/$1.log" 2>&1
}

# must_refuse OPTION PACKAGE: OPTION=ON with the headers hidden fails
# configure with a message naming PACKAGE.
must_refuse() {
  if configure "$1" "$1" "${hide[@]}" "-D$1=ON"; then
    not_ok "$1=ON without $2 configured"
  else
    # (cmake wraps its error messages: words, not lines)
    check "$1=ON without $2: an error naming the package" \
      sh -c "tr -s ' \n' '  ' < '$WORK/$1.log' | grep -q 'install the Debian package $2'"
  fi
}
must_refuse VHD_NBD_PLUGIN nbdkit-plugin-dev
must_refuse VHD_EFI_LOADER gnu-efi

if configure auto auto "${hide[@]}"; then
  ok "AUTO without the headers configures"
  check "summary: plugin left out, why and which package" \
    grep -q "nbdkit plugin nbdkit-vhd-plugin.so: no (nbdkit-plugin.h not found, install the Debian package nbdkit-plugin-dev)" "$WORK/auto.log"
  check "summary: loader left out, naming gnu-efi" \
    grep -q "UEFI loader vhdboot.efi: no (.*gnu-efi)" "$WORK/auto.log"
else
  not_ok "AUTO without the headers: $(grep -m3 -i error "$WORK/auto.log")"
fi
if configure again auto -UCMAKE_IGNORE_PATH -DCMAKE_IGNORE_PATH=; then
  check "same tree, headers visible: the plugin is built" \
    grep -q "nbdkit plugin nbdkit-vhd-plugin.so: yes" "$WORK/again.log"
  check "same tree, headers visible: the loader is built" \
    grep -q "UEFI loader vhdboot.efi: yes" "$WORK/again.log"
else
  not_ok "reconfigure with the headers: $(grep -m3 -i error "$WORK/again.log")"
fi
if configure off off -DVHD_NBD_PLUGIN=OFF; then
  check "an explicit OFF is kept and shown" \
    grep -q "nbdkit plugin nbdkit-vhd-plugin.so: no (-DVHD_NBD_PLUGIN=OFF)" "$WORK/off.log"
else
  not_ok "configure with VHD_NBD_PLUGIN=OFF: $(grep -m3 -i error "$WORK/off.log")"
fi
# Warnings: errors only when asked (VHD_WERROR), and the user's CFLAGS come
# after the project's warning flags, so -Wno-error there has the last word.
flags() { sed -n 's/^C_FLAGS = //p' "$WORK/$1/lib/CMakeFiles/vhd_objects.dir/flags.make"; }
if configure werror-off werror-off && configure werror-on werror-on -DVHD_WERROR=ON \
     -DCMAKE_C_FLAGS=-Wno-error; then
  check "default: no -Werror ($(flags werror-off))" sh -c "! echo '$(flags werror-off)' | grep -q -- -Werror"
  check "VHD_WERROR=ON: -Werror, then the user's -Wno-error ($(flags werror-on))" \
    sh -c "echo '$(flags werror-on)' | grep -q -- '-Werror.* -Wno-error'"
else
  not_ok "configure for the warning flags: $(grep -m3 -i error "$WORK/werror-on.log")"
fi
finish
