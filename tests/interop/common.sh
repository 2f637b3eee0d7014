# SPDX-License-Identifier: BSD-3-Clause
# Shared helpers for the shell tests (sourced, not run).
#
# Environment (set by ctest, see tests/CMakeLists.txt):
#   VHDTOOL     path of vhdtool (or given as $1)
#   VHDI_READ   path of the libvhdi oracle program (may be empty)
#   SHARED_DIR  ../shared of the project (real images)
#
# A test counts its checks with ok/not_ok, ends with `finish`, which prints
# "N passed, M failed" and returns non-zero on any failure. A test whose
# prerequisites are missing calls skip_all, which exits 77 (ctest: skipped).

set -u

VHDTOOL=${1:-${VHDTOOL:-}}
VHDI_READ=${VHDI_READ:-}
SHARED_DIR=${SHARED_DIR:-}
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The system python when there is one: version-manager shims can take
# seconds to start, and the tests start python hundreds of times.
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
GEN="$PYTHON $TESTS_DIR/interop/gen.py"

PASSED=0
FAILED=0

ok() { PASSED=$((PASSED + 1)); echo "ok - $*"; }
not_ok() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }

# check DESCRIPTION COMMAND...: one check that passes when COMMAND succeeds.
check() {
  local desc=$1; shift
  if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

skip_all() { echo "SKIP: $*"; exit 77; }

need_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || skip_all "$c is not installed"
  done
}

need_vhdtool() {
  [ -n "$VHDTOOL" ] && [ -x "$VHDTOOL" ] || { echo "FAIL - vhdtool not built (VHDTOOL='$VHDTOOL')"; echo "0 passed, 1 failed"; exit 1; }
}

need_vhdi_read() {
  [ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ] || skip_all "vhdi_read (libvhdi) not built"
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# A private scratch directory, removed at exit.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vhdtest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# json_get FILE KEY: print one top-level key of a JSON document ("" for null
# or missing).
json_get() {
  "$PYTHON" -c '
import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("" if v is None else v)' "$1" "$2"
}

# json_load FILE: load every top-level scalar of a JSON document into the
# associative array J (one python start instead of one per key).
declare -A J
json_load() {
  J=()
  local k v
  while IFS=$'\t' read -r k v; do J[$k]=$v; done < <("$PYTHON" -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    d = {}
for k, v in d.items():
    if not isinstance(v, (dict, list)):
        print("%s\t%s" % (k, "" if v is None else v))' "$1")
}

# qemu_vsize FMT FILE: virtual size as qemu-img sees it.
qemu_vsize() {
  qemu-img info -f "$1" --output=json "$2" > "$WORK/.qinfo.json" && json_get "$WORK/.qinfo.json" virtual-size
}

# vhdi_media_size FILE: media size in bytes as vhdiinfo reports it.
vhdi_media_size() {
  vhdiinfo "$1" 2>/dev/null | sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p'
}

# vhdtool_vsize FILE: virtual size per `vhdtool info --json`.
vhdtool_vsize() {
  "$VHDTOOL" info --json "$1" > "$WORK/.vinfo.json" && json_get "$WORK/.vinfo.json" virtual-size
}

# same_read DESC RAW CMD...: CMD writes a virtual disk to stdout that must be
# byte-identical to RAW (and CMD must succeed).
same_read() {
  local desc=$1 raw=$2; shift 2
  local out="$WORK/.read.out"
  if ! "$@" > "$out" 2> "$WORK/.read.err"; then
    not_ok "$desc (command failed: $(head -c 300 "$WORK/.read.err"))"
  elif cmp -s "$out" "$raw"; then
    ok "$desc"
  else
    not_ok "$desc ($(cmp "$out" "$raw" 2>&1 | head -1))"
  fi
  rm -f "$out"
}

# apply_writes IMG MODEL LIST: replay a write list made by `gen.py writes`
# (lines "OFFSET DATAFILE") into IMG through `vhdtool write --offset` and into
# the raw MODEL with dd conv=notrunc. Returns non-zero if a write failed.
apply_writes() {
  local img=$1 model=$2 list=$3 off data rc=0
  while read -r off data; do
    if ! "$VHDTOOL" write --offset "$off" "$img" < "$data" 2> "$WORK/.write.err"; then
      echo "  vhdtool write --offset $off $img failed: $(cat "$WORK/.write.err")"
      rc=1
    fi
    dd if="$data" of="$model" bs=65536 seek="$off" oflag=seek_bytes conv=notrunc status=none || rc=1
  done < "$list"
  return $rc
}
