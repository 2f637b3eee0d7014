#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The ABI (issue 14): the shared library exports exactly the symbols listed
# in tests/abi/libvhd.symbols, each in version node LIBVHD_1, and those are
# exactly the VHD_API declarations of include/vhd.h; the installed static
# library defines no other global name (the library's internal io_pread,
# path_join, copy_disk stay its own); a consumer that uses only vhd.h links
# with either and runs, also when built against the previous version's
# header (tests/abi/previous/vhd.h). A change to the public API changes the list in the
# same commit (and a removal or change of a function, the SONAME).
# Usage: test_abi.sh LIBVHD_SO LIBVHD_A
. "$(dirname "$0")/../interop/common.sh"
need_cmd nm "${CC:-cc}"
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
consumer_runs "a vhd.h-only program linked with libvhd.a runs" "$INC" "$AR" -luuid -lz -lpthread
consumer_runs "a vhd.h-only program linked with libvhd.so runs" "$INC" "$SO"
# Built against the header of the previous version (tests/abi/previous,
# a copy kept on purpose: it is what old programs were compiled with),
# the consumer still runs with this library.
consumer_runs "a program built against the previous vhd.h runs with this libvhd.so" \
  "$DIR/previous" "$SO"

finish
