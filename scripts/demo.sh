#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The main job in a minute: build, create a dynamic VHD, write into it,
# convert it to VHDX and to raw, check it, and serve it over NBD.
set -eu
cd "$(dirname "$0")/.."
scripts/build.sh build >/dev/null
tool=build/tools/vhdtool
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== create a 1 GiB dynamic VHD"
$tool create -s 1G "$work/disk.vhd"
echo "== write 4 MiB of data at offset 100 MiB"
head -c 4M /dev/urandom > "$work/data.bin"
$tool write --offset 100M "$work/disk.vhd" < "$work/data.bin"
$tool info "$work/disk.vhd"
echo "== check"
$tool check "$work/disk.vhd"
echo "== convert to VHDX and to raw"
$tool convert "$work/disk.vhd" "$work/disk.vhdx" || echo "(VHDX output not available in this build)"
$tool convert -O raw "$work/disk.vhd" "$work/disk.raw"
ls -ls "$work"
echo "== the written bytes read back"
$tool read --offset 100M --length 4M "$work/disk.vhd" | cmp - "$work/data.bin" && echo identical
plugin=build/nbd-plugin/nbdkit-vhd-plugin.so
if [ -f "$plugin" ] && command -v nbdkit >/dev/null && command -v nbdinfo >/dev/null; then
  echo "== serve it over NBD and look at it with nbdinfo"
  nbdkit -U - "$plugin" file="$work/disk.vhd" --run 'nbdinfo "$uri"; nbdinfo --map "$uri"'
fi
