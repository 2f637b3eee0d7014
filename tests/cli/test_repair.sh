#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool check --repair: images broken on purpose (footer, footer copy,
# checksums, header and region table copies, truncation, trailing space,
# a BAT entry past the end, a VHDX log to replay), repaired, then checked.
#
# Oracles: the raw bytes written into each image before the damage (cmp),
# libvhdi (vhdi_read) for VHD and VHDX, qemu-img check and convert for VHDX
# (qemu cannot check vpc); vhdtool check must be clean afterwards and the
# exit status of --repair must describe the repaired image.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd python3 cmp truncate dd
DAMAGE="$PYTHON $(cd "$(dirname "$0")" && pwd)/vhdx_damage.py"
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
have_qemu=false
command -v qemu-img >/dev/null 2>&1 && have_qemu=true

# The model: 3 MiB of random data at the start of an 8 MiB disk.
head -c 3145728 /dev/urandom > data
cp data model.raw && truncate -s 8M model.raw

V create -s 8M -b 512K good.vhd >/dev/null && V write good.vhd < data ||
  { not_ok "make the VHD"; finish; exit 1; }
V create -s 8M -b 1M good.vhdx >/dev/null && V write good.vhdx < data ||
  { not_ok "make the VHDX"; finish; exit 1; }
VHD_SIZE=$(stat -c %s good.vhd)

# after_repair NAME FILE [MIN_REPAIRS [MODEL]]: --repair exits 0 (clean now)
# and reports at least MIN_REPAIRS changes; a plain check agrees; the
# content is MODEL (default model.raw) for vhdtool, libvhdi and (VHDX) qemu.
after_repair() {
  local name=$1 f=$2 min=${3:-1} want=${4:-model.raw} out st n
  out=$(V check --repair --json "$f")
  st=$?
  check "$name: check --repair exits 0" [ "$st" -eq 0 ]
  n=$(printf '%s' "$out" | $PYTHON -c 'import json,sys; d=json.load(sys.stdin); print(d["repairs"] if d["result"] == "clean" else -1)')
  check "$name: JSON says clean with at least $min repair(s) (got $n)" [ "${n:--1}" -ge "$min" ]
  check "$name: each repair is reported" \
    test "$(printf '%s' "$out" | grep -c '"message": ".*repaired: ')" -ge "$min"
  V check "$f" >/dev/null
  check "$name: vhdtool check is clean afterwards" [ $? -eq 0 ]
  check "$name: content read by vhdtool is the model" sh -c "\"$VHDTOOL\" read '$f' | cmp -s - '$want'"
  if [ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ]; then
    check "$name: content read by libvhdi is the model" sh -c "\"$VHDI_READ\" '$f' | cmp -s - '$want'"
  fi
  case $f in
    *.vhdx)
      if $have_qemu; then
        check "$name: qemu-img check is clean" qemu-img check -q -f vhdx "$f"
        qemu-img convert -f vhdx -O raw "$f" q.raw
        check "$name: content read by qemu is the model" cmp -s q.raw "$want"
      fi ;;
  esac
}

# --- VHD -------------------------------------------------------------------
cp good.vhd r.vhd
dd if=/dev/zero of=r.vhd bs=512 seek=$((VHD_SIZE / 512 - 1)) count=1 conv=notrunc 2>/dev/null
V check r.vhd >/dev/null
check "vhd footer zeroed: found before the repair (footer missing)" \
  sh -c "\"$VHDTOOL\" check r.vhd | grep -q 'footer at the end of the file is missing'"
after_repair "vhd footer zeroed" r.vhd
check "vhd footer zeroed: file is byte-identical to the undamaged one" cmp -s r.vhd good.vhd

cp good.vhd r.vhd
dd if=/dev/zero of=r.vhd bs=512 count=1 conv=notrunc 2>/dev/null
after_repair "vhd footer copy zeroed" r.vhd
check "vhd footer copy zeroed: file is byte-identical to the undamaged one" cmp -s r.vhd good.vhd

