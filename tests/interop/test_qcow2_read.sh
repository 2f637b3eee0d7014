#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# qcow2 as a source (issue 17): images qemu-img makes (versions 2 and 3,
# compressed at several cluster sizes, backing chains, zero clusters) read
# as qemu reads them, through convert to raw, VHD and VHDX (oracle:
# qemu-img compare against the qcow2 itself), map agrees with qemu-img map
# as sets of bytes, and damaged images give one error line, never a crash.
. "$(dirname "$0")/common.sh"
need_vhdtool
need_cmd qemu-img qemu-io
QFMT=qcow2
. "$(dirname "$0")/source_common.sh"
SIZE=$((8 * 1024 * 1024 + 3584))   # not a whole number of clusters
cd "$WORK" || exit 2
$GEN raw src.raw "$SIZE" 17



# --- Plain and compressed images, both versions, several cluster sizes ----
qemu-img convert -O qcow2 -o compat=0.10 src.raw v2.qcow2
qemu-img convert -O qcow2 -o compat=1.1 src.raw v3.qcow2
qemu-img convert -c -O qcow2 -o compat=0.10 src.raw v2c.qcow2
qemu-img convert -c -O qcow2 src.raw v3c.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=4k src.raw c4k.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=512 src.raw c512.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=2M src.raw c2m.qcow2
for i in v2 v3 v2c v3c c4k c512 c2m; do
  same "$i" "$i.qcow2"
  map_agrees "$i" "$i.qcow2" "$i.qcow2"
  allocated_agrees "$i" "$i.qcow2"
done
"$VHDTOOL" info v3c.qcow2 > info.txt 2>&1
check "info names the format" grep -q '^file format: qcow2$' info.txt
rm -f f.raw
"$VHDTOOL" convert -f qcow2 v2.qcow2 f.raw > /dev/null 2>&1
check "-f qcow2 is a format name" cmp -s f.raw src.raw
FORMATS="vhd vhdx" same "v3c, fixed" v3c.qcow2 -t fixed
rm -f az.vhd
if "$VHDTOOL" convert --profile azure v3c.qcow2 az.vhd 2> err &&
   qemu-img compare -q -f qcow2 -F vpc v3c.qcow2 az.vhd 2>> err; then
  ok "v3c: --profile azure output equals qemu's reading (qemu reads past the end as zeros)"
else
  not_ok "v3c: --profile azure: $(cat err)"
fi

# --- Backing chains with zero clusters -----------------------------------
qemu-img create -q -f qcow2 -b v3c.qcow2 -F qcow2 top3.qcow2
qemu-io -c 'write -P 7 1M 64k' -c 'write -z 3M 2M' -c 'write -z 0 64k' -c 'write -P 9 8M 3584' \
  top3.qcow2 > /dev/null
qemu-img create -q -f qcow2 -o compat=0.10 -b v2.qcow2 -F qcow2 top2.qcow2
qemu-io -c 'write -P 5 100k 8k' -c 'write -z 2M 1M' top2.qcow2 > /dev/null
qemu-img create -q -f qcow2 -b top3.qcow2 -F qcow2 top3b.qcow2 4M   # shorter than its base
qemu-io -c 'write -P 3 0 4k' top3b.qcow2 > /dev/null
qemu-img create -q -f qcow2 -b top3b.qcow2 -F qcow2 top3c.qcow2 16M  # longer than its base
for i in top3 top2 top3b top3c; do same "$i" "$i.qcow2"; done
map_agrees "top3 (zero clusters over compressed)" top3.qcow2 top3.qcow2 v3c.qcow2
map_agrees "top2 (version 2 over version 2)" top2.qcow2 top2.qcow2 v2.qcow2
allocated_agrees top3 top3.qcow2
"$VHDTOOL" info top3.qcow2 > info.txt 2>&1
check "a qcow2 with a backing file is differencing" grep -q '^disk type: differencing$' info.txt

# A raw backing file is taken only with leave, as for VHD.
qemu-img create -q -f qcow2 -b src.raw -F raw overraw.qcow2
qemu-io -c 'write -P 1 4k 4k' overraw.qcow2 > /dev/null
same "qcow2 over raw (--raw-parent)" overraw.qcow2 --raw-parent
if "$VHDTOOL" convert -O raw overraw.qcow2 noleave.raw > /dev/null 2>&1; then
  not_ok "a raw backing file is refused without --raw-parent"
else
  ok "a raw backing file is refused without --raw-parent"
fi

# A VHD overlay over a qcow2 (how a KVM disk is booted or attached without
# changing it): writes go to the overlay, the rest reads through.
rm -f ov.vhd
"$VHDTOOL" snapshot -f vhd v3c.qcow2 ov.vhd 2> err || not_ok "snapshot over qcow2: $(cat err)"
printf 'overlay' | "$VHDTOOL" write --offset 4096 ov.vhd
cp src.raw ov.model
printf 'overlay' | dd of=ov.model bs=1 seek=4096 conv=notrunc status=none
"$VHDTOOL" read ov.vhd > ov.out
check "a VHD overlay over a qcow2 reads its writes over the qcow2" cmp -s ov.out ov.model

