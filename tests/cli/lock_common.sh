# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the lock tests (sourced after ../interop/common.sh):
# tests/cli/test_locking.sh and tests/nbd/test_nbd_locking.sh.

have_qemu=true
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || have_qemu=false

# The lines that refuse an image in use (lib/io/file_lock.c).
WRITTEN="in use by another process that writes it"
READ="in use by another process that reads it"

# refused DESC PATTERN COMMAND...: exit status 1 and one line on standard
# error, matching PATTERN (standard input: /dev/null unless redirected).
refused() {
  local desc=$1 pattern=$2 st; shift 2
  "$@" > cmd.out 2> cmd.err
  st=$?
  if [ $st -eq 1 ] && [ "$(wc -l < cmd.err)" -eq 1 ] && grep -q -- "$pattern" cmd.err; then
    ok "$desc"
  else
    not_ok "$desc (exit $st: $(head -c 300 cmd.err))"
  fi
}
# works DESC COMMAND...
works() {
  local desc=$1; shift
  if "$@" > cmd.out 2> cmd.err; then ok "$desc"; else not_ok "$desc: $(head -c 300 cmd.err)"; fi
}
# qemu_refuses DESC COMMAND...: qemu fails, saying a lock is the reason.
qemu_refuses() {
  local desc=$1; shift
  $have_qemu || return 0
  if ! "$@" > cmd.out 2>&1 && grep -q "lock" cmd.out; then ok "$desc"
  else not_ok "$desc: $(head -c 300 cmd.out)"; fi
}
qemu_works() { $have_qemu || return 0; works "$@"; }
