#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The whole test suite: the normal build, the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, a short fuzz run, the
# build matrix (every compiler and build type, warnings as errors) and the
# Debian packages built, installed, smoke-tested and purged.
set -eu
cd "$(dirname "$0")/.."
# One test more than there are cores: most tests spend part of their time
# waiting for the programs they drive (qemu-img, nbdkit, OVMF) or the disk.
jobs=$(($(nproc) + 1))
start=$(date +%s)
elapsed() { echo "($(($(date +%s) - start)) s since the start)"; }

echo "== build and test $(elapsed)"
scripts/build.sh build
# The build matrix compiles alongside the first ctest pass, at the lowest
# priority: the UEFI boot tests (TCG) keep one core waiting for minutes,
# which the matrix fills, and it yields to the tests whenever they want
# the CPU. Measured on the 2-core CI machine: ~3.7 CPU-minutes.
mkdir -p build-matrix
setsid -w nice -n 19 scripts/build-matrix.sh > build-matrix/matrix.log 2>&1 &
matrix=$!
# A failed test stops the script: the matrix (its own process group) too.
trap 'kill -TERM -"$matrix" 2> /dev/null || true' EXIT
ctest --test-dir build --output-on-failure -j"$jobs"

# The sanitized pass covers every test that runs the library in-process or
# through vhdtool. The NBD and UEFI boot tests are end-to-end runs of other
# programs (nbdkit, OVMF) whose time would double for no extra coverage of
# our code: they ran above against the same sources.
echo "== build and test under ASan + UBSan $(elapsed)"
scripts/build.sh build-sanitize -DVHD_SANITIZE=ON -DVHD_BENCH=OFF -DVHD_EFI_LOADER=OFF -DVHD_NBD_PLUGIN=OFF
ctest --test-dir build-sanitize --output-on-failure -j"$jobs" -E '^(nbd|efi)/'

if [ -x fuzz/run-short.sh ]; then
  echo "== short fuzz run $(elapsed)"
  fuzz/run-short.sh
fi

echo "== build matrix $(elapsed)"
if wait "$matrix"; then
  tail -1 build-matrix/matrix.log
else
  cat build-matrix/matrix.log
  exit 1
fi
# Last, alone: it installs the packages system-wide for its smoke test
# (and purges them), which no other test may see.
echo "== Debian packages $(elapsed)"
scripts/test-packages.sh
echo "== all passed $(elapsed)"
