#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Command-line tests of vhdtool: the contract scripts depend on (options,
# exit statuses, one-line errors, JSON), checked end to end.
#
# Usage: tests/cli/test_cli.sh /path/to/vhdtool
#
# Oracles: the bytes we wrote ourselves (kept in files and compared with
# cmp), python3's JSON parser, and qemu-img (when installed) for the format,
# size and content of the images vhdtool makes. Prints one line per check
# and "N passed, M failed" at the end; exits non-zero when anything failed.
set -u

if [ $# -ne 1 ]; then
  echo "usage: $0 /path/to/vhdtool" >&2
  exit 2
fi
VHDTOOL=$1
case $VHDTOOL in
  /*) ;;
  *) VHDTOOL=$(pwd)/$VHDTOOL ;;
esac
if [ ! -x "$VHDTOOL" ]; then
  echo "$0: $VHDTOOL is not an executable" >&2
  exit 2
fi
if ! command -v python3 >/dev/null 2>&1; then
  # A missing prerequisite is a skip (ctest's SKIP_RETURN_CODE), not a pass.
  echo "$0: python3 is needed to parse JSON; skipping" >&2
  exit 77
fi
# Resolve the interpreter once: a version-manager shim (pyenv) in front of
# python3 costs seconds per start, and this script starts it often. The
# system one first, as in ../interop/common.sh (a pyenv build starts half
# again as slowly as Debian's).
if [ -x /usr/bin/python3 ]; then
  PYTHON=/usr/bin/python3
else
  PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
  [ -x "$PYTHON" ] || PYTHON=python3
fi
HAVE_QEMU=no
command -v qemu-img >/dev/null 2>&1 && HAVE_QEMU=yes

T=$(mktemp -d "${TMPDIR:-/tmp}/vhdtool-cli.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

passed=0
failed=0

ok() {
  passed=$((passed + 1))
  printf 'ok - %s\n' "$1"
}

# not_ok NAME DETAIL...
not_ok() {
  failed=$((failed + 1))
  printf 'not ok - %s\n' "$1"
  shift
  for line in "$@"; do
    printf '#   %s\n' "$line"
  done
}

# run ARGS...: vhdtool with stdout in $T/out, stderr in $T/err, status in rc.
run() {
  "$VHDTOOL" "$@" >"$T/out" 2>"$T/err"
  rc=$?
}

# run_in INPUT ARGS...: the same with stdin from INPUT.
run_in() {
  _in=$1
  shift
  "$VHDTOOL" "$@" <"$_in" >"$T/out" 2>"$T/err"
  rc=$?
}

# expect_ok NAME: the last run exited 0 with nothing on stderr.
expect_ok() {
  if [ "$rc" -ne 0 ]; then
    not_ok "$1" "exit status $rc" "stderr: $(cat "$T/err")"
    return 1
  fi
  if [ -s "$T/err" ]; then
    not_ok "$1" "unexpected stderr: $(cat "$T/err")"
    return 1
  fi
  ok "$1"
}

# expect_one_line_error NAME [STATUS] -- SUBSTRING...: the last run failed
# (with STATUS when given) and wrote exactly one line to stderr, starting
# with "vhdtool" and containing every SUBSTRING.
expect_one_line_error() {
  _name=$1
  shift
  _want=any
  if [ "$1" != "--" ]; then
    _want=$1
    shift
  fi
  shift
  if [ "$rc" -eq 0 ]; then
    not_ok "$_name" "exit status 0, expected a failure"
    return 1
  fi
  if [ "$_want" != any ] && [ "$rc" -ne "$_want" ]; then
    not_ok "$_name" "exit status $rc, expected $_want" "stderr: $(cat "$T/err")"
    return 1
  fi
  _lines=$(wc -l <"$T/err" | tr -d ' ')
  if [ "$_lines" -ne 1 ]; then
    not_ok "$_name" "stderr has $_lines lines, expected 1:" "$(cat "$T/err")"
    return 1
  fi
  case $(cat "$T/err") in
    vhdtool*) ;;
    *)
      not_ok "$_name" "stderr does not start with 'vhdtool': $(cat "$T/err")"
      return 1
      ;;
  esac
  for _s in "$@"; do
    if ! grep -qF -- "$_s" "$T/err"; then
      not_ok "$_name" "stderr lacks '$_s': $(cat "$T/err")"
      return 1
    fi
  done
  ok "$_name"
}

# json FILE KEY...: print the value at the key path (list indexes as
# numbers); strings raw, everything else as JSON. Fails on invalid JSON.
json() {
  "$PYTHON" - "$@" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    v = json.load(f)
for k in sys.argv[2:]:
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if isinstance(v, str) else json.dumps(v))
PY
}

# expect_eq NAME ACTUAL EXPECTED (an empty ACTUAL never matches: it means
# the command that should have produced it printed nothing)
expect_eq() {
  if [ -n "$2" ] && [ "$2" = "$3" ]; then
    ok "$1"
  else
    not_ok "$1" "got '$2', expected '$3'"
  fi
}

# info_field FILE KEY...: `info --json FILE` then the field ("ERROR" when
# info failed or the key is missing).
info_field() {
  _f=$1
  shift
  if "$VHDTOOL" info --json "$_f" >"$T/info.json" 2>"$T/info.err"; then
    json "$T/info.json" "$@" 2>/dev/null || echo ERROR
  else
    echo ERROR
  fi
}

# qemu_field FORMAT FILE KEY: the same through qemu-img, the independent
# oracle. FORMAT is ours (vhd, vhdx) or "probe" to let qemu-img guess (it
# takes a fixed VHD for raw, as its prober looks only at offset 0).
qemu_field() {
  if [ "$1" = probe ]; then
    qemu-img info --output=json "$2"
  else
    qemu-img info -f "$(qemu_format "$1")" --output=json "$2"
  fi >"$T/qemu.json" 2>/dev/null || {
    echo ERROR
    return
  }
  json "$T/qemu.json" "$3" 2>/dev/null || echo ERROR
}

# random_file PATH BYTES: incompressible test data.
random_file() {
  "$PYTHON" -c 'import os, sys; sys.stdout.buffer.write(os.urandom(int(sys.argv[1])))' "$2" >"$1"
}

# slice SRC OFFSET LENGTH DST: copy bytes out of a file.
slice() {
  "$PYTHON" - "$@" <<'PY'
import sys
src, off, length, dst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(src, "rb") as f:
    f.seek(off)
    data = f.read(length)
with open(dst, "wb") as f:
    f.write(data)
PY
}

# is_zero FILE OFFSET LENGTH: succeed when that range holds only zeros.
is_zero() {
  "$PYTHON" - "$@" <<'PY'
import sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2]))
    data = f.read(int(sys.argv[3]))
sys.exit(0 if len(data) == int(sys.argv[3]) and data.count(0) == len(data) else 1)
PY
}

qemu_format() {
  case $1 in
    vhd) echo vpc ;;
    *) echo "$1" ;;
  esac
}

GIB=1073741824

# --- version and help ---------------------------------------------------

run --version
expect_ok "--version exits 0" && case $(cat "$T/out") in
  "vhdtool "*) ok "--version names vhdtool" ;;
  *) not_ok "--version names vhdtool" "got: $(cat "$T/out")" ;;
esac

run help
expect_ok "help exits 0"
for cmd in create info convert read write check; do
  if grep -q "^  $cmd " "$T/out"; then
    ok "help lists $cmd"
  else
    not_ok "help lists $cmd" "$(cat "$T/out")"
  fi
done

run help create
expect_ok "help create exits 0"
grep -qF -- "--force" "$T/out" && ok "help create documents --force" ||
  not_ok "help create documents --force" "$(cat "$T/out")"

run create --help
expect_ok "create --help exits 0"

run help nosuchcmd
expect_one_line_error "help of an unknown command" -- "nosuchcmd"

# --- size parsing ----------------------------------------------------------

i=0
for spec in 1G 1GiB 1g 1gib 1024M 1048576K 1073741824; do
  i=$((i + 1))
  run create -s "$spec" "$T/size$i.vhdx"
  expect_ok "create -s $spec" &&
    expect_eq "create -s $spec gives virtual-size $GIB" \
      "$(info_field "$T/size$i.vhdx" virtual-size)" "$GIB"
done
if [ "$HAVE_QEMU" = yes ]; then
  expect_eq "qemu-img agrees: -s 1G is $GIB bytes" \
    "$(qemu_field vhdx "$T/size1.vhdx" virtual-size)" "$GIB"
fi

run create -s 1G "$T/size-vhd.vhd"
expect_ok "create -s 1G (vhd)" &&
  expect_eq "vhd -s 1G gives virtual-size $GIB" \
    "$(info_field "$T/size-vhd.vhd" virtual-size)" "$GIB"

for bad in 12Q 1.5G -5 1GB "" 99999999999999999999; do
  run create -s "$bad" "$T/bad-size.vhdx"
  expect_one_line_error "create -s '$bad' is refused" 1 -- "size" "vhdtool help create"
  [ -e "$T/bad-size.vhdx" ] && not_ok "create -s '$bad' leaves no file" "file exists"
done

run create -s 64M -b 1M "$T/bs.vhdx"
expect_ok "create -b 1M" &&
  expect_eq "block-size from -b 1M" "$(info_field "$T/bs.vhdx" block-size)" 1048576

# --- format from the extension, and -f --------------------------------------

for pair in a.vhd:vhd b.vhdx:vhdx c.avhdx:vhdx d.avhd:vhd E.VHDX:vhdx F.Vhd:vhd; do
  name=${pair%%:*}
  fmt=${pair#*:}
  run create -s 8M "$T/$name"
  expect_ok "create $name" || continue
  expect_eq "$name is $fmt" "$(info_field "$T/$name" format)" "$fmt"
  if [ "$HAVE_QEMU" = yes ]; then
    expect_eq "qemu-img sees $name as $(qemu_format "$fmt")" \
      "$(qemu_field probe "$T/$name" format)" "$(qemu_format "$fmt")"
  fi
done

run create -f vhdx -s 8M "$T/forced.img"
expect_ok "create -f vhdx x.img" &&
  expect_eq "-f vhdx wins over the extension" "$(info_field "$T/forced.img" format)" vhdx

run create -f vhd -s 8M "$T/forced.bin"
expect_ok "create -f vhd x.bin" &&
  expect_eq "-f vhd with an unknown extension" "$(info_field "$T/forced.bin" format)" vhd

run create -s 8M "$T/noext"
expect_one_line_error "create without -f and without a known extension" 1 -- "noext" "-f"
[ -e "$T/noext" ] && not_ok "a refused create leaves no file" "$T/noext exists"

run create -f qcow2 -s 8M "$T/x.vhd"
expect_one_line_error "create -f qcow2 is refused" 1 -- "qcow2"

# --- types --------------------------------------------------------------------

expect_eq "type defaults to dynamic" "$(info_field "$T/a.vhd" type)" dynamic

run create -t fixed -s 4M "$T/fixed.vhd"
expect_ok "create -t fixed" && {
  expect_eq "fixed type" "$(info_field "$T/fixed.vhd" type)" fixed
  expect_eq "fixed virtual-size" "$(info_field "$T/fixed.vhd" virtual-size)" 4194304
  if [ "$HAVE_QEMU" = yes ]; then
    expect_eq "qemu-img: fixed vhd size" "$(qemu_field vhd "$T/fixed.vhd" virtual-size)" 4194304
  fi
}

run create -t differencing -s 4M "$T/nodiff.vhdx"
expect_one_line_error "differencing without a parent is refused" 1 -- "parent"

# --- refusing an existing file ----------------------------------------------

run create -s 8M "$T/exists.vhdx"
expect_ok "create a file"
cp "$T/exists.vhdx" "$T/exists.copy"
run create -s 16M "$T/exists.vhdx"
expect_one_line_error "create refuses an existing file" -- "$T/exists.vhdx"
if cmp -s "$T/exists.vhdx" "$T/exists.copy"; then
  ok "refused create leaves the file untouched"
else
  not_ok "refused create leaves the file untouched" "the file changed"
fi
run create --force -s 16M "$T/exists.vhdx"
expect_ok "create --force replaces it" &&
  expect_eq "the replacement has the new size" \
    "$(info_field "$T/exists.vhdx" virtual-size)" 16777216

# --- info --json ----------------------------------------------------------------

run info --json "$T/b.vhdx"
if expect_ok "info --json"; then
  if "$PYTHON" -c 'import json,sys; json.load(sys.stdin)' <"$T/out" 2>"$T/py.err"; then
    ok "info --json parses"
  else
    not_ok "info --json parses" "$(cat "$T/py.err")" "$(cat "$T/out")"
  fi
  cp "$T/out" "$T/b.json"
  for key in filename format type virtual-size actual-size block-size creator \
    file-size logical-sector-size physical-sector-size allocated-blocks total-blocks chain; do
    if json "$T/b.json" "$key" >/dev/null 2>&1; then
      ok "info --json has $key"
    else
      not_ok "info --json has $key" "$(cat "$T/b.json")"
    fi
  done
  expect_eq "info --json filename" "$(json "$T/b.json" filename)" "$T/b.vhdx"
  expect_eq "info --json actual-size is st_blocks*512" "$(json "$T/b.json" actual-size)" \
    "$("$PYTHON" -c 'import os,sys; print(os.stat(sys.argv[1]).st_blocks*512)' "$T/b.vhdx")"
  expect_eq "info --json file-size" "$(json "$T/b.json" file-size)" \
    "$(wc -c <"$T/b.vhdx" | tr -d ' ')"
  expect_eq "info --json chain[0] is the image" "$(json "$T/b.json" chain 0 filename)" "$T/b.vhdx"
fi

expect_eq "vhd info has a chs object" \
  "$(info_field "$T/a.vhd" chs heads | grep -c '^[0-9][0-9]*$')" 1

# A file name JSON must escape: quote, backslash, tab, and UTF-8.
weird="$T/we\"ird\\na	mé.vhdx"
run create -s 8M "$weird"
if expect_ok "create a file with a strange name"; then
  expect_eq "info --json escapes the file name" "$(info_field "$weird" filename)" "$weird"
fi

run info "$T/b.vhdx"
if expect_ok "info (text)"; then
  grep -q "virtual size" "$T/out" && ok "info text shows the virtual size" ||
    not_ok "info text shows the virtual size" "$(cat "$T/out")"
fi

# --- write then read back ---------------------------------------------------------

for fmt in vhd vhdx; do
  img="$T/rw.$fmt"
  run create -s 64M "$img"
  expect_ok "create $fmt for read/write" || continue

  # Unaligned offset, crossing block boundaries of both formats' defaults.
  random_file "$T/data" 3158573
  off=1048583
  run_in "$T/data" write --offset "$off" "$img"
  expect_ok "$fmt: write --offset $off"
  run read --offset "$off" --length 3158573 "$img"
  expect_ok "$fmt: read --offset --length"
  if cmp -s "$T/out" "$T/data"; then
    ok "$fmt: bytes read back equal the bytes written"
  else
    not_ok "$fmt: bytes read back equal the bytes written" "cmp: $(cmp "$T/out" "$T/data" 2>&1)"
  fi

  # Offsets with suffixes.
  random_file "$T/data2" 65536
  run_in "$T/data2" write --offset 32M "$img"
  expect_ok "$fmt: write --offset 32M"
  run read --offset 32M --length 64K "$img"
  if expect_ok "$fmt: read --offset 32M --length 64K"; then
    cmp -s "$T/out" "$T/data2" && ok "$fmt: suffixed offsets round trip" ||
      not_ok "$fmt: suffixed offsets round trip" "data differs"
  fi

  # The whole disk: our model is zeros plus the two pieces written.
  run read "$img"
  cp "$T/out" "$T/full"
  expect_eq "$fmt: read with no range gives the whole disk" \
    "$(wc -c <"$T/full" | tr -d ' ')" 67108864
  slice "$T/full" "$off" 3158573 "$T/piece"
  cmp -s "$T/piece" "$T/data" && ok "$fmt: whole-disk read holds the data" ||
    not_ok "$fmt: whole-disk read holds the data" "differs"
  is_zero "$T/full" 0 "$off" && ok "$fmt: unwritten start reads as zeros" ||
    not_ok "$fmt: unwritten start reads as zeros" "non-zero bytes"

  if [ "$HAVE_QEMU" = yes ]; then
    if qemu-img convert -f "$(qemu_format "$fmt")" -O raw "$img" "$T/qemu.raw" 2>"$T/qemu.err"; then
      cmp -s "$T/qemu.raw" "$T/full" && ok "$fmt: qemu-img reads what vhdtool read" ||
        not_ok "$fmt: qemu-img reads what vhdtool read" "$(cmp "$T/qemu.raw" "$T/full" 2>&1)"
    else
      not_ok "$fmt: qemu-img can read the written image" "$(cat "$T/qemu.err")"
    fi
  fi

  run check "$img"
  expect_ok "$fmt: check after writes exits 0"

  # Too much input for the space after the offset.
  run_in "$T/data" write --offset 63M "$img"
  expect_one_line_error "$fmt: write past the end fails" -- "$img"
  run read --offset 60M --length 8M "$img"
  expect_one_line_error "$fmt: read past the end fails" -- "$img"
done

# Zeros into an unallocated block allocate nothing (vhd_pwrite contract).
run create -s 64M "$T/zeros.vhdx"
head -c 1048576 /dev/zero >"$T/zeros"
run_in "$T/zeros" write --offset 4M "$T/zeros.vhdx"
expect_ok "write zeros"
expect_eq "zeros allocate no block" "$(info_field "$T/zeros.vhdx" allocated-blocks)" 0

# A closed pipe: the failure is reported, on one line.
{
  "$VHDTOOL" read "$T/rw.vhdx" 2>"$T/err"
  echo $? >"$T/rc"
} | head -c 10 >/dev/null
rc=$(cat "$T/rc")
expect_one_line_error "read into a closed pipe fails with one line" -- "$T/rw.vhdx"

# --- differencing ---------------------------------------------------------------

run create -s 32M "$T/base.vhdx"
random_file "$T/base-data" 2097152
run_in "$T/base-data" write "$T/base.vhdx"
expect_ok "write the parent"
run create -p "$T/base.vhdx" "$T/child.avhdx"
if expect_ok "create -p PARENT"; then
  expect_eq "child type" "$(info_field "$T/child.avhdx" type)" differencing
  expect_eq "child size defaults to the parent's" \
    "$(info_field "$T/child.avhdx" virtual-size)" 33554432
  expect_eq "child's parent is resolved" \
    "$("$PYTHON" -c 'import os,sys; print(os.path.realpath(sys.argv[1]))' \
      "$(info_field "$T/child.avhdx" parent)")" \
    "$("$PYTHON" -c 'import os,sys; print(os.path.realpath(sys.argv[1]))' "$T/base.vhdx")"
  expect_eq "chain has two layers" "$(info_field "$T/child.avhdx" chain 1 type)" dynamic

  random_file "$T/child-data" 4096
  run_in "$T/child-data" write --offset 1M "$T/child.avhdx"
  expect_ok "write into the child"
  # Model: the parent's bytes with the child's 4 KiB over them.
  "$PYTHON" - "$T/base-data" "$T/child-data" "$T/model" <<'PY'
import sys
base = bytearray(open(sys.argv[1], "rb").read())
base[1048576:1048576 + 4096] = open(sys.argv[2], "rb").read()
open(sys.argv[3], "wb").write(bytes(base))
PY
  run read --length 2M "$T/child.avhdx"
  cmp -s "$T/out" "$T/model" && ok "child reads through to its parent" ||
    not_ok "child reads through to its parent" "$(cmp "$T/out" "$T/model" 2>&1)"
  run read --length 2M "$T/base.vhdx"
  cmp -s "$T/out" "$T/base-data" && ok "writing the child leaves the parent alone" ||
    not_ok "writing the child leaves the parent alone" "parent changed"

  # The parent moves away: info still describes the child, with a warning.
  mv "$T/base.vhdx" "$T/moved.vhdx"
  run info --json "$T/child.avhdx"
  if [ "$rc" -eq 0 ]; then
    ok "info of a child whose parent moved exits 0"
  else
    not_ok "info of a child whose parent moved exits 0" "status $rc: $(cat "$T/err")"
  fi
  [ "$(wc -l <"$T/err" | tr -d ' ')" = 1 ] && grep -q warning "$T/err" &&
    ok "a missing parent gives one warning line" ||
    not_ok "a missing parent gives one warning line" "$(cat "$T/err")"
  expect_eq "info --json still parses, type differencing" "$(json "$T/out" type 2>/dev/null || echo ERROR)" differencing
  expect_eq "info --json says the parent was not found" "$(json "$T/out" parent-found 2>/dev/null || echo ERROR)" false
  run read "$T/child.avhdx"
  expect_one_line_error "read of a child without its parent fails" -- "child.avhdx"
  mv "$T/moved.vhdx" "$T/base.vhdx"
fi

# A child of a 4K-sector VHDX takes its parent's sector size (Hyper-V
# refuses mixed chains), and asking for another one is an error.
run create -s 8M --sector-size 4096 "$T/base4k.vhdx"
expect_ok "create a 4K-sector parent"
run create -p "$T/base4k.vhdx" "$T/child4k.avhdx"
expect_ok "create a child of a 4K parent without --sector-size"
expect_eq "the child has the parent's 4096-byte sectors" \
  "$(info_field "$T/child4k.avhdx" logical-sector-size)" 4096
if command -v vhdiinfo >/dev/null 2>&1; then
  expect_eq "libvhdi sees 4096-byte sectors in the child" \
    "$(vhdiinfo "$T/child4k.avhdx" 2>/dev/null | sed -n 's/^[[:space:]]*Bytes per sector[[:space:]]*: *\([0-9]*\).*/\1/p' | head -n 1)" 4096
fi
run create -p "$T/base4k.vhdx" --sector-size 512 "$T/child512.avhdx"
expect_one_line_error "a 512-byte child of a 4K parent is refused" -- "sector size"

# Ids as libvhdi prints them (its "Identifier" is the VHD unique id and the
# VHDX data write GUID): the check that VHDX GUIDs are printed in Windows'
# byte order.
if command -v vhdiinfo >/dev/null 2>&1; then
  # vhdiinfo_field FILE LABEL: the value after "LABEL :" in vhdiinfo's text.
  vhdiinfo_field() {
    vhdiinfo "$1" 2>/dev/null | sed -n "s/^[[:space:]]*$2[[:space:]]*: *//p" | head -n 1
  }
  expect_eq "vhd unique id matches libvhdi" "$(info_field "$T/rw.vhd" id)" \
    "$(vhdiinfo_field "$T/rw.vhd" Identifier)"
  expect_eq "vhdx data write id matches libvhdi" "$(info_field "$T/rw.vhdx" data-write-id)" \
    "$(vhdiinfo_field "$T/rw.vhdx" Identifier)"
  if [ -e "$T/child.avhdx" ]; then
    expect_eq "vhdx parent id matches libvhdi" "$(info_field "$T/child.avhdx" parent-id)" \
      "$(vhdiinfo_field "$T/child.avhdx" 'Parent identifier')"
  fi
fi

# --- convert --------------------------------------------------------------------

run convert "$T/rw.vhdx" "$T/conv.raw"
expect_ok "convert vhdx to raw (format from .raw)" && {
  run read "$T/rw.vhdx"
  cmp -s "$T/out" "$T/conv.raw" && ok "raw output equals the disk's bytes" ||
    not_ok "raw output equals the disk's bytes" "differs"
}
run convert "$T/conv.raw" "$T/conv.vhd"
expect_ok "convert raw to vhd" && {
  expect_eq "converted format" "$(info_field "$T/conv.vhd" format)" vhd
  run read "$T/conv.vhd"
  cmp -s "$T/out" "$T/conv.raw" && ok "vhd output equals the source" ||
    not_ok "vhd output equals the source" "differs"
}
run convert -O vhdx -t fixed "$T/child.avhdx" "$T/flat.out"
expect_ok "convert a chain with -O vhdx -t fixed" && {
  expect_eq "flattened type" "$(info_field "$T/flat.out" type)" fixed
  run read --length 2M "$T/flat.out"
  cmp -s "$T/out" "$T/model" && ok "flattened chain keeps the data" ||
    not_ok "flattened chain keeps the data" "differs"
}
run convert -p "$T/rw.vhd" "$T/conv.vhd"
expect_one_line_error "convert refuses an existing DST" -- "$T/conv.vhd"
run convert -p --force "$T/rw.vhd" "$T/conv.vhd"
expect_ok "convert --force (and -p prints nothing off a terminal)"
run convert "$T/rw.vhd" "$T/rw.vhd"
expect_one_line_error "convert onto its own source is refused" -- "rw.vhd"
run convert "$T/nonexistent.vhd" "$T/never.vhd"
expect_one_line_error "convert of a missing source" -- "nonexistent.vhd"
# An empty source: the line names it and says it is empty (no -s to blame).
: > "$T/empty.raw"
run convert "$T/empty.raw" "$T/from-empty.vhd"
expect_one_line_error "convert of an empty source says so" 1 -- "empty.raw" "is empty (0 bytes)"
[ -e "$T/from-empty.vhd" ] && not_ok "convert of an empty source leaves no DST" "exists"
[ -e "$T/never.vhd" ] && not_ok "a failed convert leaves no DST" "$T/never.vhd exists"

# --- check ---------------------------------------------------------------------

run create -s 16M "$T/fresh.vhd"
run check "$T/fresh.vhd"
expect_ok "check of a fresh image exits 0"
run check --json "$T/fresh.vhd"
if expect_ok "check --json exits 0"; then
  "$PYTHON" -c 'import json,sys; json.load(sys.stdin)' <"$T/out" &&
    ok "check --json parses" || not_ok "check --json parses" "$(cat "$T/out")"
  expect_eq "check --json result" "$(json "$T/out" result)" clean
  expect_eq "check --json corruptions" "$(json "$T/out" corruptions)" 0
  expect_eq "check --json findings is a list" "$(json "$T/out" findings | cut -c1)" "["
fi

# A BAT entry pointing far past the end of the file is corruption: exit 2.
# (Dynamic VHD: header at 512, its BAT offset is the big-endian u64 at 512+16.)
cp "$T/fresh.vhd" "$T/corrupt.vhd"
"$PYTHON" - "$T/corrupt.vhd" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(512 + 16)
    bat = struct.unpack(">Q", f.read(8))[0]
    f.seek(bat)
    f.write(struct.pack(">I", 0x00FFFFF0))
PY
run check --json "$T/corrupt.vhd"
expect_eq "check exits 2 on corruption" "$rc" 2
expect_eq "check --json result corrupt" "$(json "$T/out" result 2>/dev/null || echo ERROR)" corrupt

# Bytes after a VHDX's last structure belong to nothing: leaked, exit 3.
run create -s 64M "$T/leak.vhdx"
head -c 4194304 /dev/zero | tr '\0' '\1' >>"$T/leak.vhdx"
run check --json "$T/leak.vhdx"
expect_eq "check exits 3 on leaked space only" "$rc" 3
expect_eq "check --json result leaked" "$(json "$T/out" result 2>/dev/null || echo ERROR)" leaked
expect_eq "check --json leaked-bytes" "$(json "$T/out" leaked-bytes 2>/dev/null || echo ERROR)" 4194304

run check "$T/missing.vhd"
expect_one_line_error "check of a missing file exits 1" 1 -- "missing.vhd"

# A child whose parent is missing is not corrupt: the check cannot run to
# the end, as qemu-img check says for a qcow2 without its backing file
# (exit 1, one line naming the child and the parent). A parent that is
# there but is another disk breaks the chain: corruption, exit 2.
run create -s 4M "$T/gone-parent.vhd"
run create -p "$T/gone-parent.vhd" "$T/orphan.vhd"
expect_ok "create a child to orphan"
mv "$T/gone-parent.vhd" "$T/gone-parent.vhd.away"
run check "$T/orphan.vhd"
expect_one_line_error "check of a child without its parent exits 1" 1 -- \
  "orphan.vhd" "gone-parent.vhd" "not found"
run check --json "$T/orphan.vhd"
expect_one_line_error "check --json of a child without its parent exits 1" 1 -- \
  "orphan.vhd" "gone-parent.vhd"
run create -s 4M "$T/gone-parent.vhd"
run check "$T/orphan.vhd"
expect_eq "check of a child over another disk of its parent's name exits 2" "$rc" 2
mv -f "$T/gone-parent.vhd.away" "$T/gone-parent.vhd"
run check "$T/orphan.vhd"
expect_eq "check of the child with its parent back exits 0" "$rc" 0

# --- split Virtual PC images ----------------------------------------------------
# The first piece has no footer, so it would probe as a raw disk of the
# wrong size; it must be refused by name instead, and the joined pieces
# must read as the original image.
run create -t fixed -s 4M "$T/whole.vhd"
random_file "$T/split-data" 4194304
run_in "$T/split-data" write "$T/whole.vhd"
head -c 2097152 "$T/whole.vhd" > "$T/split.vhd"
tail -c +2097153 "$T/whole.vhd" > "$T/split.v01"
run info "$T/split.vhd"
expect_one_line_error "the first piece of a split image is refused" -- "split.v01"
cat "$T/split.vhd" "$T/split.v01" > "$T/joined.vhd"
run read "$T/joined.vhd"
cmp -s "$T/out" "$T/split-data" && ok "the joined pieces read as the original" ||
  not_ok "the joined pieces read as the original" "content differs"
rm -f "$T/split.v01"
run info "$T/split.vhd"
expect_ok "without its .v01 sibling a footerless .vhd is just raw, as before"

# --- one-line errors ---------------------------------------------------------------

run info "$T/missing.vhdx"
expect_one_line_error "info of a missing file" 1 -- "$T/missing.vhdx"
run read "$T/missing.vhdx"
expect_one_line_error "read of a missing file" 1 -- "$T/missing.vhdx"
head -c 10 /dev/zero >"$T/ten"
run_in "$T/ten" write "$T/missing.vhdx"
expect_one_line_error "write to a missing file" 1 -- "$T/missing.vhdx"
run info --bogus "$T/a.vhd"
expect_one_line_error "unknown option" 1 -- "--bogus" "vhdtool help info"
run create -s 8M --for "$T/ambiguous.vhdx"
expect_one_line_error "ambiguous abbreviation" 1 -- "--for" "--force" "--format"
run create -s
expect_one_line_error "option without its value" 1 -- "-s"
run info
expect_one_line_error "missing FILE" 1 -- "FILE" "vhdtool help info"
run frobnicate
expect_one_line_error "unknown command" 1 -- "frobnicate"
run
expect_one_line_error "no command" 1 -- "help"
head -c 4096 /dev/urandom >"$T/garbage.vhd"
run info "$T/garbage.vhd"
if [ "$rc" -eq 0 ]; then
  # Content probing: a file that is not VHD/VHDX is raw, never guessed by name.
  expect_eq "a non-image opens as raw" "$(info_field "$T/garbage.vhd" format)" raw
else
  expect_one_line_error "info of a garbage file" 1 -- "garbage.vhd"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
