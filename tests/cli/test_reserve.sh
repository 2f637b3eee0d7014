#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdboot's rw reserve seen from the OS side: vhdtool on a file that
# vhdboot.efi grew (tests/cli/vhdboot_reserve.py writes the trailer the
# way docs/efi-handoff.md describes it), VHD and VHDX.
#
# Usage: tests/cli/test_reserve.sh /path/to/vhdtool
#
# The file with its reserve must check clean (exit 0, the reserve named),
# qemu-img must read it as a valid image (footer at the end), new blocks
# must land inside the reserve without growing the file, a used-up
# reserve must grow the file and keep it valid, and compact or
# check --repair must give the reserve back, leaving an ordinary image
# with the same content. Content oracle: a raw model written with the
# same bytes, compared through qemu-img and (VHD) libvhdi.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd qemu-img python3
RESERVE="$PYTHON $(cd "$(dirname "$0")" && pwd)/vhdboot_reserve.py"
cd "$WORK" || exit 2

MiB=1048576
# put IMG MODEL OFFSET_MIB COUNT_MIB: the same random bytes into both.
put() {
  head -c $(($4 * MiB)) /dev/urandom > chunk
  "$VHDTOOL" write --offset $(($3 * MiB)) "$1" < chunk &&
    dd if=chunk of="$2" bs=$MiB seek="$3" conv=notrunc status=none
}
size_of() { stat -c %s "$1"; }
# same IMG FMT MODEL: qemu-img (and libvhdi for VHD) read IMG as MODEL.
same() {
  qemu-img compare -q -f "$2" -F raw "$1" "$3" || return 1
  if [ "$2" = vpc ] && [ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ]; then
    "$VHDI_READ" "$1" > vhdi.raw && cmp -s vhdi.raw "$3" || return 1
  fi
}
qcheck() { [ "$1" = vpc ] || qemu-img check -q -f vhdx "$2"; }
checks_clean() { "$VHDTOOL" check "$1" > check.out 2>&1; }
names_reserve() { grep -q "vhdboot.s rw reserve" check.out; }
no_record() { ! $RESERVE show "$1" > /dev/null; }
record_matches_size() { read -r L P Tl < <($RESERVE show "$1") && [ "$P" = "$(size_of "$1")" ]; }

for fmt in vhd vhdx; do
  qfmt=$fmt; [ $fmt = vhd ] && qfmt=vpc
  img=disk.$fmt
  rm -f $img model
  truncate -s $((256 * MiB)) model
  "$VHDTOOL" create -f $fmt -s 256M $img > /dev/null || { not_ok "$fmt: create"; continue; }
  put $img model 1 3
  $RESERVE add $img $((40 * MiB))
  P=$(size_of $img)

  check "$fmt: a file with a reserve checks clean" checks_clean $img
  check "$fmt: check names the reserve (exit 0: no leak)" names_reserve
  check "$fmt: info --json reports the reserve" \
    bash -c "'$VHDTOOL' info --json $img | python3 -c 'import json,sys; r=json.load(sys.stdin)[\"reserve\"]; sys.exit(0 if r[\"free\"] == 40*$MiB else 1)'"
  check "$fmt: qemu-img reads the file with its reserve" same $img $qfmt model
  check "$fmt: qemu-img check with the reserve" qcheck $qfmt $img

  put $img model 100 20
  check "$fmt: new blocks land in the reserve (file size unchanged)" [ "$(size_of $img)" = "$P" ]
  check "$fmt: the record follows" record_matches_size $img
  check "$fmt: checks clean after allocating" checks_clean $img
  check "$fmt: qemu-img reads the new blocks" same $img $qfmt model

  put $img model 150 60
  check "$fmt: a used-up reserve grows the file" [ "$(size_of $img)" -gt "$P" ]
  check "$fmt: the record moved to the new end" record_matches_size $img
  check "$fmt: checks clean after growing" checks_clean $img
  check "$fmt: qemu-img reads it after growing" same $img $qfmt model
  check "$fmt: qemu-img check after growing" qcheck $qfmt $img

  cp $img repaired.$fmt
  read -r L _ < <($RESERVE show $img)
  "$VHDTOOL" compact $img > /dev/null
  check "$fmt: compact gives the reserve back" no_record $img
  check "$fmt: compact cuts the file at the image's end" [ "$(size_of $img)" -le "$L" ]
  check "$fmt: checks clean after compact" checks_clean $img
  check "$fmt: the same content after compact" same $img $qfmt model
  check "$fmt: qemu-img check after compact" qcheck $qfmt $img

  "$VHDTOOL" check --repair repaired.$fmt > repair.out 2>&1
  check "$fmt: check --repair exits 0" [ $? -eq 0 ]
  check "$fmt: check --repair gives the reserve back" no_record repaired.$fmt
  check "$fmt: check --repair cuts at the image's end" [ "$(size_of repaired.$fmt)" = "$L" ]
  check "$fmt: the same content after repair" same repaired.$fmt $qfmt model
done

if [ -n "$VHDI_READ" ] && command -v vhdiinfo > /dev/null 2>&1; then
  check "vhdiinfo reads the compacted VHD" bash -c "vhdiinfo disk.vhd > /dev/null"
fi

finish
