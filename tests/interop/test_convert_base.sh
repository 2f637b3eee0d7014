#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool convert -B BASE SRC DST: DST is a differencing image over BASE
# that reads as SRC (oracle: libvhdi reading the chain; qemu-img 7.2 reads
# a differencing VHD as if it had no parent, so it cannot judge), holds exactly the sectors where SRC differs
# from BASE (vhdtool map: nothing else at depth 0), and checks clean.
. "$(dirname "$0")/common.sh"
need_cmd cmp
need_vhdtool
need_vhdi_read

M=$((1024 * 1024))
SIZE=$((16 * M))
$GEN raw "$WORK/base.raw" "$SIZE" 7 || exit 1
cp "$WORK/base.raw" "$WORK/src.raw"
# Three kinds of difference: bytes changed inside data, data zeroed (the
# child must store zeros to hide the base), data written into a hole.
python3 - "$WORK/src.raw" <<'PY'
import sys
path = sys.argv[1]
d = bytearray(open(path, "rb").read())
data = [i for i in range(3 << 20, len(d) - 4096, 512) if any(d[i:i + 512])]
d[data[0] + 17] ^= 0xff                      # one byte in one sector
for i in range(0, 4096):                     # the first 4 KiB (always data)
    d[i] = 0
hole = next(i for i in range(9 << 20, len(d), 4096) if not any(d[i:i + 8192]))
d[hole + 700:hole + 700 + 1500] = b"z" * 1500  # straddles sectors in a hole
open(path, "wb").write(d)
PY

# The sectors where src differs from base, as "start length" runs.
expected_runs() {
  python3 - "$WORK/base.raw" "$WORK/src.raw" <<'PY'
import sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
runs = []
for i in range(0, len(a), 512):
    if a[i:i + 512] != b[i:i + 512]:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1][1] += 512
        else:
            runs.append([i, 512])
for s, n in runs:
    print(s, n)
PY
}

# The child's own ranges per vhdtool map (depth 0, present).
child_runs() {
  "$VHDTOOL" map --json "$1" | python3 -c '
import json, sys
runs = []
for e in json.load(sys.stdin):
    if e["depth"] == 0 and e["present"]:
        if runs and runs[-1][0] + runs[-1][1] == e["start"]:
            runs[-1][1] += e["length"]
        else:
            runs.append([e["start"], e["length"]])
for s, n in runs:
    print(s, n)'
}

want=$(expected_runs)
check "the source differs from the base in 3 runs ($(echo $want))" [ "$(echo "$want" | wc -l)" = 3 ]

for fmt in vhd vhdx; do
  base="$WORK/base.$fmt" child="$WORK/child.$fmt"
  "$VHDTOOL" convert "$WORK/base.raw" "$base" || { not_ok "$fmt: base"; continue; }
  if ! "$VHDTOOL" convert -B "$base" "$WORK/src.raw" "$child" 2> "$WORK/err"; then
    not_ok "$fmt: convert -B failed: $(cat "$WORK/err")"
    continue
  fi
  "$VHDTOOL" info --json "$child" > "$WORK/info.json"
  check "$fmt: DST is a differencing $fmt" \
    test "$(json_get "$WORK/info.json" type) $(json_get "$WORK/info.json" format)" = "differencing $fmt"
  same_read "$fmt: libvhdi reads DST over BASE as SRC" "$WORK/src.raw" "$VHDI_READ" "$child" "$base"
  same_read "$fmt: vhdtool reads DST as SRC" "$WORK/src.raw" "$VHDTOOL" read "$child"
  got=$(child_runs "$child")
  check "$fmt: DST holds only the differing sectors (map: $(echo $got))" test "$got" = "$want"
  check "$fmt: check DST clean" "$VHDTOOL" check "$child"
  check "$fmt: BASE unchanged" "$VHDTOOL" compare -q "$base" "$WORK/base.raw"
  # Same base and source: an empty child.
  "$VHDTOOL" convert -B "$base" "$WORK/base.raw" "$WORK/empty.$fmt"
  check "$fmt: SRC equal to BASE gives a child with nothing of its own" \
    test -z "$(child_runs "$WORK/empty.$fmt")"
done

# The format follows BASE when neither -O nor DST's name says it.
"$VHDTOOL" convert -B "$WORK/base.vhdx" "$WORK/src.raw" "$WORK/noext" &&
  "$VHDTOOL" info --json "$WORK/noext" > "$WORK/info.json"
check "no -O, no extension: BASE's format" test "$(json_get "$WORK/info.json" format)" = vhdx
"$VHDTOOL" convert -B "$WORK/base.vhd" -t fixed "$WORK/src.raw" "$WORK/bad.vhd" 2> "$WORK/err"
check "-B with -t is refused" test $? = 1 -a ! -e "$WORK/bad.vhd"
"$VHDTOOL" convert -B "$WORK/base.vhd" "$WORK/src.raw" "$WORK/child.vhd" 2> "$WORK/err"
check "an existing DST is kept without --force" test $? = 1 -a -s "$WORK/child.vhd"
check "... and still reads as SRC" "$VHDTOOL" compare -q "$WORK/child.vhd" "$WORK/src.raw"
"$VHDTOOL" convert --force -B "$WORK/base.vhd" "$WORK/src.raw" "$WORK/base.vhd" 2> "$WORK/err"
check "DST that is BASE is refused, naming the reason" grep -q "is the base image" "$WORK/err"
check "... and BASE is untouched" "$VHDTOOL" compare -q "$WORK/base.vhd" "$WORK/base.raw"

finish
