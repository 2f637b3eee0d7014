#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Extents of a differencing VHD over a raw parent whose size is not a
# multiple of 512 (made with vhdtool itself): the parent ends inside a
# sector, and past its end the child reads zeros. The plugin advertises a
# 512-byte minimum block size, so every extent must start and end on a
# 512-byte boundary, or clients send unaligned requests (nbdcopy
# --synchronous failed with "request is unaligned").
#
# Oracles: the block size nbdinfo reports, nbdinfo --map (every extent
# aligned; whatever it calls zero reads as zeros in the model), nbdcopy
# (plain and --synchronous) whose copy must equal the model, built here in
# Python from the parent's bytes and the writes made into the child.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd

# >>> RAW_PARENT_OPT: the plugin parameter that allows a raw parent
# ("raw-parent=true" once the plugin requires that opt-in, empty before).
# "auto" asks the plugin's --help; VHDTOOL_RAW_PARENT likewise for vhdtool.
RAW_PARENT_OPT=${RAW_PARENT_OPT-auto}
if [ "$RAW_PARENT_OPT" = auto ]; then
  RAW_PARENT_OPT=
  "${NBDKIT[@]}" "$NBD_PLUGIN" --help 2>/dev/null | grep -q 'raw-parent' &&
    RAW_PARENT_OPT=raw-parent=true
fi
VHDTOOL_RAW_PARENT=${VHDTOOL_RAW_PARENT-auto}
# <<<

cd "$WORK" || exit 1
# VW CMD ARGS: vhdtool on the children, whose parent is raw (with the
# opt-in where CMD's help lists it).
VW() {
  local cmd=$1 opt=$VHDTOOL_RAW_PARENT
  shift
  if [ "$opt" = auto ]; then
    opt=
    "$VHDTOOL" help "$cmd" 2>/dev/null | grep -q -- '--raw-parent' && opt=--raw-parent
  fi
  "$VHDTOOL" "$cmd" $opt "$@"
}

# bytes SEED COUNT: COUNT seeded random bytes on stdout.
bytes() {
  $PYTHON -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2])))' "$1" "$2"
}

# Parents: dense.raw is 1000000 random bytes; sparse.raw is 1234567 bytes,
# random at the start and in its last 1000 bytes, a host hole between.
bytes 1 1000000 > dense.raw
bytes 2 300000 > sparse.raw
truncate -s 1233567 sparse.raw
bytes 3 1000 >> sparse.raw

# model OUT PARENT SIZE [OFFSET:SEED:COUNT...]: the parent's bytes, zeros to
# SIZE, then each write.
model() {
  local out=$1 parent=$2 size=$3
  shift 3
  $PYTHON - "$out" "$parent" "$size" "$@" <<'EOF'
import random, sys
out, parent, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = bytearray(open(parent, 'rb').read()[:size])
m += bytes(size - len(m))
for w in sys.argv[4:]:
    off, seed, n = (int(x) for x in w.split(':'))
    m[off:off + n] = random.Random(seed).randbytes(n)
open(out, 'wb').write(m)
EOF
}

# map_ok LABEL MAP MODEL SECTOR: extents tile the disk, each a whole number
# of sectors, and every extent marked zero reads as zeros in the model.
map_ok() {
  $PYTHON - "$2" "$3" "$4" <<'EOF'
import sys
mapfile, modelfile, ss = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = open(modelfile, 'rb').read()
pos = 0
for line in open(mapfile):
    f = line.split()
    if len(f) < 3 or not f[0].isdigit():
        continue
    start, length, typ = int(f[0]), int(f[1]), int(f[2])
    assert start == pos, "gap or overlap at %d (extent at %d)" % (pos, start)
    assert start % ss == 0 and length % ss == 0, \
        "extent %d+%d is not a whole number of %d-byte sectors" % (start, length, ss)
    if typ & 2:
        assert model[start:start + length] == bytes(length), \
            "extent %d+%d says zero but the disk has data there" % (start, length)
    pos = start + length
assert pos == len(model), "the map ends at %d, the disk at %d" % (pos, len(model))
EOF
}

# check_child LABEL CHILD MODEL: serve CHILD and compare against MODEL.
check_child() {
  local label=$1 img=$2 mdl=$3
  captive -r "$img" $RAW_PARENT_OPT -- "nbdinfo \"\$uri\" > info.txt && nbdinfo --map \"\$uri\" > map.txt" 2> err ||
    { not_ok "$label: nbdinfo failed: $(head -c 300 err)"; return; }
  local ss
  ss=$(sed -n 's/.*block_size_minimum: *\([0-9]*\).*/\1/p' info.txt)
  check "$label: the plugin advertises a minimum block size (${ss:-none})" [ "${ss:-0}" -ge 512 ]
  [ -n "$ss" ] || return
  if map_ok "$label" map.txt "$mdl" "$ss" 2> why; then
    ok "$label: nbdinfo --map is aligned to $ss bytes and true"
  else
    not_ok "$label: nbdinfo --map is aligned to $ss bytes and true: $(tail -n 1 why)"
  fi
  for mode in "" --synchronous; do
    rm -f copy.raw
    captive -r "$img" $RAW_PARENT_OPT -- "nbdcopy $mode \"\$uri\" copy.raw" 2> err
    local rc=$?
    check "$label: nbdcopy $mode succeeds $(head -c 200 err)" [ $rc -eq 0 ]
    check "$label: nbdcopy $mode copies the model" cmp -s copy.raw "$mdl"
  done
}

# 1. The child as vhdtool makes it: the parent's size rounded up to a sector.
VW create -f vhd -t differencing -p dense.raw child.vhd >/dev/null ||
  { not_ok "create a child of dense.raw"; finish; exit 1; }
size=$(VW info --json child.vhd | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
check "the child's size is the parent's rounded up to 512 ($size)" [ "$size" -eq 1000448 ]
model m1.raw dense.raw "$size"
check_child "dense parent" child.vhd m1.raw

# 2. A bigger child over the sparse parent, with writes of its own: the
# sector before the one the parent ends in, and one in its second block.
VW create -f vhd -t differencing -p sparse.raw -s 4M -b 1M child2.vhd >/dev/null ||
  { not_ok "create a child of sparse.raw"; finish; exit 1; }
bytes 4 512 | VW write --offset 1233408 child2.vhd
bytes 5 4096 | VW write --offset $((1024 * 1024 + 512)) child2.vhd
model m2.raw sparse.raw $((4 * 1024 * 1024)) 1233408:4:512 $((1024 * 1024 + 512)):5:4096
check_child "sparse parent, child 4 MiB" child2.vhd m2.raw

finish
