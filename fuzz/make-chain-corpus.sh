#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Seeds for fuzz_chain: small differencing chains made by vhdtool, packed
# with fuzz/pack-chain.py under each policy the harness knows (beside the
# top, raw parents allowed, confined to /f/a), including parents outside
# the top's directory and a zero parent id over a raw file.
#
#   fuzz/make-chain-corpus.sh VHDTOOL OUTDIR
set -u
vhdtool=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
mkdir -p "$2"
out=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
pack() { "$PYTHON" "$here/pack-chain.py" "$@"; }
mkdir -p a/sub b
"$vhdtool" create -f vhd -s 1M -b 64K a/base.vhd > /dev/null &&
  printf 'parent data' | "$vhdtool" write --offset 70000 a/base.vhd &&
  "$vhdtool" create -f vhd -t differencing -p a/base.vhd a/sub/top.vhd > /dev/null &&
  printf 'child data' | "$vhdtool" write --offset 100 a/sub/top.vhd || exit 1
"$vhdtool" create -f vhdx -s 2M -b 1M b/base.vhdx > /dev/null &&
  "$vhdtool" create -f vhdx -t differencing -p b/base.vhdx a/top.vhdx > /dev/null || exit 1
head -c 4096 /dev/urandom > a/base.raw
"$vhdtool" create -f vhd -t differencing -p a/base.raw a/raw-top.vhd > /dev/null || exit 1
"$PYTHON" "$here/../tests/cli/vhd_locators.py" a/raw-top.vhd --zero-id 'W2ru=.\base.raw' \
  'W2ku=C:\etc\passwd' 'MacX=file:///f/b/secret.raw' || exit 1
n=0
for flags in 0 1 4 5; do
  pack "$out/vhd-$flags" $flags a/sub/top.vhd=a/sub/top.vhd a/base.vhd=a/base.vhd && n=$((n + 1))
  pack "$out/vhdx-$flags" $flags a/top.vhdx=a/top.vhdx b/base.vhdx=b/base.vhdx && n=$((n + 1))
done
for flags in 0 2 3 6; do
  pack "$out/raw-$flags" $flags a/raw-top.vhd=a/raw-top.vhd a/base.raw=a/base.raw \
    b/secret.raw=a/base.raw && n=$((n + 1))
done
echo "make-chain-corpus: $n seeds in $out"
