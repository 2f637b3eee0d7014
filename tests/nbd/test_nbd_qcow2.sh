#!/bin/bash
# qcow2 served read-only (issue 17): with or without -r the export is
# read-only and reads as qemu reads the image (oracle: qemu-img convert to
# raw, compared with what nbdcopy copies out), a compressed image over a
# backing file included; format=qcow2 is accepted.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd
need_cmd qemu-img qemu-io
C="$NBDCLIENT op --socket \"\$unixsocket\""
cd "$WORK" || exit 2

$GEN raw src.raw $((8 * 1024 * 1024)) 5
qemu-img convert -c -O qcow2 src.raw base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-io -c 'write -P 7 1M 64k' -c 'write -z 2M 1M' top.qcow2 > /dev/null
qemu-img convert -f qcow2 -O raw top.qcow2 want.raw

# serves LABEL [NBDKIT-OPTIONS...] IMAGE [PARAMS...]
serves() {
  local label=$1; shift
  rm -f out.raw flags
  captive "$@" -- "$C flags > flags && nbdcopy \"\$uri\" out.raw" 2> err ||
    { not_ok "$label: export failed: $(head -c 300 err)"; return; }
  check "$label: reads as qemu reads it" cmp -s out.raw want.raw
  check "$label: advertised read-only ($(cat flags))" grep -qw read_only flags
}
serves "qcow2 chain, -r" -r top.qcow2
serves "qcow2 chain, no -r" top.qcow2
serves "format=qcow2" top.qcow2 format=qcow2
finish
