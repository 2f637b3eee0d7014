# SPDX-License-Identifier: BSD-3-Clause
# A stand-in for initramfs-tools' /scripts/functions in the test
# initramfs: what scripts/local-top/vhdboot uses of it. panic is where a
# Debian initramfs drops to its shell; the test powers off instead (the
# boot must end) unless vhdtest.onfail=shell.
quiet=y
log_begin_msg() { echo "Begin: $*"; }
log_end_msg() { echo "Done."; }
panic() {
  echo "LINUXBOOT-FAILED: panic: $*" > /dev/console
  [ "$ONFAIL" = shell ] && exec sh
  poweroff -f
}
