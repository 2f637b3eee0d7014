#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# VMDK sparse extents as a source (issue 17): monolithicSparse and
# streamOptimized images qemu-img makes, zeroed grains and a child over a
# parent read as qemu reads them, through convert to raw, VHD and VHDX
# (oracle: qemu-img compare against the VMDK), map agrees with qemu-img map
# as sets of bytes, and damaged images give one error line, never a crash.
. "$(dirname "$0")/common.sh"
need_vhdtool
need_cmd qemu-img qemu-io
QFMT=vmdk
. "$(dirname "$0")/source_common.sh"
SIZE=$((8 * 1024 * 1024 + 3584))   # not a whole number of grains
cd "$WORK" || exit 2
$GEN raw src.raw "$SIZE" 19


qemu-img convert -O vmdk -o subformat=monolithicSparse src.raw sparse.vmdk
qemu-img convert -O vmdk -o subformat=streamOptimized src.raw stream.vmdk
qemu-img convert -O vmdk -o zeroed_grain=on src.raw zg.vmdk
qemu-io -c 'write -z 64k 1M' zg.vmdk > /dev/null
qemu-img create -q -f vmdk -b sparse.vmdk -F vmdk child.vmdk
qemu-io -c 'write -P 3 2M 64k' -c 'write -P 4 8M 3584' child.vmdk > /dev/null
# VMware's stream form: the header says the grain directory is at the end
# (GD_AT_END), and a footer marker, the footer (the header with the real
# gdOffset) and an end-of-stream marker end the file.
$PYTHON -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d += bytes(-len(d) % 512)
footer = bytearray(d[:512])
d[56:64] = b"\xff" * 8
marker = (1).to_bytes(8, "little") + bytes(4) + (3).to_bytes(4, "little") + bytes(496)
open(sys.argv[2], "wb").write(bytes(d) + marker + bytes(footer) + bytes(512))' stream.vmdk atend.vmdk
for i in sparse stream atend zg child; do same "$i" "$i.vmdk"; done
map_agrees sparse sparse.vmdk sparse.vmdk
map_agrees stream stream.vmdk stream.vmdk
map_agrees "child over sparse" child.vmdk child.vmdk sparse.vmdk
for i in sparse stream child; do allocated_agrees "$i" "$i.vmdk"; done
"$VHDTOOL" info stream.vmdk > info.txt 2>&1
check "info names the format" grep -q '^file format: vmdk$' info.txt
"$VHDTOOL" info child.vmdk > info.txt 2>&1
check "a child is differencing" grep -q '^disk type: differencing$' info.txt
rm -f f.raw
"$VHDTOOL" convert -f vmdk sparse.vmdk f.raw > /dev/null 2>&1
check "-f vmdk is a format name" cmp -s f.raw src.raw

# --- Descriptor files: flat and split disks, and hand-written ones --------
qemu-img convert -O vmdk -o subformat=monolithicFlat src.raw flat.vmdk
qemu-img convert -O vmdk -o subformat=twoGbMaxExtentSparse src.raw splits.vmdk
qemu-img convert -O vmdk -o subformat=twoGbMaxExtentFlat src.raw splitf.vmdk
for i in flat splits splitf; do same "$i (descriptor)" "$i.vmdk"; done
"$VHDTOOL" info flat.vmdk > info.txt 2>&1
check "a flat VMDK is fixed" grep -q '^disk type: fixed$' info.txt
# Extents of every kind qemu 7.2 mis-reads (it drops RDONLY and ZERO
# lines): the model is the pieces concatenated by hand.
head -c 1048576 src.raw > a.raw
tail -c 1048576 src.raw > b.raw
{ head -c 4096 /dev/zero; cat b.raw; } > b-off.raw
qemu-img convert -O vmdk a.raw a.vmdk
{ cat a.raw; cat b.raw; head -c 524288 /dev/zero; cat a.raw; } > mixed.model
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="custom"\n\n# Extent description\nRW 2048 SPARSE "a.vmdk"\r\nRDONLY 2048 FLAT "b-off.raw" 8\nRW 1024 ZERO\nRW 2048 FLAT "a.raw" 0\n\nddb.adapterType = "ide"\n' > mixed.vmdk
"$VHDTOOL" read mixed.vmdk > mixed.out 2> err
check "hand-written descriptor: SPARSE, RDONLY FLAT at an offset, ZERO, FLAT" \
  cmp -s mixed.out mixed.model

