# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the read-only source formats' tests (sourced after
# common.sh; QFMT = the format's name for qemu-img: qcow2, vmdk, ...).
ORACLE="$PYTHON $TESTS_DIR/cli/map_oracle.py"

# same LABEL IMG [VHDTOOL CONVERT OPTIONS]: every output format in FORMATS
# (default raw, vhd, vhdx) reads as qemu reads IMG.
same() {
  local label=$1 img=$2 fmt qfmt; shift 2
  for fmt in ${FORMATS:-raw vhd vhdx}; do
    qfmt=$fmt; [ "$fmt" = vhd ] && qfmt=vpc
    rm -f "out.$fmt"
    if ! "$VHDTOOL" convert "$@" -O "$fmt" "$img" "out.$fmt" 2> err; then
      not_ok "$label: convert to $fmt: $(cat err)"
    elif qemu-img compare -q -f "$QFMT" -F "$qfmt" "$img" "out.$fmt" 2> err; then
      ok "$label: $fmt output equals qemu's reading"
    else
      not_ok "$label: $fmt output differs from qemu's reading $(cat err)"
    fi
  done
}

# map_agrees LABEL IMG LAYERS...: vhdtool map against qemu-img map, as
# sets of bytes (LAYERn: the file of layer n, for the offsets).
map_agrees() {
  local label=$1 img=$2; shift 2
  "$VHDTOOL" map --json "$img" > ours.json 2> err || { not_ok "$label: map: $(cat err)"; return; }
  qemu-img map -f "$QFMT" --output=json "$img" > qemu.json
  qemu-img convert -f "$QFMT" -O raw "$img" content.raw
  if $ORACLE qemu ours.json qemu.json content.raw "$@" > out; then
    ok "$label: map agrees with qemu-img map"
  else
    not_ok "$label: map: $(head -3 out | tr '\n' ';')"
  fi
}

# refused LABEL FILE WORD CMD...: CMD fails (no crash) with one line on
# stderr naming FILE and containing WORD.
refused() {
  local label=$1 file=$2 word=$3; shift 3
  "$@" > out 2> err
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ "$(wc -l < err)" -eq 1 ] && grep -q -- "$file" err &&
     grep -qi -- "$word" err; then
    ok "$label"
  else
    not_ok "$label: exit $rc: $(head -3 err | tr '\n' ';')"
  fi
}

# patch FILE OFFSET BYTES: overwrite bytes (printf escapes) in place.
patch() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# bad SRC NAME WORD OFFSET BYTES: a copy of SRC patched so, refused by convert.
bad() {
  local src=$1 name=$2 word=$3 off=$4 hex=$5 ext=${1##*.}
  cp "$src" "$name.$ext"
  patch "$name.$ext" "$off" "$hex"
  refused "$name" "$name.$ext" "$word" "$VHDTOOL" convert -O raw "$name.$ext" "$name.raw"
}

# le32 FILE OFFSET: the little-endian u32 there, in decimal.
le32() { $PYTHON -c 'import sys; d=open(sys.argv[1],"rb").read(); o=int(sys.argv[2]); print(int.from_bytes(d[o:o+4],"little"))' "$@"; }

# checked_clean IMG...: vhdtool check finds nothing (exit 0) in each.
checked_clean() {
  local img
  for img in "$@"; do
    "$VHDTOOL" check "$img" > out 2>&1
    check "check $img: clean (exit $?)" test $? -eq 0
  done
}

# check_finds LABEL IMG WORD...: vhdtool check reports corruption (exit 2)
# with every WORD in its report.
check_finds() {
  local label=$1 img=$2 w; shift 2
  "$VHDTOOL" check "$img" > out 2>&1
  local rc=$?
  for w in "$@"; do grep -q -- "$w" out || rc="$rc, no '$w'"; done
  if [ "$rc" = 2 ]; then ok "$label"; else not_ok "$label: exit $rc: $(head -3 out | tr '\n' ';')"; fi
}

# allocated_agrees LABEL IMG: info's allocated blocks are the blocks that
# qemu-img map shows data in at depth 0 (this layer).
allocated_agrees() {
  local label=$1 img=$2 ours theirs
  ours=$("$VHDTOOL" info --json "$img" | $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["allocated-blocks"])')
  theirs=$(qemu-img map -f "$QFMT" --output=json "$img" | $PYTHON -c '
import json, sys
bs = int(sys.argv[1])
print(len({c for e in json.load(sys.stdin) if e["data"] and e["depth"] == 0
           for c in range(e["start"] // bs, (e["start"] + e["length"] - 1) // bs + 1)}))' \
    "$("$VHDTOOL" info --json "$img" | $PYTHON -c 'import json, sys; print(json.load(sys.stdin)["block-size"])')")
  check "$label: info's allocated blocks ($ours) are qemu-img map's ($theirs)" test "$ours" = "$theirs"
}
