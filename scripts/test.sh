#!/bin/sh
# The whole test suite: the normal build, the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, and a short fuzz run.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== build and test"
scripts/build.sh build
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build and test under ASan + UBSan"
scripts/build.sh build-sanitize -DVHD_SANITIZE=ON -DVHD_BENCH=OFF
ctest --test-dir build-sanitize --output-on-failure -j"$jobs"

if [ -x fuzz/run-short.sh ]; then
  echo "== short fuzz run"
  fuzz/run-short.sh
fi
