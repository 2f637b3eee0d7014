#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The ABI (issue 14): the shared library exports exactly the symbols listed
# in tests/abi/libvhd.symbols, each in version node LIBVHD_1, and those are
# exactly the VHD_API declarations of include/vhd.h; the installed static
# library defines no other global name (the library's internal io_pread,
# path_join, copy_disk stay its own); a consumer that uses only vhd.h links
# with either and runs.
# The SONAME rule: a program built against an older header still runs, or
# the SONAME changed. tests/abi/baseline/libvhd.so.N/vhd.h is the first
# header of SONAME N, kept as it was (it is what old programs were compiled
# with): the consumer built against the current SONAME's baseline must run
# with this library, and one built against an older SONAME's baseline is
# shown not to (its ABI is gone, which is why the SONAME changed). A change
# that breaks the current baseline bumps VHD_SOVERSION (lib/CMakeLists.txt),
# renames the Debian runtime package and adds the new SONAME's baseline.
# Usage: test_abi.sh LIBVHD_SO LIBVHD_A
. "$(dirname "$0")/../interop/common.sh"
need_cmd nm readelf "${CC:-cc}"
SO=$1 AR=$2
DIR=$(cd "$(dirname "$0")" && pwd)
INC=$DIR/../../include
LIST=$DIR/libvhd.symbols

nm -D --defined-only "$SO" | awk '$2 != "A" {print $3}' | sort > "$WORK/so"
sed 's/@@.*//' "$WORK/so" > "$WORK/so.names"
check "libvhd.so exports exactly tests/abi/libvhd.symbols" diff -u "$LIST" "$WORK/so.names"
check "every export is in version node LIBVHD_1" \
  bash -c "! grep -v '@@LIBVHD_1\$' '$WORK/so'"
grep -o '^VHD_API[^(]*(' "$INC/vhd.h" | sed 's/($//; s/.*[ *]//' | sort > "$WORK/header"
check "the list is include/vhd.h's VHD_API declarations" diff -u "$LIST" "$WORK/header"
nm -g --defined-only "$AR" | awk 'NF == 3 {print $3}' | sort > "$WORK/ar"
check "libvhd.a defines no global name but the list" diff -u "$LIST" "$WORK/ar"

# The consumer, against each library (sanitizer builds link the runtime).
FLAGS=()
[ -n "${VHD_SANITIZE:-}" ] && FLAGS=(-fsanitize=address,undefined)
# consumer_runs DESC INCLUDE-DIR LIBRARY EXTRA-LINK-ARGS...
consumer_runs() {
  local desc=$1 inc=$2 lib=$3; shift 3
  if "${CC:-cc}" "${FLAGS[@]}" -I"$inc" "$DIR/consumer.c" "$lib" "$@" -o "$WORK/consumer" \
       2> "$WORK/cc.err"; then
    check "$desc" env LD_LIBRARY_PATH="$(dirname "$lib")" "$WORK/consumer"
  else
    not_ok "$desc: it does not build: $(head -c 400 "$WORK/cc.err")"
  fi
}
# What a static link needs is what the build wrote into libvhd.pc's
# Libs.private (libnbd too when it was built with it).
PC=$(dirname "$SO")/../libvhd.pc
read -r -a STATIC_LIBS <<< "$(sed -n 's/^Libs.private: *//p' "$PC" 2>/dev/null)"
[ ${#STATIC_LIBS[@]} -gt 0 ] || STATIC_LIBS=(-luuid -lz -lpthread)
consumer_runs "a vhd.h-only program linked with libvhd.a runs" "$INC" "$AR" "${STATIC_LIBS[@]}"
consumer_runs "a vhd.h-only program linked with libvhd.so runs" "$INC" "$SO"

SONAME=$(readelf -d "$SO" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
N=${SONAME#libvhd.so.}
check "the SONAME is libvhd.so.N ($SONAME)" test -n "$SONAME" -a "$N" != "$SONAME"
check "the Debian runtime package is named after $SONAME (libvhd$N)" \
  grep -qx "Package: libvhd$N" "$DIR/../../debian/control"
check "debian/libvhd$N.symbols is for $SONAME" \
  grep -q "^$SONAME libvhd$N " "$DIR/../../debian/libvhd$N.symbols"
if [ -f "$DIR/baseline/$SONAME/vhd.h" ]; then
  consumer_runs "a program built against $SONAME's first header runs with this libvhd.so" \
    "$DIR/baseline/$SONAME" "$SO"
else
  not_ok "no baseline header for $SONAME: copy include/vhd.h to tests/abi/baseline/$SONAME/"
fi
for base in "$DIR"/baseline/libvhd.so.*; do
  old=$(basename "$base")
  [ "$old" = "$SONAME" ] && continue
  check "$old is older than $SONAME" test "${old#libvhd.so.}" -lt "$N"
  if "${CC:-cc}" "${FLAGS[@]}" -I"$base" "$DIR/consumer.c" "$SO" -o "$WORK/old-consumer" \
       2> "$WORK/cc.err" &&
     env LD_LIBRARY_PATH="$(dirname "$SO")" "$WORK/old-consumer" > /dev/null 2>&1; then
    not_ok "a program built against $old's header still runs: its ABI did not break, so the SONAME need not have changed"
  else
    ok "a program built against $old's header cannot run with this library, whose SONAME ($SONAME) says so"
  fi
done

finish