cp good.vhd r.vhd
printf 'X' | dd of=r.vhd bs=1 seek=$((VHD_SIZE - 512 + 100)) conv=notrunc 2>/dev/null
after_repair "vhd footer checksum wrong" r.vhd
check "vhd footer checksum wrong: file is byte-identical to the undamaged one" cmp -s r.vhd good.vhd

cp good.vhd r.vhd
printf 'X' | dd of=r.vhd bs=1 seek=$((VHD_SIZE - 512 + 100)) conv=notrunc 2>/dev/null
printf 'X' | dd of=r.vhd bs=1 seek=100 conv=notrunc 2>/dev/null
V check r.vhd >/dev/null
check "vhd both footers with bad checksums: a corruption before (exit 2)" [ $? -eq 2 ]
after_repair "vhd both footers with bad checksums" r.vhd

cp good.vhd r.vhd
printf '\001' | dd of=r.vhd bs=1 seek=$((512 + 700)) conv=notrunc 2>/dev/null
V check r.vhd >/dev/null
check "vhd header checksum wrong: a corruption before (exit 2)" [ $? -eq 2 ]
after_repair "vhd header checksum wrong" r.vhd

cp good.vhd r.vhd
truncate -s $((VHD_SIZE - 512)) r.vhd
after_repair "vhd footer cut off" r.vhd
check "vhd footer cut off: file is byte-identical to the undamaged one" cmp -s r.vhd good.vhd

cp good.vhd r.vhd
truncate -s $((VHD_SIZE + 4194304)) r.vhd
after_repair "vhd 4 MiB appended" r.vhd
check "vhd 4 MiB appended: file is byte-identical to the undamaged one" cmp -s r.vhd good.vhd

# Cut inside the last block (footer and 64 KiB of data gone): the block is
# kept, its lost tail reads as zeros.
cp good.vhd r.vhd
truncate -s $((VHD_SIZE - 512 - 65536)) r.vhd
cp model.raw model-cut.raw
dd if=/dev/zero of=model-cut.raw bs=64K seek=47 count=1 conv=notrunc 2>/dev/null
V check r.vhd >/dev/null
check "vhd cut inside a block: a corruption before (exit 2)" [ $? -eq 2 ]
after_repair "vhd cut inside a block" r.vhd 2 model-cut.raw
check "vhd cut inside a block: back to the undamaged size" \
  [ "$(stat -c %s r.vhd)" -eq "$VHD_SIZE" ]

# A leak with a valid footer: the footer moves down, the tail goes.
cp good.vhd r.vhd
$PYTHON - r.vhd <<'EOF'
import sys
f = open(sys.argv[1], 'r+b'); f.seek(-512, 2); footer = f.read(512)
f.seek(-512, 2); f.write(b'\0' * (2 << 20)); f.write(footer); f.close()
EOF
V check r.vhd >/dev/null
check "vhd leaked tail: a leak before (exit 3)" [ $? -eq 3 ]
after_repair "vhd leaked tail" r.vhd
check "vhd leaked tail: file is byte-identical to the undamaged one" cmp -s r.vhd good.vhd

# Entry 10 (an unallocated block of the 16) pointed far past the end.
cp good.vhd r.vhd
$PYTHON - r.vhd <<'EOF'
import struct, sys
f = open(sys.argv[1], 'r+b'); f.seek(1536 + 4 * 10); f.write(struct.pack('>I', 0x100000)); f.close()
EOF
V check r.vhd >/dev/null
check "vhd BAT entry past the end: a corruption before (exit 2)" [ $? -eq 2 ]
cp r.vhd r2.vhd
check "vhd BAT entry past the end: reported as data that was not in the file" \
  sh -c "\"$VHDTOOL\" check --repair r2.vhd | grep -q 'BAT entry 10 .*its data was not in the file'"
after_repair "vhd BAT entry past the end" r.vhd

