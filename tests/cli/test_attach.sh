#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool attach/detach on a machine whose kernel has no NBD driver (the
# test machines'): one clear line, no record left, nothing started. The
# attach itself is tested in a guest with the driver
# (tests/linuxboot/test_linux_attach.py).
#
# Oracles: /sys/module/nbd (the kernel's own word on the driver), the run
# directory's content, the process table (no nbdkit left behind).
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
cd "$WORK" || exit 1
V() { "$VHDTOOL" "$@"; }
export VHDTOOL_RUN_DIR=$WORK/run

V create -s 8M disk.vhdx > /dev/null || not_ok "create an image"

if [ -e /sys/module/nbd ]; then
  echo "# this kernel has the nbd driver: the no-driver line is not testable here"
else
  V attach disk.vhdx > out 2> err
  rc=$?
  check "no nbd driver: attach fails (exit 1)" [ $rc -eq 1 ]
  check "no nbd driver: one line naming the driver and nbdfuse" \
    sh -c "[ \$(wc -l < err) -eq 1 ] && grep -q 'no NBD driver: /sys/module/nbd' err && grep -q nbdfuse err"
  check "no nbd driver: nothing on standard output" [ ! -s out ]
  check "no nbd driver: no attachment recorded" sh -c "[ -z \"\$(ls -A '$WORK/run' 2>/dev/null)\" ]"
fi

V attach missing.vhdx 2> err
check "a missing image: exit 1, the image named" \
  sh -c "[ $? -eq 1 ] && [ \$(wc -l < err) -eq 1 ] && grep -q 'missing.vhdx' err"
V attach --mode rwx disk.vhdx 2> err
rc=$?
check "an unknown mode: usage error" sh -c "[ $rc -eq 1 ] && grep -q \"unknown mode 'rwx'\" err"
V attach disk.vhdx /dev/sda 2> err
rc=$?
check "a device that is no NBD device: refused" sh -c "[ $rc -eq 1 ] && grep -q \"'/dev/sda' is no NBD device\" err"
V attach --list > out
check "attach --list with nothing attached: exit 0, no output" sh -c "[ $? -eq 0 ] && [ ! -s out ]"
V detach /dev/nbd7 2> err
rc=$?
check "detach of a device vhdtool did not attach: refused, named" \
  sh -c "[ $rc -eq 1 ] && [ \$(wc -l < err) -eq 1 ] && grep -q '/dev/nbd7: not attached by vhdtool' err"
V detach 2> err
check "detach without a device: usage error" sh -c "[ $? -eq 1 ] && grep -q 'missing DEVICE' err"

finish
