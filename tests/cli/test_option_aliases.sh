#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The options people bring from qemu-img and Hyper-V (issue 16):
# create --physical-sector-size, --output=json|human wherever --json is,
# info --backing-chain.
#
# Oracles: the VHDX metadata item read here from the file's bytes
# (MS-VHDX: region table at 192 KiB, metadata table, Physical Sector Size
# item), independently of lib/vhdx; for the output spellings, the output of
# the spelling that existed before (--json, no option), byte for byte.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd cmp
cd "$WORK" || exit 1
V() { "$VHDTOOL" "$@"; }

# vhdx_pss FILE: the Physical Sector Size metadata item.
vhdx_pss() {
  "$PYTHON" - "$1" <<'PY'
import struct, sys, uuid
f = open(sys.argv[1], 'rb')
f.seek(192 * 1024); rt = f.read(64 * 1024)
meta_guid = uuid.UUID('8B7CA206-4790-4B9A-B8FE-575F050F886E').bytes_le
pss_guid = uuid.UUID('CDA348C7-445D-4471-9CC9-E9885251C556').bytes_le
for i in range(struct.unpack_from('<I', rt, 8)[0]):
    e = rt[16 + 32 * i:48 + 32 * i]
    if e[:16] == meta_guid:
        meta = struct.unpack_from('<Q', e, 16)[0]
f.seek(meta); table = f.read(64 * 1024)
for i in range(struct.unpack_from('<H', table, 10)[0]):
    e = table[32 + 32 * i:64 + 32 * i]
    if e[:16] == pss_guid:
        f.seek(meta + struct.unpack_from('<I', e, 16)[0])
        print(struct.unpack('<I', f.read(4))[0])
PY
}

# --- create --physical-sector-size ----------------------------------------
for pss in 512 4096; do
  V create -s 8M --physical-sector-size $pss p$pss.vhdx
  check "vhdx: create --physical-sector-size $pss succeeds" [ $? -eq 0 ]
  check "vhdx: the metadata item holds $pss" [ "$(vhdx_pss p$pss.vhdx)" = $pss ]
  V info --json p$pss.vhdx > i.json
  check "vhdx: info reports physical sector size $pss" \
    [ "$(json_get i.json physical-sector-size)" = $pss ]
done
V create -s 8M --sector-size 4096 --physical-sector-size 4096 l4k.vhdx &&
  check "vhdx: 4K logical and physical" [ "$(vhdx_pss l4k.vhdx)" = 4096 ]
V create -p p512.vhdx child.vhdx >/dev/null
check "vhdx: a child takes its parent's physical sector size" [ "$(vhdx_pss child.vhdx)" = 512 ]
V create -s 8M --physical-sector-size 512 p512.vhd
check "vhd: --physical-sector-size 512 is what VHD is anyway" [ $? -eq 0 ]
V create -s 8M --physical-sector-size 4096 p4096.vhd 2> err
check "vhd: --physical-sector-size 4096 refused" [ $? -eq 1 ]
check "vhd: one line naming the file and the field" \
  sh -c "[ \$(wc -l < err) -eq 1 ] && grep -q 'p4096.vhd: .*physical sector size' err"
V create -s 8M --physical-sector-size 1024 bad.vhdx 2> err
check "a physical sector size of 1024 refused, named" \
  sh -c "[ \$(wc -l < err) -eq 1 ] && grep -q -- '--physical-sector-size .1024' err && [ ! -e bad.vhdx ]"

# --- --output=json|human ----------------------------------------------------
V create -s 4M base.vhd >/dev/null && head -c 65536 /dev/urandom | V write base.vhd &&
  V create -p base.vhd top.vhd >/dev/null || not_ok "make a chain"
for cmd in info check compact map; do
  V $cmd --json top.vhd > json.out 2>&1
  V $cmd --output=json top.vhd > output.out 2>&1
  check "$cmd --output=json prints what --json prints" cmp -s json.out output.out
  check "$cmd --output=json is JSON" "$PYTHON" -c 'import json,sys; json.load(open(sys.argv[1]))' output.out
  V $cmd top.vhd > plain.out 2>&1
  V $cmd --output human top.vhd > human.out 2>&1
  check "$cmd --output human prints the default text" cmp -s plain.out human.out
  V $cmd --output=xml top.vhd > /dev/null 2> err
  rc=$?
  check "$cmd --output=xml refused with one line" \
    sh -c "[ $rc -eq 1 ] && [ \$(wc -l < err) -eq 1 ] && grep -q \"unknown output format 'xml'\" err"
done

# --- info --backing-chain -----------------------------------------------------
V info top.vhd > plain.out
V info --backing-chain top.vhd > chain.out
check "info --backing-chain accepted, same text (the chain is always shown)" \
  sh -c "cmp -s plain.out chain.out && grep -q 'base.vhd' chain.out"
V info --json top.vhd > plain.out
V info --backing-chain --output=json top.vhd > chain.out
check "info --backing-chain --output=json: the same JSON" cmp -s plain.out chain.out

finish
