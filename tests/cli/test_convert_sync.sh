#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool convert's durability and cache use: by default the output is not
# flushed (like qemu-img convert and cp), with --sync it is flushed before
# vhdtool exits; the data goes around the page cache with --direct.
# Oracle: strace, which sees every fsync/fdatasync vhdtool makes. Both
# outputs must hold the source's bytes (cmp after a round trip).
set -u
VHDTOOL=${1:?usage: $0 /path/to/vhdtool}
command -v strace >/dev/null 2>&1 || { echo "strace is needed; skipping" >&2; exit 77; }
# strace cannot trace a process that is already traced (some CI sandboxes)
strace -f -o /dev/null true 2>/dev/null || { echo "strace does not work here; skipping" >&2; exit 77; }

# LeakSanitizer cannot run under ptrace (ASan builds): leaks are the other
# tests' business, this one watches system calls.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

T=$(mktemp -d "${TMPDIR:-/tmp}/convert-sync.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok - $1"; }
not_ok() { fails=$((fails + 1)); echo "not ok - $1${2:+: $2}"; }

# 6 MiB with data in three places and zeros elsewhere.
python3 - "$T/src.raw" <<'EOF'
import sys
with open(sys.argv[1], "wb") as f:
    f.truncate(6 << 20)
    for off, n in ((0, 5000), (1 << 20, 1 << 20), ((5 << 20) + 4096, 70000)):
        f.seek(off)
        f.write(bytes((off + i) * 7 % 251 + 1 for i in range(n)))
EOF

# syncs FMT [--sync]: sets N to the number of fsync/fdatasync calls vhdtool
# makes while converting src.raw to FMT; the output is checked by a round trip.
syncs() {
  N=-1
  local fmt=$1; shift
  rm -f "$T/out.$fmt" "$T/back.raw"
  if ! strace -f -qq -e trace=fsync,fdatasync,sync_file_range,syncfs -o "$T/trace" \
       "$VHDTOOL" convert "$@" -O "$fmt" "$T/src.raw" "$T/out.$fmt" 2> "$T/err"; then
    not_ok "convert -O $fmt $*" "$(head -c 300 "$T/err")"
    return
  fi
  "$VHDTOOL" convert -O raw "$T/out.$fmt" "$T/back.raw" 2>> "$T/err" &&
    cmp -s "$T/src.raw" "$T/back.raw" ||
    not_ok "convert -O $fmt $*: round trip differs from the source"
  N=$(grep -cE '(^|[0-9] +)f(data)?sync\(' "$T/trace")
}

for fmt in raw vhd vhdx; do
  syncs "$fmt"; n=$N
  [ "$n" = 0 ] && ok "convert -O $fmt: no flush by default" ||
    not_ok "convert -O $fmt: no flush by default" "$n fsync/fdatasync calls"
  syncs "$fmt" --sync; n=$N
  [ "$n" -ge 1 ] 2>/dev/null && ok "convert --sync -O $fmt: flushed ($n calls)" ||
    not_ok "convert --sync -O $fmt: flushed" "$n fsync/fdatasync calls"
done

# The last flush comes after the last write: nothing is left unflushed.
rm -f "$T/out.vhd"
strace -f -qq -e trace=pwrite64,fdatasync,fsync -o "$T/trace" \
  "$VHDTOOL" convert --sync -O vhd "$T/src.raw" "$T/out.vhd" 2> "$T/err" &&
  last=$(grep -E 'pwrite64\(|f(data)?sync\(' "$T/trace" | tail -1) &&
  case $last in *sync\(*) ok "convert --sync: the last call is a flush" ;;
    *) not_ok "convert --sync: the last call is a flush" "$last" ;; esac ||
  not_ok "convert --sync under strace" "$(head -c 300 "$T/err")"

# The data goes through the page cache by default, around it with --direct
# (an O_DIRECT descriptor of DST is opened); both give the same bytes.
for mode in default --direct; do
  rm -f "$T/out.vhdx" "$T/back.raw"
  opt=(); [ "$mode" = default ] || opt=("$mode")
  if strace -f -qq -e trace=open,openat -o "$T/trace" \
       "$VHDTOOL" convert "${opt[@]}" -O vhdx "$T/src.raw" "$T/out.vhdx" 2> "$T/err" &&
     "$VHDTOOL" convert -O raw "$T/out.vhdx" "$T/back.raw" 2>> "$T/err" &&
     cmp -s "$T/src.raw" "$T/back.raw"; then
    n=$(grep -c 'O_DIRECT' "$T/trace")
    if [ "$mode" = default ]; then
      [ "$n" = 0 ] && ok "convert: no O_DIRECT by default" ||
        not_ok "convert: no O_DIRECT by default" "$n O_DIRECT opens"
    else
      [ "$n" -ge 1 ] && ok "convert --direct: data written with O_DIRECT" ||
        not_ok "convert --direct: data written with O_DIRECT" "no O_DIRECT open"
    fi
  else
    not_ok "convert $mode -O vhdx round trip" "$(head -c 300 "$T/err")"
  fi
  rm -f "$T/out.vhdx"
done

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
