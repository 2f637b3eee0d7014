#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Thin provisioning through the plugin (issue 19, host side): trims that
# cover only parts of blocks give host space back without growing the
# file or changing the block count, nothing outside them changes and the
# trimmed bytes read as zeros or as before; whole-block trims free slots
# that later writes fill before the file grows; the images check clean
# (vhdtool check; qemu-img check for VHDX) and qemu-img reads them as
# vhdtool does. Needs a host file system that punches
# holes (skipped otherwise).
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd

MiB=$((1024 * 1024))
SIZE=$((256 * MiB))

truncate -s 1M "$WORK/probe"
head -c 1M /dev/urandom | dd of="$WORK/probe" conv=notrunc status=none
fallocate --punch-hole --keep-size -o 0 -l 1M "$WORK/probe" 2>/dev/null &&
  [ "$(stat -c %b "$WORK/probe")" -lt 1024 ] || skip_all "the host file system cannot punch holes"

used() { echo $(( $(stat -c %b "$1") * 512 )); }
size() { stat -c %s "$1"; }
allocated() { "$VHDTOOL" info --json "$1" > "$WORK/info.json" && json_get "$WORK/info.json" allocated-blocks; }

head -c $((64 * MiB)) /dev/urandom > "$WORK/data"

# Every byte equals the model, except inside the listed ranges ("OFF LEN"
# lines), where it is the model's byte or zero.
cat > "$WORK/cmp.py" <<'PY'
import sys
got = open(sys.argv[1], "rb").read()
want = open(sys.argv[2], "rb").read()
free = [tuple(map(int, l.split())) for l in open(sys.argv[3])]
if len(got) != len(want):
    sys.exit("length %d, model %d" % (len(got), len(want)))
inside = bytearray(len(want))
for off, n in free:
    inside[off:off + n] = b"\1" * n
for i in range(0, len(want), 4096):
    g, w = got[i:i + 4096], want[i:i + 4096]
    if g == w:
        continue
    for j in range(len(g)):
        if g[j] != w[j] and not (inside[i + j] and g[j] == 0):
            sys.exit("byte %d is 0x%02x, model 0x%02x" % (i + j, g[j], w[j]))
PY

thin_case() {
  local fmt=$1 img="$WORK/thin.$1" c="$NBDCLIENT op --socket \"\$unixsocket\""
  rm -f "$img" "$WORK/trimmed"
  cp "$WORK/data" "$WORK/model"
  truncate -s "$SIZE" "$WORK/model"
  "$VHDTOOL" create -f "$fmt" -t dynamic -s "$SIZE" "$img" > /dev/null
  captive "$img" -- "nbdcopy '$WORK/data' \"\$uri\"" ||
    { not_ok "$fmt: writing 64 MiB failed"; return; }
  local d0 s0 a0 d1 s1 a1
  d0=$(used "$img"); s0=$(size "$img"); a0=$(allocated "$img")

  local script=true k
  for k in $(seq 0 15); do
    script="$script && $c trim --offset $((k * 4 * MiB + MiB)) --length $((2 * MiB))"
    echo "$((k * 4 * MiB + MiB)) $((2 * MiB))" >> "$WORK/trimmed"
  done
  captive "$img" -- "$script" > "$WORK/out" 2>&1 ||
    { not_ok "$fmt: partial trims failed: $(head -c 300 "$WORK/out")"; return; }
  d1=$(used "$img"); s1=$(size "$img"); a1=$(allocated "$img")
  echo "# $fmt: 16 x 2 MiB trimmed: disk usage $d0 -> $d1, file size $s0 -> $s1, blocks $a0 -> $a1"
  check "$fmt: partial trims keep the file size ($s0 -> $s1)" test "$s1" = "$s0"
  check "$fmt: partial trims keep the blocks ($a0 -> $a1)" test "$a1" = "$a0"
  check "$fmt: partial trims give back at least 80% of 32 MiB ($((d0 - d1)) bytes)" \
    test $((d0 - d1)) -ge $((32 * MiB * 8 / 10))
  "$VHDTOOL" read "$img" > "$WORK/got"
  check "$fmt: untrimmed bytes unchanged, trimmed ones zeros or as before" \
    "$PYTHON" "$WORK/cmp.py" "$WORK/got" "$WORK/model" "$WORK/trimmed"

  # Whole blocks at the start of the file, then as much written far away
  # in a later open: the freed slots take it.
  captive "$img" -- "$c trim --offset 0 --length $((32 * MiB))" > "$WORK/out" 2>&1 ||
    { not_ok "$fmt: whole trim failed: $(head -c 300 "$WORK/out")"; return; }
  echo "0 $((32 * MiB))" >> "$WORK/trimmed"
  local a2 s2
  a2=$(allocated "$img")
  check "$fmt: a whole-block trim frees blocks ($a1 -> $a2)" test "$a2" -lt "$a1"
  head -c $((32 * MiB)) /dev/urandom > "$WORK/more"
  captive "$img" -- "$PYTHON - \"\$unixsocket\" <<'PY'
import sys
sys.path.insert(0, '$NBD_DIR')
from nbdclient import Client
c = Client(sys.argv[1])
data = open('$WORK/more', 'rb').read()
for k in range(32):
    c.pwrite(data[k << 20:(k + 1) << 20], (128 << 20) + (k << 20))
c.flush()
c.close()
PY" > "$WORK/out" 2>&1 || { not_ok "$fmt: writing 32 MiB failed: $(head -c 300 "$WORK/out")"; return; }
  dd if="$WORK/more" of="$WORK/model" bs=1M seek=128 conv=notrunc status=none
  s2=$(size "$img")
  echo "# $fmt: after 32 MiB trimmed whole and 32 MiB written: file size $s1 -> $s2"
  check "$fmt: freed slots are reused, the file does not grow ($s1 -> $s2)" test "$s2" -le "$s1"
  "$VHDTOOL" read "$img" > "$WORK/got"
  check "$fmt: the disk reads as the model" \
    "$PYTHON" "$WORK/cmp.py" "$WORK/got" "$WORK/model" "$WORK/trimmed"
  check_clean "$fmt: checks clean" "$img"
  if command -v qemu-img > /dev/null; then
    local qfmt=vpc; [ "$fmt" = vhdx ] && qfmt=vhdx
    check "$fmt: qemu-img reads what vhdtool reads" \
      qemu-img compare -q -f raw -F "$qfmt" "$WORK/got" "$img"
  fi
  # qemu-img checks VHDX only (not its vpc driver).
  if [ "$fmt" = vhdx ] && command -v qemu-img > /dev/null; then
    check "$fmt: qemu-img check finds no errors" qemu-img check -q "$img"
  fi
}

for fmt in vhd vhdx; do
  thin_case "$fmt"
done
finish
