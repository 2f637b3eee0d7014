#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# VDI as a source (issue 17): dynamic and static images qemu-img makes, a
# sparse one and one whose block map holds a ZERO and a FREE entry read as
# qemu reads them, through convert to raw, VHD and VHDX (oracle: qemu-img
# compare against the VDI), map agrees with qemu-img map as sets of bytes,
# and damaged headers and maps give one error line, never a crash.
. "$(dirname "$0")/common.sh"
need_vhdtool
need_cmd qemu-img qemu-io
QFMT=vdi
. "$(dirname "$0")/source_common.sh"
SIZE=$((8 * 1024 * 1024 + 3584))   # not a whole number of blocks
cd "$WORK" || exit 2
$GEN raw src.raw "$SIZE" 23

qemu-img convert -O vdi src.raw dyn.vdi
qemu-img convert -O vdi -o static=on src.raw fix.vdi
qemu-img create -q -f vdi sparse.vdi 16M
qemu-io -c 'write -P 9 3M 100k' -c 'write -P 8 15M 1M' sparse.vdi > /dev/null
# Block 1 marked ZERO and block 2 FREE by hand (qemu reads both as zeros).
cp dyn.vdi marks.vdi
map=$(le32 dyn.vdi 340)
patch marks.vdi $((map + 4)) '\376\377\377\377\377\377\377\377'
for i in dyn fix sparse marks; do
  same "$i" "$i.vdi"
  map_agrees "$i" "$i.vdi" "$i.vdi"
done
"$VHDTOOL" info fix.vdi > info.txt 2>&1
check "info names the format" grep -q '^file format: vdi$' info.txt
check "a static image is fixed" grep -q '^disk type: fixed$' info.txt
rm -f f.raw
"$VHDTOOL" convert -f vdi dyn.vdi f.raw > /dev/null 2>&1
check "-f vdi is a format name" cmp -s f.raw src.raw

refused "writing is refused" dyn.vdi "read-only format" \
  sh -c "printf x | '$VHDTOOL' write --offset 0 dyn.vdi"
bad dyn.vdi version0 "version" 70 '\0'
bad dyn.vdi diff "differencing" 76 '\4'
bad dyn.vdi type9 "imageType" 76 '\11'
bad dyn.vdi extra "cbBlockExtra" 380 '\0\2'
bad dyn.vdi block3 "cbBlock" 376 '\3'
bad dyn.vdi cblocks "cBlocks" 384 '\1'
bad dyn.vdi disk "cbDisk" 368 '\1'
bad dyn.vdi mappast "block map" 340 '\0\0\0\1'
bad dyn.vdi datapast "offData" 344 '\0\0\0\1'
bad dyn.vdi entrypast "past the end" "$map" '\0\0\1\0'
checked_clean dyn.vdi fix.vdi sparse.vdi marks.vdi
cp dyn.vdi shared.vdi
patch shared.vdi $((map + 8)) '\0\0\0\0'   # block 2 at block 0's place
check_finds "check finds a file block two entries share" shared.vdi "used by another entry"
head -c 2048 dyn.vdi > short.vdi
refused "truncated" short.vdi "past the end" "$VHDTOOL" convert -O raw short.vdi short.raw
finish
