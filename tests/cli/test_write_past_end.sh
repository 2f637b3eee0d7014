#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool write with input that runs past the end of the virtual disk.
# From a regular file the length is known: nothing may be written (the
# image file is byte-identical afterwards, cmp). From a pipe: what came
# before the refused chunk stays written, and the error line says how many
# bytes; the disk then reads as exactly those bytes of the input.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd cmp head
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
SIZE=$((8 * 1024 * 1024))
head -c $((SIZE + 1024 * 1024)) /dev/urandom > long.in
head -c $SIZE long.in > exact.in

# one_line FILE: stderr in FILE is one line starting with "vhdtool: "
one_line() { [ "$(wc -l < "$1")" -eq 1 ] && grep -q '^vhdtool: ' "$1"; }

# make FMT TYPE IMG: a new image ("-": raw, which has no type)
make() {
  rm -f "$3"
  if [ "$2" = - ]; then V create -f "$1" -s $SIZE "$3"; else V create -f "$1" -t "$2" -s $SIZE "$3"; fi >/dev/null
}

for spec in "vhd dynamic" "vhd fixed" "vhdx dynamic" "raw -"; do
  set -- $spec
  fmt=$1 type=$2 img=disk.$1 label="$1 $2"
  make "$fmt" "$type" "$img" || { not_ok "$label: create"; continue; }
  cp "$img" before

  V write "$img" < long.in 2> err
  check "$label: too long an input from a file fails (exit 1)" [ $? -eq 1 ]
  check "$label: with one error line naming the image" sh -c "$(declare -f one_line); one_line err && grep -qF '$img' err"
  check "$label: and the image is unchanged" cmp -s "$img" before

  V write --offset 4M "$img" < exact.in 2> err
  check "$label: a file that fits only without --offset fails" [ $? -eq 1 ]
  check "$label: and leaves the image unchanged" cmp -s "$img" before

  V write "$img" < exact.in 2> err
  check "$label: an input of exactly the virtual size is written" [ $? -eq 0 ]
  check "$label: and reads back" sh -c "\"$VHDTOOL\" read '$img' | cmp -s - exact.in"

  # From a pipe: the input is written chunk by chunk until one crosses the end.
  make "$fmt" "$type" "$img"
  cat long.in | V write --offset 1M "$img" 2> err
  check "$label: too long an input from a pipe fails (exit 1)" [ $? -eq 1 ]
  written=$(sed -n 's/.*the \([0-9]*\) bytes before it are written.*/\1/p' err)
  check "$label: the error says how many bytes were written (${written:-none})" \
    sh -c "$(declare -f one_line); one_line err && [ -n '$written' ]"
  if [ -n "$written" ]; then
    { head -c 1M /dev/zero; head -c "$written" long.in; } > model
    truncate -s $SIZE model
    check "$label: the disk holds exactly those bytes of the input" \
      sh -c "\"$VHDTOOL\" read '$img' | cmp -s - model"
  fi
done

finish
