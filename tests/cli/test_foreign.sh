#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Foreign disk formats (qcow, QED,
# Parallels) are refused by name by every command that probes, instead of
# being taken for raw disks of their container bytes; -f raw still reads the
# bytes as they are.
#
# Usage: tests/cli/test_foreign.sh /path/to/vhdtool   (or VHDTOOL in the env)
#
# Oracle: qemu-img makes the images (their formats are qemu-img's word, not
# ours) and cmp compares the bytes -f raw reads with the file itself.
set -u

VHDTOOL=${1:-${VHDTOOL:-}}
if [ -z "$VHDTOOL" ] || [ ! -x "$VHDTOOL" ]; then
  echo "usage: $0 /path/to/vhdtool" >&2
  exit 2
fi
case $VHDTOOL in
  /*) ;;
  *) VHDTOOL=$(pwd)/$VHDTOOL ;;
esac
if ! command -v qemu-img >/dev/null 2>&1; then
  echo "$0: qemu-img is needed to make the foreign images; skipping" >&2
  exit 77
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/vhdtool-foreign.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
cd "$T" || exit 2

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$1"; }
not_ok() { failed=$((failed + 1)); printf 'not ok - %s\n' "$1"; shift; printf '  %s\n' "$@"; }

# refused NAME FILE WORD CMD...: CMD exits 1 with one line on stderr that
# names FILE and the format (WORD), and nothing on stdout.
refused() {
  name=$1 file=$2 word=$3
  shift 3
  "$@" > out 2> err
  rc=$?
  lines=$(wc -l < err)
  if [ $rc -eq 1 ] && [ "$lines" -eq 1 ] && grep -q "$file" err && grep -q "$word" err &&
     [ ! -s out ]; then
    ok "$name"
  else
    not_ok "$name" "exit $rc, $lines stderr lines, stdout $(wc -c < out) bytes:" "$(cat err)"
  fi
}

# make FILE FORMAT WORD [qemu-img create options]
check_format() {
  file=$1 fmt=$2 word=$3
  shift 3
  if ! qemu-img create -q -f "$fmt" "$@" "$file" 4M > qemu.err 2>&1; then
    echo "# qemu-img cannot make $fmt here: $(cat qemu.err)"
    return
  fi
  # qemu-img says what it made; the test is meaningless otherwise.
  made=$(qemu-img info "$file" | sed -n 's/^file format: //p')
  if [ "$made" != "$fmt" ]; then
    not_ok "$file: qemu-img made $fmt" "qemu-img info says '$made'"
    return
  fi
  refused "info $file" "$file" "$word" "$VHDTOOL" info "$file"
  refused "read $file" "$file" "$word" "$VHDTOOL" read "$file"
  # check reports a file it cannot open as a finding (its exit 2), in its
  # report on stdout.
  "$VHDTOOL" check "$file" > out 2>&1
  rc=$?
  if [ $rc -ne 0 ] && grep -q "$file is a $word" out; then
    ok "check $file"
  else
    not_ok "check $file" "exit $rc:" "$(cat out)"
  fi
  refused "convert $file" "$file" "$word" "$VHDTOOL" convert "$file" "out-$file.vhd"
  if [ -e "out-$file.vhd" ]; then
    not_ok "convert $file leaves no output" "out-$file.vhd exists"
  else
    ok "convert $file leaves no output"
  fi
  # -f raw: the container's bytes, as asked for (padded to whole sectors).
  if "$VHDTOOL" convert -f raw "$file" "raw-$file.raw" 2> err &&
     cmp -s -n "$(wc -c < "$file")" "$file" "raw-$file.raw"; then
    ok "convert -f raw $file copies the bytes"
  else
    not_ok "convert -f raw $file copies the bytes" "$(cat err)"
  fi
}

# qcow2 versions 2 and 3 are read (tests/interop/test_qcow2_read.sh, which
# also checks that other versions are refused by name).
check_format d.qcow qcow "qcow (version 1)"
check_format d.qed qed QED
# VDI is read (tests/interop/test_vdi_read.sh).
check_format d.parallels parallels Parallels
# VMDK sparse extents are read (tests/interop/test_vmdk_read.sh).
# VMDK descriptors are read too (tests/interop/test_vmdk_read.sh); their
# flat extent is checked below.
qemu-img create -q -f vmdk -o subformat=monolithicFlat desc.vmdk 4M

# The flat extent of a descriptor-type VMDK has no signature: it is a raw
# disk and reads as one (its descriptor is what is refused).
if [ -f desc-flat.vmdk ]; then
  if "$VHDTOOL" read desc-flat.vmdk | cmp -s - desc-flat.vmdk; then
    ok "the flat extent reads as raw"
  else
    not_ok "the flat extent reads as raw"
  fi
fi

# A raw disk whose first sector is text that is not a descriptor stays raw.
printf '# notes\nversion=12\n' > text.img
truncate -s 1M text.img
if "$VHDTOOL" info text.img > /dev/null 2> err; then
  ok "text that is not a VMDK descriptor stays raw"
else
  not_ok "text that is not a VMDK descriptor stays raw" "$(cat err)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
