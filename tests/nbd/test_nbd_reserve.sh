#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The plugin on a file vhdboot.efi grew in rw mode (the case the OS side of
# a VHD boot runs into): it must serve the image at the record's logical
# size, put new blocks into the reserve (the file does not grow), keep the
# record current, and leave an image that checks clean (exit 0) and reads
# back as written, through the plugin and through qemu-img. VHD and VHDX.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd
need_cmd qemu-img
RESERVE="$PYTHON $TESTS_DIR/cli/vhdboot_reserve.py"
MiB=$((1024 * 1024))

for fmt in vhd vhdx; do
  qfmt=$fmt; [ $fmt = vhd ] && qfmt=vpc
  img="$WORK/r.$fmt" model="$WORK/model"
  rm -f "$img" "$model"
  "$VHDTOOL" create -f "$fmt" -t dynamic -s 64M "$img" > /dev/null
  truncate -s $((64 * MiB)) "$model"
  $RESERVE add "$img" $((48 * MiB))
  size=$(stat -c %s "$img")
  read -r L0 _ < <($RESERVE show "$img")
  head -c $((8 * MiB)) /dev/urandom > "$WORK/data"
  dd if="$WORK/data" of="$model" bs=1M seek=20 conv=notrunc status=none
  # Two 4 MiB writes at 20 MiB, then a flush, over one connection.
  captive "$img" -- "$PYTHON -c '
import sys; sys.path.insert(0, \"$NBD_DIR\"); import nbdclient
c = nbdclient.Client(sys.argv[1]); d = open(sys.argv[2], \"rb\").read()
c.pwrite(d[:4 << 20], 20 << 20); c.pwrite(d[4 << 20:], 24 << 20); c.flush(); c.close()
' \"\$unixsocket\" '$WORK/data'"
  check "$fmt: the plugin allocates inside the reserve (file size kept)" \
    test "$(stat -c %s "$img")" = "$size"
  read -r L1 P1 _ < <($RESERVE show "$img") || L1=0
  check "$fmt: the record follows the new blocks ($L0 -> $L1)" test "$L1" -gt "$L0"
  check_clean "$fmt: checks clean with its reserve" "$img"
  check "$fmt: qemu-img reads what the plugin wrote" \
    qemu-img compare -q -f "$qfmt" -F raw "$img" "$model"
done

finish
