#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# qcow2, VMDK and VDI served read-only (issue 17): with or without -r the export is
# read-only and reads as qemu reads the image (oracle: qemu-img convert to
# raw, compared with what nbdcopy copies out), a compressed image over a
# backing file and a stream-optimized VMDK included; format=qcow2 and
# format=vmdk (and a dynamic VDI, format=vdi) are accepted.
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

# serves LABEL WANT [NBDKIT-OPTIONS...] IMAGE [PARAMS...]
serves() {
  local label=$1 want=$2; shift 2
  rm -f out.raw flags
  captive "$@" -- "$C flags > flags && nbdcopy \"\$uri\" out.raw" 2> err ||
    { not_ok "$label: export failed: $(head -c 300 err)"; return; }
  check "$label: reads as qemu reads it" cmp -s out.raw "$want"
  check "$label: advertised read-only ($(cat flags))" grep -qw read_only flags
}
serves "qcow2 chain, -r" want.raw -r top.qcow2
serves "qcow2 chain, no -r" want.raw top.qcow2
serves "format=qcow2" want.raw top.qcow2 format=qcow2
qemu-img convert -O vmdk -o subformat=streamOptimized src.raw stream.vmdk
serves "VMDK stream, no -r" src.raw stream.vmdk
serves "format=vmdk" src.raw stream.vmdk format=vmdk
qemu-img convert -O vdi src.raw dyn.vdi
serves "VDI dynamic, no -r" src.raw dyn.vdi
serves "format=vdi" src.raw dyn.vdi format=vdi
finish