refused "writing is refused" sparse.vmdk "read-only format" \
  sh -c "printf x | '$VHDTOOL' write --offset 0 sparse.vmdk"

bad sparse.vmdk version4 "version" 4 '\4'
bad sparse.vmdk grain3 "grainSize" 20 '\3'
bad sparse.vmdk gtes "numGTEsPerGT" 44 '\0\4'
bad sparse.vmdk newline "newline" 73 '\n \n\n'
bad sparse.vmdk gdpast "grain directory" 56 '\0\0\0\1'
bad stream.vmdk nomarkers "markers" 10 '\1'
gd=$(le32 sparse.vmdk 56)
bad sparse.vmdk gtpast "grain table" $((gd * 512)) '\377\377\377\0'
gt=$(le32 sparse.vmdk $((gd * 512)))
bad sparse.vmdk grainpast "past the end" $((gt * 512)) '\377\377\377\0'
sgd=$(le32 stream.vmdk 56)
sgt=$(le32 stream.vmdk $((sgd * 512)))
g0=$(le32 stream.vmdk $((sgt * 512)))
bad stream.vmdk lba "marker" $((g0 * 512)) '\7'
bad stream.vmdk csize "compressed size" $((g0 * 512 + 8)) '\377\377\377\0'
bad stream.vmdk garbage "inflate" $((g0 * 512 + 12)) 'garbage!'
# The child's parentCID no longer names its parent.
cp child.vmdk cidchild.vmdk
$PYTHON -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
i = d.index(b"\n", d.index(b"parentCID=")) - 1   # its last hex digit (qemu writes %x)
d[i] = ord("1") if d[i] == ord("0") else ord("0")
open(sys.argv[1], "wb").write(d)' cidchild.vmdk
refused "parent CID mismatch" cidchild.vmdk "parentCID" "$VHDTOOL" convert -O raw cidchild.vmdk cid.raw
size=$(stat -c %s atend.vmdk)
bad atend.vmdk noeos "footer" $((size - 512)) '\1'
bad atend.vmdk nofooter "footer" $((size - 1536)) '\2'
# check: qemu's images are clean; a grain two grain table entries share is
# a finding (exit 2).
checked_clean sparse.vmdk stream.vmdk atend.vmdk zg.vmdk child.vmdk splits.vmdk
cp sparse.vmdk shared.vmdk
$PYTHON -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
gd = int.from_bytes(d[56:64], "little") * 512
gt = int.from_bytes(d[gd:gd + 4], "little") * 512
d[gt + 4:gt + 8] = d[gt:gt + 4]
open(sys.argv[1], "wb").write(d)' shared.vmdk
check_finds "check finds a grain two entries share" shared.vmdk "overlaps another structure"
head -c 4096 sparse.vmdk > short.vmdk
refused "truncated" short.vmdk "past the end" "$VHDTOOL" convert -O raw short.vmdk short.raw
# A piece of a split disk is read only through its descriptor.
qemu-img convert -O vmdk -o subformat=twoGbMaxExtentSparse src.raw split.vmdk
refused "a split disk's piece" split-s001.vmdk "descriptor" \
  "$VHDTOOL" convert -O raw split-s001.vmdk piece.raw
# Extent names from a descriptor stay beside it.
for name in /etc/passwd ../x.raw sub/../../x.raw 'C:\\x.raw'; do
  printf 'version=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 8 FLAT "%s" 0\n' "$name" > esc.vmdk
  refused "extent name $name is refused" esc.vmdk "beside the descriptor" \
    "$VHDTOOL" convert -O raw esc.vmdk esc.raw
done
printf 'version=1\nCID=1\nparentCID=ffffffff\ncreateType="vmfsRawDeviceMap"\nRW 8 VMFSRDM "x.raw"\n' > rdm.vmdk
refused "a raw device map is refused" rdm.vmdk "not read" "$VHDTOOL" convert -O raw rdm.vmdk rdm.raw
printf 'version=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 4096 FLAT "a.raw" 0\n' > short-flat.vmdk
refused "a flat extent shorter than its line" short-flat.vmdk "shorter" \
  "$VHDTOOL" convert -O raw short-flat.vmdk sf.raw
finish