# Two valid footers that describe different disks: nothing is guessed.
cp good.vhd r.vhd
$PYTHON - r.vhd <<'EOF'
import struct, sys
f = open(sys.argv[1], 'r+b'); c = bytearray(f.read(512))
c[48:56] = struct.pack('>Q', 16 << 20); c[64:68] = b'\0\0\0\0'
s = (~sum(c)) & 0xffffffff; c[64:68] = struct.pack('>I', s)
f.seek(0); f.write(bytes(c)); f.close()
EOF
cp r.vhd r.before
V check --repair r.vhd >/dev/null
check "vhd footers disagreeing: --repair still exits 2 (corrupt)" [ $? -eq 2 ]
check "vhd footers disagreeing: the file is left as it was" cmp -s r.vhd r.before
check "vhd footers disagreeing: says why it did not repair" \
  sh -c "\"$VHDTOOL\" check --repair r.vhd | grep -q 'not repaired: .*cannot be told'"

# A clean image: nothing to do, nothing changed.
cp good.vhd r.vhd
out=$(V check --repair r.vhd)
check "vhd clean: --repair exits 0" [ $? -eq 0 ]
check "vhd clean: no repair reported" sh -c "! printf '%s' '$out' | grep -q 'repaired:'"
check "vhd clean: file unchanged" cmp -s r.vhd good.vhd

# --- VHDX ------------------------------------------------------------------
cp good.vhdx r.vhdx
$DAMAGE pending_log r.vhdx 2
check "vhdx pending log: check flags it before" \
  sh -c "\"$VHDTOOL\" check --json r.vhdx | grep -q '\"log-needs-replay\": true'"
after_repair "vhdx pending log" r.vhdx
check "vhdx pending log: the log is empty afterwards" \
  sh -c "\"$VHDTOOL\" check --json r.vhdx | grep -q '\"log-needs-replay\": false'"

for n in 1 2; do
  cp good.vhdx r.vhdx
  $DAMAGE break_header r.vhdx $n
  after_repair "vhdx header $n broken" r.vhdx
  check "vhdx header $n broken: no warning left" \
    sh -c "! \"$VHDTOOL\" check r.vhdx | grep -q '^warning'"
  cp good.vhdx r.vhdx
  $DAMAGE break_region r.vhdx $n
  after_repair "vhdx region table $n broken" r.vhdx
  check "vhdx region table $n broken: no warning left" \
    sh -c "! \"$VHDTOOL\" check r.vhdx | grep -q '^warning'"
done

cp good.vhdx r.vhdx
truncate -s +5M r.vhdx
V check r.vhdx >/dev/null
check "vhdx 5 MiB appended: a leak before (exit 3)" [ $? -eq 3 ]
after_repair "vhdx 5 MiB appended" r.vhdx
check "vhdx 5 MiB appended: back to the undamaged size" \
  [ "$(stat -c %s r.vhdx)" -eq "$(stat -c %s good.vhdx)" ]

cp good.vhdx r.vhdx
$DAMAGE bat_past_end r.vhdx 6
V check r.vhdx >/dev/null
check "vhdx BAT entry past the end: a corruption before (exit 2)" [ $? -eq 2 ]
cp r.vhdx r2.vhdx
check "vhdx BAT entry past the end: the repair says where it pointed" \
  sh -c "\"$VHDTOOL\" check --repair r2.vhdx | grep -q 'repaired: .*BAT entry 6 pointed past the end of the file'"
after_repair "vhdx BAT entry past the end" r.vhdx

# --- refusals ----------------------------------------------------------------
cp good.vhd ro.vhd && chmod 444 ro.vhd
if [ "$(id -u)" -ne 0 ]; then
  V check --repair ro.vhd >/dev/null 2>&1
  check "read-only file: --repair fails (exit 1)" [ $? -eq 1 ]
fi
printf 'not an image at all' > junk.vhd
V check --repair -f junk.vhd >/dev/null 2>&1
check "unknown option with --repair is a usage error" [ $? -eq 1 ]

finish
