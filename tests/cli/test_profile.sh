#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Platform profiles: convert --profile azure makes what Azure takes (its own
# check passes, the file is N MiB + 512 bytes, qemu-img reads the exact
# size), and images that break each rule are reported by the rule's name
# with exit status 4. The oracle for sizes is qemu-img info.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd qemu-img
MiB=$((1024 * 1024))

# expect_rule LABEL RULE IMAGE PROFILE: check --profile names RULE, exits 4.
expect_rule() {
  "$VHDTOOL" check --profile "$4" "$3" > "$WORK/out" 2>&1
  local rc=$?
  if [ $rc -eq 4 ] && grep -q "^violation: $2: " "$WORK/out"; then
    ok "$1: $2 reported, exit 4"
  else
    not_ok "$1: expected $2 and exit 4, got $rc: $(head -c 300 "$WORK/out" | tr '\n' ';')"
  fi
}

# --- convert --profile azure from a size that is not a whole MiB ----------
head -c $((25 * MiB + 12345)) /dev/urandom > "$WORK/src.raw"
"$VHDTOOL" convert --profile azure "$WORK/src.raw" "$WORK/azure.vhd"
check "convert --profile azure succeeds" test $? -eq 0
want=$((26 * MiB))
check "azure: file size is 26 MiB + 512" test "$(stat -c %s "$WORK/azure.vhd")" -eq $((want + 512))
check "azure: qemu-img info -f vpc reports exactly 26 MiB" test "$(qemu_vsize vpc "$WORK/azure.vhd")" = "$want"
check "azure: qemu-img says fixed VHD" sh -c "qemu-img info -f vpc --output=json '$WORK/azure.vhd' | grep -q '\"format\": \"vpc\"'"
"$VHDTOOL" check --profile azure "$WORK/azure.vhd" > "$WORK/out"
check "azure: check --profile azure passes (exit 0)" test $? -eq 0
qemu-img convert -f vpc -O raw "$WORK/azure.vhd" "$WORK/back.raw"
check "azure: the source's bytes come back (then zeros to the MiB)" \
  sh -c "cmp -s -n $((25 * MiB + 12345)) '$WORK/src.raw' '$WORK/back.raw' && test \$(tail -c $((want - 25 * MiB - 12345)) '$WORK/back.raw' | tr -d '\\0' | wc -c) -eq 0"
"$VHDTOOL" check --json --profile azure "$WORK/azure.vhd" > "$WORK/json"
check "azure: JSON names the profile with 0 violations" \
  test "$(json_get "$WORK/json" profile-violations)" = 0

# small sources grow to Azure's 20 MiB minimum
head -c 1000000 /dev/urandom > "$WORK/small.raw"
"$VHDTOOL" convert --profile azure "$WORK/small.raw" "$WORK/small.vhd"
check "azure: a 1000000-byte source becomes 20 MiB (qemu-img)" test "$(qemu_vsize vpc "$WORK/small.vhd")" = $((20 * MiB))

# conflicting options are usage errors
"$VHDTOOL" convert --profile azure -t dynamic "$WORK/src.raw" "$WORK/x.vhd" 2> "$WORK/err"
check "azure + -t dynamic: usage error (exit 1, no file)" sh -c "test $? -eq 1 && ! test -e '$WORK/x.vhd'"
"$VHDTOOL" convert --profile azure -O vhdx "$WORK/src.raw" "$WORK/x.vhd" 2> "$WORK/err"
check "azure + -O vhdx: usage error" sh -c "test $? -eq 1 && grep -q 'conflicts' '$WORK/err'"
"$VHDTOOL" convert --profile nosuch "$WORK/src.raw" "$WORK/x.vhd" 2> "$WORK/err"
check "unknown profile: usage error" test $? -eq 1

# --- each azure rule broken ------------------------------------------------
"$VHDTOOL" create -f vhd -t dynamic -s 32M "$WORK/dyn.vhd"
expect_rule "dynamic VHD" azure.type-fixed "$WORK/dyn.vhd" azure
"$VHDTOOL" create -f vhdx -t dynamic -s 32M "$WORK/dyn.vhdx"
expect_rule "VHDX" azure.format-vhd "$WORK/dyn.vhdx" azure
"$VHDTOOL" create -f vhd -t fixed -s 1000000 "$WORK/odd.vhd"
expect_rule "1000000-byte fixed VHD" azure.size-whole-mib "$WORK/odd.vhd" azure
grep -q "virtual size 1000448 bytes is not a whole number of MiB\|virtual size 1000000 bytes is not a whole number of MiB" "$WORK/out" &&
  ok "size rule names the size" || not_ok "size rule message: $(cat "$WORK/out")"
