#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Seed corpus for the fuzz harnesses: small valid images of every kind,
# made by vhdtool (and by qemu-img when it is installed), each in plain form
# when small and always in the harness's sparse form (fuzz/sparsify.py).
#
#   fuzz/make-corpus.sh VHDTOOL OUTDIR
set -u
vhdtool=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
mkdir -p "$2"
out=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

made=0
# add NAME: put $work/NAME into the corpus (plain if <= 256 KiB, and sparse).
add() {
  local f="$work/$1"
  [ -s "$f" ] || return 0
  if [ "$(stat -c %s "$f")" -le 262144 ]; then
    cp "$f" "$out/$1"
  fi
  "$PYTHON" "$here/sparsify.py" "$f" "$out/$1.sparse"
  made=$((made + 1))
}

# try DESC COMMAND...: a seed that cannot be made is reported, not fatal.
try() {
  local desc=$1; shift
  "$@" 2> "$work/err" || { echo "make-corpus: skipped $desc: $(head -c 200 "$work/err")" >&2; return 1; }
}

data() { printf 'libvhd fuzz seed %s' "$1"; }

cd "$work"
try "vhd fixed" "$vhdtool" create -f vhd -t fixed -s 64K vfix.vhd &&
  data a | "$vhdtool" write --offset 1000 vfix.vhd && add vfix.vhd
for bs in 4096 65536 2M; do
  try "vhd dynamic -b $bs" "$vhdtool" create -f vhd -t dynamic -s 1M -b $bs vdyn-$bs.vhd &&
    data b | "$vhdtool" write --offset 0 vdyn-$bs.vhd &&
    data c | "$vhdtool" write --offset 300001 vdyn-$bs.vhd && add vdyn-$bs.vhd
done
if try "vhd differencing" "$vhdtool" create -f vhd -t differencing -p vdyn-4096.vhd vdiff.vhd; then
  data d | "$vhdtool" write --offset 5000 vdiff.vhd && add vdiff.vhd
fi
try "vhdx dynamic" "$vhdtool" create -f vhdx -t dynamic -s 4M -b 1M xdyn.vhdx &&
  data e | "$vhdtool" write --offset 0 xdyn.vhdx &&
  data f | "$vhdtool" write --offset 3000001 xdyn.vhdx && add xdyn.vhdx
try "vhdx fixed" "$vhdtool" create -f vhdx -t fixed -s 2M -b 1M xfix.vhdx && add xfix.vhdx
if try "vhdx differencing" "$vhdtool" create -f vhdx -t differencing -p xdyn.vhdx xdiff.vhdx; then
  data g | "$vhdtool" write --offset 700 xdiff.vhdx && add xdiff.vhdx
fi

if command -v qemu-img > /dev/null 2>&1; then
  head -c 100000 /dev/urandom > r.raw && truncate -s 3M r.raw
  try "qemu vpc" qemu-img convert -f raw -O vpc r.raw qvpc.vhd && add qvpc.vhd
  try "qemu vpc fixed" qemu-img convert -f raw -O vpc -o subformat=fixed,force_size=on r.raw qfix.vhd && add qfix.vhd
  try "qemu vhdx" qemu-img convert -f raw -O vhdx -o block_size=1M r.raw qdyn.vhdx && add qdyn.vhdx
  # qcow2 (read only): plain v2, compressed v3 at small clusters (many L2
  # entries and deflate streams in a small seed), and zero clusters.
  head -c 60000 /dev/urandom | base64 > t.raw && truncate -s 512K t.raw
  try "qcow2 v2" qemu-img convert -f raw -O qcow2 -o compat=0.10 t.raw q2.qcow2 && add q2.qcow2
  try "qcow2 v3 compressed" qemu-img convert -c -f raw -O qcow2 -o cluster_size=4k t.raw \
    q3c.qcow2 && add q3c.qcow2
  if try "qcow2 zero clusters" qemu-img convert -f raw -O qcow2 t.raw q3z.qcow2 &&
     command -v qemu-io > /dev/null 2>&1; then
    qemu-io -c 'write -z 64k 128k' q3z.qcow2 > /dev/null && add q3z.qcow2
  fi
  try "vmdk sparse" qemu-img convert -f raw -O vmdk t.raw ms.vmdk && add ms.vmdk
  try "vmdk stream" qemu-img convert -f raw -O vmdk -o subformat=streamOptimized t.raw \
    so.vmdk && add so.vmdk
  try "vdi dynamic" qemu-img convert -f raw -O vdi t.raw dyn.vdi && add dyn.vdi
fi
echo "make-corpus: $made seed images in $out"
[ "$made" -gt 0 ]
