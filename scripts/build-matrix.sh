#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Builds libvhd with every compiler and build type a distribution may use,
# warnings as errors: gcc and clang at Debug (-O0), RelWithDebInfo (-O2)
# and Release (-O3), and gcc with Debian's dpkg-buildflags (hardening=+all,
# as a package build gets them). Building is the test: each combination
# compiles the library, vhdtool, the plugin, the loader and the unit tests
# (where most -O-dependent warnings showed up); the tests themselves run
# once, in scripts/test.sh.
#
#   scripts/build-matrix.sh [COMBINATION...]   (default: all of them)
#
# Each combination builds into build-matrix/<name>; the log of a failed one
# is printed. MATRIX_JOBS (default 1) combinations are built at once, each
# with one compiler job, so that the matrix can share the machine with the
# test suite.
set -eu
cd "$(dirname "$0")/.."
all="gcc-Debug gcc-RelWithDebInfo gcc-Release clang-Debug clang-RelWithDebInfo clang-Release gcc-dpkg"
[ $# -gt 0 ] || set -- $all
top=build-matrix
mkdir -p "$top"

build_one() {
  name=$1 dir=$top/$1 log=$top/$1.log
  cc=${name%%-*} type=${name#*-}
  status=0
  (
    if [ "$type" = dpkg ]; then
      # What dh_auto_configure does: the build flags as CFLAGS/LDFLAGS, the
      # preprocessor ones (-D_FORTIFY_SOURCE) folded into CFLAGS, no
      # CMake build type of its own.
      eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
      CFLAGS="$CFLAGS $CPPFLAGS"; export CFLAGS
      type=None
    fi
    CC=$cc cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DVHD_WERROR=ON \
      -DVHD_BENCH=OFF
    cmake --build "$dir" -j1 -- -k   # every warning in one log
  ) > "$log" 2>&1 || status=$?
  # -Werror makes a compiler warning fail the build; anything else that
  # calls itself a warning (the linker, CMake) fails the combination too.
  if [ $status -eq 0 ] && grep -E -e 'warning:' -e 'CMake Warning' "$log" > /dev/null; then
    echo "$name: warnings in $log:"; grep -E -A3 -e 'warning:' -e 'CMake Warning' "$log" | head -20
    return 1
  fi
  if [ $status -ne 0 ]; then
    echo "$name: FAILED (exit $status), end of $log:"; tail -40 "$log"
    return 1
  fi
  echo "$name: ok"
}

jobs=${MATRIX_JOBS:-1}
failed=0 running=0 pids=""
for combo in "$@"; do
  build_one "$combo" &
  pids="$pids $!"
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    for p in $pids; do wait "$p" || failed=$((failed + 1)); done
    pids="" running=0
  fi
done
for p in $pids; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] || { echo "build matrix: $failed combination(s) failed"; exit 1; }
echo "build matrix: all $# combinations built without a warning"