"$VHDTOOL" create -f vhd -t fixed -s 4M "$WORK/tiny.vhd"
expect_rule "4 MiB fixed VHD" azure.size-limits "$WORK/tiny.vhd" azure
# a footer copy in front (as a dynamic VHD has) or trailing bytes: the
# file is no longer size + 512
cp "$WORK/azure.vhd" "$WORK/tail.vhd"
{ head -c 512 /dev/zero; tail -c 512 "$WORK/azure.vhd"; } >> "$WORK/tail.vhd"
expect_rule "fixed VHD with 1024 bytes more" azure.footer-at-end-only "$WORK/tail.vhd" azure

# --- Hyper-V ---------------------------------------------------------------
"$VHDTOOL" create -f vhd -t dynamic -s 32M -b 512K "$WORK/b512.vhd"
expect_rule "VHD with 512 KiB blocks" hyperv.vhd-block-size "$WORK/b512.vhd" hyperv
printf 'x' | "$VHDTOOL" write --offset 0 "$WORK/dyn.vhd"
"$VHDTOOL" check --profile hyperv "$WORK/dyn.vhd" > "$WORK/out"
check "hyperv: a vhdtool dynamic VHD with a block passes (data 4 KiB-aligned)" test $? -eq 0
# qemu puts a block's sector bitmap right after the previous structure
# (data at 512 mod 4096), the layout libvhd wrote before.
head -c 4194304 /dev/urandom > "$WORK/x4m.raw"
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$WORK/x4m.raw" "$WORK/qdyn.vhd"
expect_rule "VHD whose block data is not 4 KiB-aligned" hyperv.vhd-block-aligned "$WORK/qdyn.vhd" hyperv
"$VHDTOOL" check --profile hyperv "$WORK/dyn.vhdx" > "$WORK/out"
check "hyperv: a vhdtool VHDX passes" test $? -eq 0
"$VHDTOOL" check --profile hyperv "$WORK/azure.vhd" > "$WORK/out"
check "hyperv: a fixed VHD passes" test $? -eq 0
"$VHDTOOL" create -f vhdx -t dynamic -s 32M --sector-size 4096 "$WORK/p4k.vhdx" 2>/dev/null &&
  (cd "$WORK" && "$VHDTOOL" create -f vhdx -t differencing --sector-size 512 -p p4k.vhdx c512.vhdx 2>/dev/null)
if [ -f "$WORK/c512.vhdx" ]; then
  expect_rule "4K parent, 512 child" hyperv.chain-sector-size "$WORK/c512.vhdx" hyperv
else
  ok "vhdtool create refuses a mixed-sector VHDX chain (hyperv.chain-sector-size not reachable here)"
fi
qemu-img create -q -f vhdx -o block_size=1M "$WORK/q.vhdx" 8M
# qemu-img leaves 4 MiB of slack (a leak, exit 3), which is no Hyper-V rule
"$VHDTOOL" check --profile hyperv "$WORK/q.vhdx" > "$WORK/out"
check "hyperv: a qemu-img VHDX breaks no rule" sh -c "test $? -ne 4 && grep -q 'follows the hyperv profile' '$WORK/out'"

# --- Virtual PC --------------------------------------------------------------
expect_rule "32 MiB exact VHD" virtualpc.size-chs-exact "$WORK/dyn.vhd" virtualpc
expect_rule "VHDX" virtualpc.format-vhd "$WORK/dyn.vhdx" virtualpc
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$WORK/forced.vhd" 32M
expect_rule "qemu force_size geometry" virtualpc.geometry "$WORK/forced.vhd" virtualpc
"$VHDTOOL" convert --profile virtualpc "$WORK/src.raw" "$WORK/vpc.vhd"
"$VHDTOOL" check --profile virtualpc "$WORK/vpc.vhd" > "$WORK/out"
check "convert --profile virtualpc passes its check" test $? -eq 0
qemu-img create -q -f vpc "$WORK/qemu-chs.vhd" 100M
"$VHDTOOL" check --profile virtualpc "$WORK/qemu-chs.vhd" > "$WORK/out"
check "virtualpc: qemu-img's default (CHS-rounded) VHD passes" test $? -eq 0
check "virtualpc: qemu-img and vhdtool agree on its size" \
  test "$(qemu_vsize vpc "$WORK/qemu-chs.vhd")" = "$(vhdtool_vsize "$WORK/qemu-chs.vhd")"

finish
