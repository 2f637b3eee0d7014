#!/bin/sh
# The whole test suite: the normal build, the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer, and a short fuzz run.
set -eu
cd "$(dirname "$0")/.."
# One test more than there are cores: most tests spend part of their time
# waiting for the programs they drive (qemu-img, nbdkit, OVMF) or the disk.
jobs=$(($(nproc) + 1))
start=$(date +%s)
elapsed() { echo "($(($(date +%s) - start)) s since the start)"; }

echo "== build and test $(elapsed)"
scripts/build.sh build
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
echo "== all passed $(elapsed)"
