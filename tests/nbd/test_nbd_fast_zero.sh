#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A fast zero over several blocks through the plugin (issue 14): NBD's
# contract is "fail fast without modifying the disk", so a fast zero over
# 2.5 allocated blocks (two that could be freed, half of one that only
# writes can zero) fails with ENOTSUP and leaves every byte of the file as
# it was; the same range zeroed plainly (may-trim) succeeds, frees the two
# whole blocks (qemu-img map, an independent reader, shows them as zeros
# with no data; vhdtool map for VHDX, which qemu does not map) and reads
# as zeros through qemu-img.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd
need_cmd qemu-img

SIZE=$((16 * 1024 * 1024))
BS=$((1024 * 1024))

fast_zero_case() {
  local fmt=$1 img="$WORK/z.$1" model="$WORK/z.model" qfmt=$1
  [ "$fmt" = vhd ] && qfmt=vpc
  "$VHDTOOL" create --force -f "$fmt" -t dynamic -s "$SIZE" -b "$BS" "$img"
  $PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(7).randbytes(int(sys.argv[1])))' \
    $((4 * BS)) > "$WORK/data"
  "$VHDTOOL" write --offset 0 "$img" < "$WORK/data"
  truncate -s "$SIZE" "$model"
  dd if="$WORK/data" of="$model" conv=notrunc status=none
  local before after
  before=$(sha256sum < "$img")

  local fz="$NBDCLIENT fast-zero --socket \"\$unixsocket\""
  captive "$img" -- "$fz --offset 0 --length $((2 * BS + BS / 2)) > '$WORK/fz'" \
    > "$WORK/out" 2>&1 || { not_ok "$fmt: fast zero request failed: $(head -c 300 "$WORK/out")"; return; }
  check "$fmt: fast zero over 2.5 blocks is refused ($(cat "$WORK/fz"))" test "$(cat "$WORK/fz")" = enotsup
  after=$(sha256sum < "$img")
  check "$fmt: a refused fast zero leaves the file byte for byte as it was" test "$before" = "$after"
  same_read "$fmt: the data reads as before" "$model" "$VHDTOOL" read "$img"

  local c="$NBDCLIENT op --socket \"\$unixsocket\""
  captive "$img" -- "$c zero --may-trim --offset 0 --length $((2 * BS + BS / 2))" \
    > "$WORK/out" 2>&1 || { not_ok "$fmt: plain zero failed: $(head -c 300 "$WORK/out")"; return; }
  ok "$fmt: plain zero over 2.5 blocks succeeds"
  dd if=/dev/zero of="$model" bs=$((BS / 2)) count=5 conv=notrunc status=none
  qemu-img convert -f "$qfmt" -O raw "$img" "$WORK/z.raw"
  check "$fmt: qemu-img reads the zeroed range as zeros and the rest unchanged" cmp "$WORK/z.raw" "$model"
  # qemu's VHDX driver reports every range as data, so VHDX is mapped by vhdtool.
  if [ "$fmt" = vhd ]; then
    qemu-img map --output=json -f "$qfmt" "$img" > "$WORK/map.json"
  else
    "$VHDTOOL" map --json "$img" > "$WORK/map.json"
  fi
  check "$fmt: the map shows the two whole blocks without data" $PYTHON - "$WORK/map.json" "$BS" <<'PY'
import json, sys
bs = int(sys.argv[2])
for e in json.load(open(sys.argv[1])):
    if e["start"] < 2 * bs and e["start"] + e["length"] > 0 and e["data"]:
        sys.exit("data at %d+%d" % (e["start"], e["length"]))
PY
  check_clean "$fmt: checks clean" "$img"
}

for fmt in vhd vhdx; do
  fast_zero_case "$fmt"
done

finish
