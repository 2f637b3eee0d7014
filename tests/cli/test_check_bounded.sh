#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool check of an image with a finding per BAT entry: a 16 MiB dynamic
# VHD whose 4 Mi BAT entries are all 0 (each points into the footer copy).
# The output and the memory must stay small (the first few findings of a
# kind are shown, the rest counted), while the counts and the exit status
# still cover every entry.
#
# Oracles: the BAT entry count read from the dynamic header by Python (the
# number of corruptions), /usr/bin/time for the peak RSS.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd python3
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
MAX_LINES=100
MAX_BYTES=65536
MAX_RSS_KB=131072   # the BAT alone is 16 MiB; before the bound, --json took 400 MiB

V create -f vhd -s 1T -b 256K many.vhd >/dev/null || { not_ok "make the VHD"; finish; exit 1; }
ENTRIES=$($PYTHON - <<'EOF'
import struct
with open('many.vhd', 'r+b') as f:
    f.seek(512)
    h = f.read(1024)
    bat = struct.unpack('>Q', h[16:24])[0]
    n = struct.unpack('>I', h[28:32])[0]
    f.seek(bat)
    f.write(b'\0' * (4 * n))
print(n)
EOF
)
check "the VHD has 4 Mi BAT entries (got $ENTRIES)" [ "${ENTRIES:-0}" -eq 4194304 ]
check "the VHD is 16 MiB" [ "$(stat -c %s many.vhd)" -le $((17 * 1024 * 1024)) ]

have_time=false
[ -x /usr/bin/time ] && have_time=true

# run_check OUT -- ARGS: vhdtool check ARGS > OUT, status in ST, peak RSS
# (KiB) in RSS when /usr/bin/time is there.
run_check() {
  local out=$1; shift
  if $have_time; then
    /usr/bin/time -o rss.txt -f %M "$VHDTOOL" check "$@" > "$out"
    ST=$?
    RSS=$(tail -n 1 rss.txt)
  else
    "$VHDTOOL" check "$@" > "$out"
    ST=$?
  fi
}

run_check plain.txt many.vhd
check "check exits 2 (corruption)" [ "$ST" -eq 2 ]
check "check prints fewer than $MAX_LINES lines (got $(wc -l < plain.txt))" \
  [ "$(wc -l < plain.txt)" -lt $MAX_LINES ]
check "check prints less than $MAX_BYTES bytes" [ "$(wc -c < plain.txt)" -lt $MAX_BYTES ]
check "the summary counts every entry" grep -qx "$ENTRIES corruptions found on many.vhd." plain.txt
shown=$(grep -c '^corruption: many.vhd: BAT entry' plain.txt)
check "some findings are shown ($shown)" [ "$shown" -ge 1 ]
check "one line says how many more there are" \
  grep -qx "info: \\.\\.\\. and $((ENTRIES - shown)) more corruption findings like \"many.vhd: BAT entry .*\"" plain.txt
if $have_time; then
  check "check's peak RSS is below $MAX_RSS_KB KiB (got $RSS)" [ "${RSS:-0}" -lt $MAX_RSS_KB ]
fi

run_check out.json --json many.vhd
check "check --json exits 2" [ "$ST" -eq 2 ]
check "check --json prints less than $MAX_BYTES bytes" [ "$(wc -c < out.json)" -lt $MAX_BYTES ]
check "the JSON counts every entry, lists a few and says how many it left out" \
  $PYTHON -c '
import json, sys
d = json.load(open("out.json"))
n = int(sys.argv[1])
listed = [f for f in d["findings"] if f["severity"] == "corruption"]
assert d["corruptions"] == n, d["corruptions"]
assert d["result"] == "corrupt"
assert 1 <= len(d["findings"]) < 100, len(d["findings"])
assert d["findings-not-shown"] == n - len(listed), (d["findings-not-shown"], len(listed))
' "$ENTRIES"
if $have_time; then
  check "check --json's peak RSS is below $MAX_RSS_KB KiB (got $RSS)" [ "${RSS:-0}" -lt $MAX_RSS_KB ]
fi

finish
