#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool reset-id (Set-VHD -ResetDiskIdentifier): a new id, the same
# content, a clean image, and children beside it protected: refused unless
# --force, after which the child's chain check fails until set-parent
# --ignore-id-mismatch.
#
# Oracles: libvhdi's vhdiinfo for the identifier (VHD: the footer's unique
# id; VHDX: it prints the data write GUID, the id children link to),
# qemu-img compare for the content and qemu-img check for VHDX (qemu cannot
# check VHD), the bytes read before the change (vhdtool).
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd cmp vhdiinfo qemu-img
cd "$WORK" || exit 1
V() { "$VHDTOOL" "$@"; }
vhdi_id() { vhdiinfo "$1" 2>/dev/null | sed -n 's/^[[:space:]]*Identifier[^:]*: *//p'; }

# one_line_error DESC FILE-PATTERN: err holds exactly one line naming it.
one_line_error() {
  check "$1" sh -c "[ \$(wc -l < err) -eq 1 ] && grep -q -- '$2' err"
}

# reset_one NAME QEMU_FMT LINK_KEY: LINK_KEY is the info --json key that
# children link to and vhdiinfo prints.
reset_one() {
  local img=$1 qfmt=$2 link=$3
  head -c 3M /dev/urandom | V write "$img" || { not_ok "$img: write data"; return; }
  cp "$img" "$img.orig"
  V info --json "$img" > before.json
  local id0 link0 vhdi0
  id0=$(json_get before.json id); link0=$(json_get before.json "$link"); vhdi0=$(vhdi_id "$img")
  check "$img: vhdiinfo agrees on the id before" [ -n "$vhdi0" -a "$vhdi0" = "$link0" ]
  V reset-id "$img" > out
  check "$img: reset-id succeeds" [ $? -eq 0 ]
  V info --json "$img" > after.json
  local id1 link1 vhdi1
  id1=$(json_get after.json id); link1=$(json_get after.json "$link"); vhdi1=$(vhdi_id "$img")
  check "$img: info shows a new id" [ -n "$id1" -a "$id1" != "$id0" ]
  check "$img: the id children link to is new" [ "$link1" != "$link0" ]
  check "$img: vhdiinfo sees the new id" [ "$vhdi1" = "$link1" -a "$vhdi1" != "$vhdi0" ]
  check "$img: reset-id prints the new id" grep -q "new id $id1" out
  check "$img: content unchanged (qemu-img compare)" \
    qemu-img compare -q -f "$qfmt" -F "$qfmt" "$img.orig" "$img"
  check "$img: vhdtool check is clean" sh -c "\"$VHDTOOL\" check '$img' > /dev/null"
  if [ "$qfmt" = vhdx ]; then
    check "$img: qemu-img check is clean" sh -c "qemu-img check -q -f vhdx '$img'"
  fi
  V reset-id --force "$img" > /dev/null
  V info --json "$img" > again.json
  check "$img: a second reset gives another id" [ "$(json_get again.json id)" != "$id1" ]
}

V create -s 8M dyn.vhd > /dev/null && reset_one dyn.vhd vpc id
V create -s 8M -t fixed fixed.vhd > /dev/null && reset_one fixed.vhd vpc id
V create -s 8M dyn.vhdx > /dev/null && reset_one dyn.vhdx vhdx data-write-id

# --- a parent with a child beside it ------------------------------------------
for ext in vhd vhdx; do
  mkdir -p chain-$ext && cd chain-$ext || exit 1
  V create -s 8M base.$ext > /dev/null && head -c 1M /dev/urandom | V write base.$ext &&
    V create -p base.$ext child.$ext > /dev/null &&
    head -c 64K /dev/urandom | V write --offset 2M child.$ext || not_ok "$ext: make a chain"
  V read child.$ext > model.raw
  cp base.$ext base.orig
  V reset-id base.$ext 2> err
  check "$ext: reset-id of a parent with a child is refused" [ $? -eq 1 ]
  one_line_error "$ext: the refusal names the child and --force" 'child\.'"$ext"'.*--force'
  check "$ext: the refused parent is unchanged" cmp -s base.$ext base.orig
  V reset-id --force base.$ext > /dev/null
  check "$ext: --force resets it" [ $? -eq 0 ]
  V read child.$ext > /dev/null 2> err
  check "$ext: the child no longer opens its chain" [ $? -eq 1 ]
  V check child.$ext > /dev/null 2>&1
  check "$ext: check reports the broken link" [ $? -eq 2 ]
  V set-parent child.$ext base.$ext > /dev/null 2>&1
  check "$ext: set-parent without --ignore-id-mismatch refuses it" [ $? -eq 1 ]
  V set-parent --ignore-id-mismatch child.$ext base.$ext > /dev/null
  check "$ext: set-parent --ignore-id-mismatch relinks" [ $? -eq 0 ]
  check "$ext: the child reads as before" sh -c "\"$VHDTOOL\" read child.$ext | cmp -s - model.raw"
  check "$ext: the chain checks clean" sh -c "\"$VHDTOOL\" check child.$ext > /dev/null"
  cd ..
done

# --- what has no id -----------------------------------------------------------
V create -s 1M plain.raw > /dev/null
V reset-id plain.raw 2> err
check "raw: refused" [ $? -eq 1 ]
one_line_error "raw: one line naming the file" 'plain.raw: .*no unique id'
V reset-id 2> err
check "no FILE: usage error" [ $? -eq 1 ]
one_line_error "no FILE: one line" 'missing FILE'

finish
