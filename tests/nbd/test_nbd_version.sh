#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# One version everywhere: the LIBVHD_VERSION_* macros of vhd.h are what
# `vhdtool --version` prints for the tool and the library, what `nbdkit vhd
# --version` prints for the plugin, what a new VHDX names as its creator,
# and NEWS.md and debian/changelog have an entry for it.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd
SRC=$(cd "$(dirname "$0")/../.." && pwd)

want=$(sed -n 's/^#define LIBVHD_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$SRC/include/vhd.h" |
  paste -sd.)
check "vhd.h sets a version ($want)" sh -c "echo '$want' | grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+'"

out=$("$VHDTOOL" --version)
check "vhdtool --version: tool and library $want ($out)" \
  test "$out" = "vhdtool $want (libvhd $want)"
# nbdkit prints its own version, then "<plugin name> <plugin version>".
plugin=$("${NBDKIT[@]}" "$NBD_PLUGIN" --version 2>&1 | sed -n 's/^vhd \(.*\)/\1/p')
check "nbdkit vhd --version: $want (${plugin:-nothing})" test "$plugin" = "$want"

"$VHDTOOL" create -f vhdx -s 1M "$WORK/new.vhdx" > /dev/null
creator=$("$VHDTOOL" info "$WORK/new.vhdx" | sed -n 's/^creator: //p')
check "a new VHDX's creator is libvhd $want (${creator:-none})" test "$creator" = "libvhd $want"

check "NEWS.md has a section for $want" grep -q "^## $want\b" "$SRC/NEWS.md"
deb=$(sed -n '1s/^libvhd (\([^)-]*\).*/\1/p' "$SRC/debian/changelog")
check "debian/changelog's newest entry is $want (${deb:-none})" test "$deb" = "$want"
finish