refused "writing is refused" v3.qcow2 "read-only format" \
  sh -c "printf x | '$VHDTOOL' write --offset 0 v3.qcow2"

bad v3c.qcow2 version4 "qcow2" 4 '\0\0\0\4'
bad v3c.qcow2 clusterbits "cluster_bits" 20 '\0\0\0\77'
bad v3c.qcow2 encrypted "encrypted" 32 '\0\0\0\1'
bad v3c.qcow2 datafile "external data file" 79 '\4'
bad v3c.qcow2 ctype "compression_type" 104 '\1'
cp ctype.qcow2 zstd.qcow2
patch zstd.qcow2 79 '\10'
refused "zstd" zstd.qcow2 "zstd" "$VHDTOOL" convert -O raw zstd.qcow2 zstd.raw
bad v3c.qcow2 extl2 "extended L2" 79 '\20'
bad v3c.qcow2 unknownbit "unknown bits" 72 '\1'
bad v3c.qcow2 l1past "l1_table_offset" 40 '\0\0\1\0\0\0\0\0'
bad v3c.qcow2 l1size "l1_size" 36 '\0\0\0\0'
bad v3c.qcow2 backing "backing_file_size" 8 '\0\0\0\0\0\0\2\0\0\0\20\0'
# Damage the first L1 entry and the first compressed L2 entry, found
# through the header as qemu wrote it.
l1=$($PYTHON -c 'import sys; d=open(sys.argv[1],"rb").read(); print(int.from_bytes(d[40:48],"big"))' v3c.qcow2)
bad v3c.qcow2 l1reserved "reserved bits" "$l1" '\1'
bad v3c.qcow2 l2past "L2 table" "$l1" '\0\0\1\0\0\0\0\0'
l2=$($PYTHON -c 'import sys; d=open(sys.argv[1],"rb").read(); o=int.from_bytes(d[40:48],"big"); print(int.from_bytes(d[o:o+8],"big") & 0x00fffffffffffe00)' v3c.qcow2)
bad v3c.qcow2 cpast "past the end" "$l2" '\100\0\1\0\0\0\0\0'
# A compressed stream of garbage: its first cluster's bytes overwritten.
cp v3c.qcow2 garbage.qcow2
c0=$($PYTHON -c 'import sys; d=open(sys.argv[1],"rb").read(); e=int.from_bytes(d[int(sys.argv[2]):int(sys.argv[2])+8],"big"); print(e & ((1<<54)-1))' v3c.qcow2 "$l2")
head -c 64 /dev/urandom | dd of=garbage.qcow2 bs=1 seek="$c0" conv=notrunc status=none
refused "garbage in a compressed cluster" garbage.qcow2 "inflate" \
  "$VHDTOOL" convert -O raw garbage.qcow2 garbage.raw
# check: qemu's images are clean; a data cluster that two guest clusters
# share is a finding (exit 2), as is a bad L2 entry, and the rest is still
# checked.
checked_clean v2.qcow2 v3.qcow2 v3c.qcow2 c512.qcow2 top3.qcow2 top2.qcow2
$PYTHON -c '
import sys
d = bytearray(open(sys.argv[1], "rb").read())
l1 = int.from_bytes(d[40:48], "big")
l2 = int.from_bytes(d[l1:l1 + 8], "big") & 0x00fffffffffffe00
data = [i for i in range(512) if int.from_bytes(d[l2 + 8 * i:l2 + 8 * i + 8], "big") & 0x00fffffffffffe00]
d[l2 + 8 * data[1]:l2 + 8 * data[1] + 8] = d[l2 + 8 * data[0]:l2 + 8 * data[0] + 8]
d[l2 + 8 * data[2] + 7] |= 2      # a reserved bit
open(sys.argv[2], "wb").write(d)' v3.qcow2 shared.qcow2
check_finds "check finds a shared data cluster and a bad L2 entry" shared.qcow2 \
  "shares its cluster" "reserved bits"
# Truncated after the header: the tables lie past the end.
head -c 4096 v3c.qcow2 > short.qcow2
refused "truncated" short.qcow2 "past the end" "$VHDTOOL" convert -O raw short.qcow2 short.raw
# A loop of backing files: a over b over a.
qemu-img create -q -f qcow2 loop-a.qcow2 1M
qemu-img create -q -f qcow2 -b loop-a.qcow2 -F qcow2 loop-b.qcow2
qemu-img rebase -q -u -b loop-b.qcow2 -F qcow2 loop-a.qcow2
refused "a backing loop" loop-b.qcow2 "loop" "$VHDTOOL" convert -O raw loop-b.qcow2 loop.raw
finish
