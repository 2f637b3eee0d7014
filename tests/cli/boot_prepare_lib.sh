# SPDX-License-Identifier: BSD-3-Clause
# Helpers of the vhdtool boot-prepare tests (sourced after
# interop/common.sh, in the test's scratch directory).
#
# prepared_case DESC FMT IMG ASK [PARENT]: boot-prepare IMG with --reserve
# ASK and check it against independent oracles: qemu-img compare with a
# copy taken before (same content), vhdtool info (reserve free >= ASK),
# vhdtool check and qemu-img check (VHDX; qemu-img cannot check VPC), no
# hole left in the file (SEEK_HOLE), a second run writes nothing, a bigger
# --reserve grows it, and data written afterwards lands in the reserve
# (file size unchanged) and reads back. PARENT, when given, must not change;
# qemu cannot open a differencing VHDX, so there the content is read by
# vhdtool (the copy taken before is still a file boot-prepare never saw)
# and vhdtool check alone judges the structures.

MiB=1048576

# The first hole of FILE (its size when there is none).
first_hole() {
  "$PYTHON" -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_HOLE))' "$1"
}
no_holes() { [ -f "$1" ] && [ "$(first_hole "$1")" = "$(stat -c %s "$1")" ]; }
has_holes() { [ -f "$1" ] && ! no_holes "$1"; }

# reserve_free IMG: the reserve's free bytes per vhdtool info --json (0: none).
reserve_free() {
  "$VHDTOOL" info --json "$1" | "$PYTHON" -c '
import json, sys
r = json.load(sys.stdin).get("reserve")
print(r["free"] if r else 0)'
}

# default_reserve IMG: the default rule as docs/efi-loader.md states it
# (reserve=auto): 4 blocks or 64 MiB, whichever is larger, at most the
# blocks the disk could still allocate. VHD: each block with its sector
# bitmap, padded to 4 KiB (the data's alignment), plus 4 KiB; VHDX: each
# block with a VHD-sized bitmap, plus a sector and 2 MiB (a bitmap block,
# alignment).
default_reserve() {
  "$VHDTOOL" info --json "$1" | "$PYTHON" -c '
import json, sys
i = json.load(sys.stdin)
bs = i["block-size"]
blocks = min(max(4, (64 << 20) // bs), max(0, i["total-blocks"] - i["allocated-blocks"]))
bitmap = (bs // 4096 + 511) // 512 * 512
if i["format"] == "vhdx":
    print(blocks * (bs + bitmap) + 512 + (2 << 20))
else:
    print(blocks * ((bs + bitmap + 4095) // 4096 * 4096) + 4096)'
}

vhdtool_clean() { "$VHDTOOL" check "$1" > check.out 2>&1; }
# qemu reads VHD and VHDX, but no differencing VHDX.
qemu_reads() { [ "$1" != vhdx ] || [ -z "${2:-}" ]; }
qemu_clean() { [ "$1" != vhdx ] || [ -n "${PARENT:-}" ] || qemu-img check -q -f vhdx "$2"; }
qfmt_of() { if [ "$1" = vhd ]; then echo vpc; else echo "$1"; fi; }
# as_raw FMT IMG OUT: the virtual disk's bytes into OUT.
as_raw() {
  if qemu_reads "$1" "${PARENT:-}"; then
    qemu-img convert -f "$(qfmt_of "$1")" -O raw "$2" "$3"
  else
    "$VHDTOOL" read "$2" > "$3"
  fi
}
same_as() {
  if qemu_reads "$1" "${PARENT:-}"; then
    qemu-img compare -q -f "$(qfmt_of "$1")" -F "$(qfmt_of "$1")" "$2" "$3"
  else
    as_raw "$1" "$2" a.raw && as_raw "$1" "$3" b.raw && cmp -s a.raw b.raw
  fi
}
same_as_raw() {
  if qemu_reads "$1" "${PARENT:-}"; then
    qemu-img compare -q -f "$(qfmt_of "$1")" -F raw "$2" "$3"
  else
    as_raw "$1" "$2" a.raw && cmp -s a.raw "$3"
  fi
}
free_at_least() { [ "$(reserve_free "$1")" -ge "$2" ]; }
wrote_nothing() { grep -q " 0 bytes of zeros written" "$1"; }

prepared_case() {
  local desc=$1 fmt=$2 img=$3 ask=$4 parent=${5:-}
  PARENT=$parent
  local phash="" before=before.$fmt
  [ -n "$parent" ] && phash=$(sha256sum < "$parent")
  cp --sparse=always "$img" "$before"

  if "$VHDTOOL" boot-prepare --reserve "$ask" "$img" > prep.out 2> prep.err &&
     [ "$(wc -l < prep.out)" = 1 ] && [ ! -s prep.err ]; then
    ok "$desc: boot-prepare exits 0 with one line: $(cat prep.out)"
  else
    not_ok "$desc: boot-prepare exits 0 with one line" "$(cat prep.out prep.err)"
  fi
  check "$desc: vhdtool info shows a reserve with free >= $ask" free_at_least "$img" "$ask"
  check "$desc: same content as before" same_as "$fmt" "$img" "$before"
  check "$desc: no hole left in the file" no_holes "$img"
  check "$desc: vhdtool check clean" vhdtool_clean "$img"
  check "$desc: qemu-img check clean" qemu_clean "$fmt" "$img"

  local hash size
  hash=$(sha256sum < "$img")
  "$VHDTOOL" boot-prepare --reserve "$ask" "$img" > again.out 2>&1
  check "$desc: a second run writes nothing (it says so)" wrote_nothing again.out
  check "$desc: a second run leaves the file as it was" [ "$(sha256sum < "$img")" = "$hash" ]

  local bigger=$((ask + 40 * MiB))
  "$VHDTOOL" boot-prepare --reserve $bigger "$img" > bigger.out 2>&1
  check "$desc: a bigger --reserve grows it ($(cat bigger.out))" free_at_least "$img" $bigger
  check "$desc: no hole after growing" no_holes "$img"
  check "$desc: vhdtool check clean after growing" vhdtool_clean "$img"
  check "$desc: same content after growing" same_as "$fmt" "$img" "$before"

  # New blocks (the disk's last 8 MiB, never written before) go into the
  # reserve; the model is the old content with the same bytes written.
  size=$(stat -c %s "$img")
  local vsize free_before
  vsize=$("$VHDTOOL" info --json "$img" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
  free_before=$(reserve_free "$img")
  head -c $((8 * MiB)) /dev/urandom > chunk
  as_raw "$fmt" "$before" model.raw
  dd if=chunk of=model.raw bs=$MiB seek=$((vsize / MiB - 8)) conv=notrunc status=none
  "$VHDTOOL" write --offset $((vsize - 8 * MiB)) "$img" < chunk
  check "$desc: new blocks land in the reserve (file size unchanged)" \
    [ "$(stat -c %s "$img")" = "$size" ]
  check "$desc: they consume the reserve" [ "$(reserve_free "$img")" -lt "$free_before" ]
  check "$desc: the written data reads back" same_as_raw "$fmt" "$img" model.raw
  check "$desc: vhdtool check clean after writing" vhdtool_clean "$img"
  check "$desc: qemu-img check clean after writing" qemu_clean "$fmt" "$img"
  [ -n "$parent" ] &&
    check "$desc: the parent is untouched" [ "$(sha256sum < "$parent")" = "$phash" ]
  rm -f "$before" model.raw chunk a.raw b.raw
  PARENT=
  return 0
}
