#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Image locks across processes (issue 11.5): a writer keeps every other
# user out, readers coexist, -U/--force-share reads an image in use, and the
# refusal is one line naming the file, exit status 1.
#
# Oracle: qemu-img and qemu-io, whose locks (OFD locks on bytes 100+ and
# 200+ of the file) the library takes in the same scheme: qemu must refuse
# an image vhdtool holds, and vhdtool one qemu holds, each as it does
# against itself.
#
# Holders are long-lived processes waiting on a FIFO we keep open: `vhdtool
# write` (a writer, waiting for its standard input), `vhdtool read` into a
# pipe nobody drains (a reader, blocked on its output), and qemu-io reading
# its commands from the FIFO.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/lock_common.sh"
need_vhdtool
need_cmd mkfifo timeout
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }

HOLDER=
# hold_writer IMAGE: `vhdtool write IMAGE` waits on a FIFO, holding the
# image open read-write until release.
hold_writer() {
  rm -f in.fifo && mkfifo in.fifo
  V write "$1" < in.fifo > holder.out 2>&1 &
  HOLDER=$!
  exec 7> in.fifo
  wait_locked "$1"
}
# hold_reader IMAGE: `vhdtool read IMAGE` blocked on a full pipe.
hold_reader() {
  rm -f out.fifo && mkfifo out.fifo
  V read "$1" > out.fifo 2> holder.out &
  HOLDER=$!
  exec 8< out.fifo
  wait_locked "$1"
}
# hold_qemu_writer IMAGE FMT: qemu-io, read-write, waiting for commands.
hold_qemu_writer() {
  rm -f in.fifo && mkfifo in.fifo
  qemu-io -f "$2" "$1" < in.fifo > holder.out 2>&1 &
  HOLDER=$!
  exec 7> in.fifo
  wait_locked "$1"
}
# wait_locked IMAGE: until some process locks IMAGE (/proc/locks lists it).
wait_locked() {
  local ino i
  ino=$(stat -c %i "$1")
  for i in $(seq 100); do
    grep -q ":$ino " /proc/locks 2>/dev/null && return 0
    sleep 0.05
  done
  not_ok "no lock appeared on $1 (holder: $(cat holder.out))"
}
release() {
  exec 7>&- 8<&-
  [ -n "$HOLDER" ] && wait "$HOLDER" 2>/dev/null
  HOLDER=
}

for ext in vhd vhdx raw; do
  case $ext in vhd) qf=vpc ;; *) qf=$ext ;; esac
  img=disk.$ext
  rm -f "$img"
  V create -s 8M "$img" > /dev/null || { not_ok "$ext: create"; continue; }

  # --- vhdtool writes ---
  hold_writer "$img"
  refused "$ext: info while vhdtool writes is refused" "^vhdtool: $img: $WRITTEN (use -U/--force-share" V info "$img"
  refused "$ext: check while vhdtool writes is refused" "$img: $WRITTEN" V check "$img"
  refused "$ext: a second writer is refused" "$img: $WRITTEN" V write "$img" < /dev/null
  works "$ext: info -U reads it anyway" V info -U "$img"
  works "$ext: read --force-share reads it anyway" V read --force-share "$img"
  refused "$ext: check --repair -U is refused (a repair writes)" "force-share" V check --repair -U "$img"
  # (qemu-img info on raw reads no content and refuses no writer, even
  # qemu's own)
  [ $ext = raw ] || qemu_refuses "$ext: qemu-img info refuses it (oracle)" qemu-img info -f $qf "$img"
  qemu_works "$ext: qemu-img info -U reads it (oracle)" qemu-img info -U -f $qf "$img"
  qemu_refuses "$ext: qemu-io cannot write it (oracle)" qemu-io -f $qf -c 'write 0 512' "$img"
  release

  # --- vhdtool reads; another reader is fine, writers are not ---
  hold_reader "$img"
  works "$ext: info while vhdtool reads (two readers)" V info "$img"
  works "$ext: a second read while vhdtool reads" V read "$img"
  refused "$ext: a writer is refused while vhdtool reads" "$img: $READ" V write "$img" < /dev/null
  refused "$ext: resize is refused while vhdtool reads" "$img: $READ" V resize "$img" 16M
  qemu_works "$ext: qemu-img info while vhdtool reads (oracle)" qemu-img info -f $qf "$img"
  qemu_refuses "$ext: qemu-io cannot write while vhdtool reads (oracle)" \
    qemu-io -f $qf -c 'write 0 512' "$img"
  release

  # --- qemu writes ---
  if $have_qemu; then
    hold_qemu_writer "$img" $qf
    refused "$ext: info while qemu-io writes is refused" "$img: $WRITTEN" V info "$img"
    refused "$ext: write while qemu-io writes is refused" "$img: $WRITTEN" V write "$img" < /dev/null
    works "$ext: info -U while qemu-io writes" V info -U "$img"
    release
  fi

  works "$ext: after the holders are gone, write works" V write "$img" < /dev/null
done

# A parent is opened read-only: a child's chain shares it with readers, and
# a process writing the parent keeps the child's readers out.
V create -s 8M base.vhdx > /dev/null && V snapshot base.vhdx child.vhdx > /dev/null ||
  not_ok "chain: create"
hold_reader base.vhdx
works "chain: the child opens while its parent is read elsewhere" V info child.vhdx
release
hold_writer base.vhdx
refused "chain: the child is refused while its parent is written" "base.vhdx: $WRITTEN" \
  V read child.vhdx
works "chain: -U reads the chain anyway" V read -U child.vhdx
release

# Convert onto an image in use: refused, and the image is left alone.
V create -s 8M src.vhdx > /dev/null
V create -s 8M busy.vhdx > /dev/null
cp busy.vhdx busy.before
hold_reader busy.vhdx
refused "convert --force onto an image being read is refused" "busy.vhdx: $READ" \
  V convert --force src.vhdx busy.vhdx
release
check "the image convert was refused is unchanged" cmp -s busy.vhdx busy.before

finish
