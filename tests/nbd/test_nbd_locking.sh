#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The plugin and other users of the same image (issue 11.5, 11.2):
#  - while nbdkit serves an image, vhdtool and qemu-io cannot write it;
#    once a client has written through the plugin (which then holds the
#    image read-write) nobody else may read it either, except with -U;
#  - nbdkit does not start on an image another process writes, and a
#    writable connection is refused while another process reads the image;
#  - a differencing image whose parent is a FIFO stops nbdkit at start-up
#    instead of hanging it.
# Oracle: qemu-img/qemu-io, which see the plugin's locks as their own kind.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/../cli/lock_common.sh"
need_nbd
need_cmd mkfifo timeout
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
SOCK=$WORK/nbd.sock
C() { $NBDCLIENT op --socket "$SOCK" "$@"; }
trap 'stop_server; exec 7>&- 8<&-; rm -rf "$WORK"' EXIT

for ext in vhdx vhd; do
  case $ext in vhd) qf=vpc ;; *) qf=$ext ;; esac
  img=$WORK/disk.$ext
  V create -s 8M "$img" > /dev/null || { not_ok "$ext: create"; continue; }

  serve "$SOCK" "$WORK/pid" -- "$img" 2> nbdkit.err || { not_ok "$ext: nbdkit did not start: $(cat nbdkit.err)"; continue; }
  # Served, no client has written yet: the plugin reads the image.
  works "$ext: vhdtool info while nbdkit serves (two readers)" V info "$img"
  refused "$ext: vhdtool write while nbdkit serves is refused" "$img: $READ" V write "$img" < /dev/null
  qemu_refuses "$ext: qemu-io cannot write while nbdkit serves (oracle)" \
    qemu-io -f $qf -c 'write 0 512' "$img"

  # A client writes: the plugin now holds the image read-write.
  C write --offset 0 --length 4096 --byte 7 > /dev/null 2> client.err ||
    not_ok "$ext: a write through the plugin: $(cat client.err)"
  refused "$ext: vhdtool write while the plugin writes is refused" "$img: $WRITTEN" V write "$img" < /dev/null
  refused "$ext: vhdtool info while the plugin writes is refused" \
    "$img: $WRITTEN (use -U/--force-share" V info "$img"
  works "$ext: vhdtool info -U while the plugin writes" V info -U "$img"
  qemu_refuses "$ext: qemu-io cannot write while the plugin writes (oracle)" \
    qemu-io -f $qf -c 'write 0 512' "$img"
  qemu_refuses "$ext: qemu-img info refuses it while the plugin writes (oracle)" \
    qemu-img info -f $qf "$img"
  qemu_works "$ext: qemu-img info -U while the plugin writes (oracle)" qemu-img info -U -f $qf "$img"
  stop_server
  works "$ext: after nbdkit exits, vhdtool write works" V write "$img" < /dev/null

  # Another process writes: nbdkit does not start, naming the file.
  rm -f in.fifo && mkfifo in.fifo
  V write "$img" < in.fifo 2> holder.err & holder=$!
  exec 7> in.fifo
  sleep 0.3
  timeout 60 "${NBDKIT[@]}" -U - "$NBD_PLUGIN" "$img" --run 'touch served' > /dev/null 2> nbdkit.err
  check "$ext: nbdkit does not serve an image vhdtool writes" [ ! -e served ]
  check "$ext: nbdkit's error names the file and the writer" grep -q "$img: $WRITTEN" nbdkit.err
  exec 7>&-; wait $holder

  # Another process reads: nbdkit serves, but no client may write.
  rm -f out.fifo && mkfifo out.fifo
  V read "$img" > out.fifo 2> holder.err & holder=$!
  exec 8< out.fifo
  sleep 0.3
  # (without the pipe's read end, or the reader would never see it close)
  serve "$SOCK" "$WORK/pid" -- "$img" 2> nbdkit.err 8<&- ||
    not_ok "$ext: nbdkit did not start beside a reader"
  if C write --offset 0 --length 512 --byte 9 > /dev/null 2> client.err; then
    not_ok "$ext: a client wrote while vhdtool reads the image"
  else
    ok "$ext: a writing client is refused while vhdtool reads the image"
  fi
  check "$ext: nbdkit's error names the file and the reader" grep -q "$img: $READ" nbdkit.err
  exec 8<&-; wait $holder
  works "$ext: once the reader is gone, a client writes" C write --offset 0 --length 512 --byte 9
  stop_server
  rm -f served
done

# A FIFO parent: nbdkit stops at start-up instead of waiting forever.
V create -s 8M base.vhdx > /dev/null && V snapshot base.vhdx child.vhdx > /dev/null
rm -f base.vhdx && mkfifo base.vhdx
timeout 60 "${NBDKIT[@]}" -U - "$NBD_PLUGIN" "$WORK/child.vhdx" --run 'touch served' > /dev/null 2> nbdkit.err
st=$?
check "a FIFO parent stops nbdkit (status $st, not a timeout)" [ $st -ne 124 -a ! -e served ]
check "nbdkit's error names the FIFO" grep -q "base.vhdx: is a FIFO (named pipe), not a disk image file" nbdkit.err

finish
