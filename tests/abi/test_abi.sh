#!/bin/bash
# The ABI (issue 14): the shared library exports exactly the symbols listed
# in tests/abi/libvhd.symbols, each in version node LIBVHD_1, and those are
# exactly the VHD_API declarations of include/vhd.h; the installed static
# library defines no other global name (the library's internal io_pread,
# path_join, copy_disk stay its own); a consumer that uses only vhd.h links
# with either and runs. A change to the public API changes the list in the
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
if "${CC:-cc}" "${FLAGS[@]}" -I"$INC" "$DIR/consumer.c" "$AR" -luuid -lpthread \
     -o "$WORK/consumer-static" 2> "$WORK/cc.err"; then
  check "a vhd.h-only program linked with libvhd.a runs" "$WORK/consumer-static"
else
  not_ok "a vhd.h-only program does not link with libvhd.a: $(head -c 400 "$WORK/cc.err")"
fi
if "${CC:-cc}" "${FLAGS[@]}" -I"$INC" "$DIR/consumer.c" "$SO" -o "$WORK/consumer-shared" \
     2> "$WORK/cc.err"; then
  check "a vhd.h-only program linked with libvhd.so runs" \
    env LD_LIBRARY_PATH="$(dirname "$SO")" "$WORK/consumer-shared"
else
  not_ok "a vhd.h-only program does not link with libvhd.so: $(head -c 400 "$WORK/cc.err")"
fi

finish
