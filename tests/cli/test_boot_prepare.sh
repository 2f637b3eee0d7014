#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool boot-prepare (issue 13): written room for vhdboot.efi's rw mode,
# on the scratch file system (tmpfs where there is one: holes, no
# unwritten extents; test_boot_prepare_ext4.sh does those).
#
# Usage: tests/cli/test_boot_prepare.sh /path/to/vhdtool
#
# A dynamic VHD, a dynamic VHDX and a differencing VHDX (its parent hashed
# before and after) each get a reserve and lose their holes, with the same
# content (boot_prepare_lib.sh lists the oracles); a fixed VHD created
# sparse loses its holes and gets no reserve; a block device is left alone
# and a read-only open is refused with one line.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd qemu-img python3 sha256sum
. "$(dirname "$0")/boot_prepare_lib.sh"
cd "$WORK" || exit 2

# A dynamic VHD with data in part of a block: the rest of the block is a
# hole in the file (the precondition is checked, so the case means something).
"$VHDTOOL" create -f vhd -s 256M dyn.vhd > /dev/null
head -c $((3 * MiB)) /dev/urandom | "$VHDTOOL" write --offset $((5 * MiB)) dyn.vhd
check "dynamic VHD: the file has holes before" has_holes dyn.vhd
prepared_case "dynamic VHD" vhd dyn.vhd $((20 * MiB))

"$VHDTOOL" create -f vhdx -s 256M dyn.vhdx > /dev/null
head -c $((3 * MiB)) /dev/urandom | "$VHDTOOL" write --offset $((5 * MiB)) dyn.vhdx
check "dynamic VHDX: the file has holes before" has_holes dyn.vhdx
prepared_case "dynamic VHDX" vhdx dyn.vhdx $((20 * MiB))

"$VHDTOOL" create -f vhdx -s 256M base.vhdx > /dev/null
head -c $((4 * MiB)) /dev/urandom | "$VHDTOOL" write --offset 0 base.vhdx
"$VHDTOOL" create -f vhdx -t differencing --parent base.vhdx child.vhdx > /dev/null
head -c $((1 * MiB)) /dev/urandom | "$VHDTOOL" write --offset $((2 * MiB)) child.vhdx
base_holes=$(first_hole base.vhdx)
prepared_case "differencing VHDX" vhdx child.vhdx $((20 * MiB)) base.vhdx
check "differencing VHDX: the parent keeps its holes" [ "$(first_hole base.vhdx)" = "$base_holes" ]

# The default rule (no --reserve): what vhdboot.efi asks for.
"$VHDTOOL" create -f vhdx -s 1G auto.vhdx > /dev/null
"$VHDTOOL" boot-prepare auto.vhdx > auto.out 2>&1
check "default reserve: free >= the documented rule ($(default_reserve auto.vhdx) bytes)" \
  free_at_least auto.vhdx "$(default_reserve auto.vhdx)"

# A fixed VHD created sparse: holes filled, no reserve, content the same.
"$VHDTOOL" create -f vhd -t fixed -s 64M fixed.vhd > /dev/null
head -c $MiB /dev/urandom | "$VHDTOOL" write --offset $((10 * MiB)) fixed.vhd
cp --sparse=always fixed.vhd fixed.before
size=$(stat -c %s fixed.vhd)
check "fixed VHD: the file has holes before" has_holes fixed.vhd
"$VHDTOOL" boot-prepare fixed.vhd > fixed.out 2>&1
check "fixed VHD: boot-prepare says there is no reserve ($(cat fixed.out))" \
  grep -q "no reserve" fixed.out
check "fixed VHD: no hole left" no_holes fixed.vhd
check "fixed VHD: the file keeps its size" [ "$(stat -c %s fixed.vhd)" = "$size" ]
check "fixed VHD: no reserve record" [ "$(reserve_free fixed.vhd)" = 0 ]
check "fixed VHD: same content (qemu-img compare)" same_as vhd fixed.vhd fixed.before
check "fixed VHD: vhdtool check clean" vhdtool_clean fixed.vhd
"$VHDTOOL" boot-prepare fixed.vhd > fixed.again 2>&1
check "fixed VHD: a second run writes nothing" wrote_nothing fixed.again

# Read-only: one line naming the file, non-zero exit. (-U opens nothing
# read-only; a file without write permission does, when not root.)
if [ "$(id -u)" != 0 ]; then
  cp dyn.vhdx ro.vhdx && chmod a-w ro.vhdx
  if "$VHDTOOL" boot-prepare ro.vhdx > ro.out 2>&1; then
    not_ok "read-only file: refused"
  else
    check "read-only file: refused with one line naming it" \
      bash -c "[ \$(wc -l < ro.out) = 1 ] && grep -q ro.vhdx ro.out"
  fi
fi
"$VHDTOOL" boot-prepare --reserve 12Q dyn.vhdx > bad.out 2>&1
check "bad --reserve: one usage line naming the option (exit $?)" \
  bash -c "[ $? = 1 ] && [ \$(wc -l < bad.out) = 1 ] && grep -q -- --reserve bad.out"
finish
