#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Hot-attach to a running qemu: nbdkit serves the image on a Unix socket;
# a qemu (TCG, no guest OS, CPUs stopped) gets it over QMP with
# blockdev-add (NBD) + device_add virtio-blk-pci; HMP qemu-io writes,
# zeroes, flushes and reads back patterns through the attached node; then
# device_del, blockdev-del, quit. On the host the image must hold exactly
# what was written (vhdtool read against a model) and check clean.
#
# The root port uses native PCIe hotplug (ACPI hotplug off): without a
# guest to acknowledge, qemu can then unplug from the powered-off slot at
# once instead of waiting for the guest forever.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd
need_cmd qemu-system-x86_64

SIZE=$((32 * 1024 * 1024))

hotplug_case() {
  local label=$1 img=$2
  local nsock="$WORK/nbd.sock" npid="$WORK/nbd.pid" qsock="$WORK/qmp.sock" qlog="$WORK/qemu.log"
  local model="$WORK/model.raw"
  "$VHDTOOL" read "$img" > "$model" || { not_ok "$label: vhdtool read failed"; return; }
  serve "$nsock" "$npid" -- "$img" || { not_ok "$label: nbdkit did not start"; return; }
  rm -f "$qsock"
  qemu-system-x86_64 -S -machine q35,accel=tcg -nodefaults -display none -m 64 \
    -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off \
    -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1 \
    -qmp "unix:$qsock,server=on,wait=off" > "$qlog" 2>&1 &
  local qemu=$!
  if $PYTHON "$NBD_DIR/hotplug.py" "$qsock" "$nsock" \
       "write -P 0x5a 0 1M" \
       "write -P 0xa5 3146000 70001" \
       "write -P 0x3c $((SIZE - 4096)) 4096" \
       "write -z 65536 4096" \
       "flush" \
       "read -P 0x5a 0 65536" \
       "read -P 0 65536 4096" \
       "read -P 0x5a 69632 978944" \
       "read -P 0xa5 3146000 70001" \
       "read -P 0x3c $((SIZE - 4096)) 4096" > "$WORK/qmp.out" 2>&1; then
    ok "$label: blockdev-add, device_add, qemu-io, device_del, blockdev-del through QMP"
  else
    not_ok "$label: QMP sequence failed: $(tail -3 "$WORK/qmp.out" | tr '\n' ';')"
  fi
  # qemu has quit on success; after a failure it is still running.
  grep -q "qmp: quit ok" "$WORK/qmp.out" || kill $qemu 2>/dev/null
  wait $qemu 2>/dev/null
  stop_server

  check "$label: qemu-io wrote 4 times" test "$(grep -c '^wrote ' "$qlog")" = 4
  check "$label: qemu-io read back 5 patterns" test "$(grep -c '^read ' "$qlog")" = 5
  check "$label: no pattern mismatch in qemu-io" bash -c "! grep -q 'verification failed' '$qlog'"

  $PYTHON - "$model" "$SIZE" <<'EOF'
import sys
path, size = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    for off, n, b in ((0, 1 << 20, 0x5a), (3146000, 70001, 0xa5), (size - 4096, 4096, 0x3c), (65536, 4096, 0)):
        f.seek(off)
        f.write(bytes([b]) * n)
EOF
  same_read "$label: the image holds what qemu wrote" "$model" "$VHDTOOL" read "$img"
  [ "${img##*.}" = raw ] || check_clean "$label: checks clean" "$img"
  # qemu-img cannot open differencing VHDX at all: dynamic ones only.
  case $label in vhdx-dynamic) check "$label: qemu-img check" qemu-img check -q -f vhdx "$img" ;; esac
  rm -f "$model"
}

$GEN raw "$WORK/disk.raw" "$SIZE" 81
hotplug_case raw "$WORK/disk.raw"
for fmt in vhd vhdx; do
  if ! vhdtool_can "$fmt"; then
    echo "# skipped: vhdtool cannot create $fmt images yet (driver not built)"
    continue
  fi
  "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" "$WORK/empty.$fmt"
  hotplug_case "$fmt-dynamic" "$WORK/empty.$fmt"
  "$VHDTOOL" convert -O "$fmt" "$WORK/disk.raw" "$WORK/base.$fmt"
  (cd "$WORK" && "$VHDTOOL" create -f "$fmt" -t differencing -p "base.$fmt" "child.$fmt")
  hotplug_case "$fmt-differencing" "$WORK/child.$fmt"
done

finish
