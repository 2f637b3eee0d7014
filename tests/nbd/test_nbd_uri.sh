#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool on NBD URIs: a VHDX (dynamic; a differencing child) served as
# plain bytes by nbdkit's file plugin reads through libnbd. info, check
# and map print what they print for the local file, but for the name and
# the "disk size" line (host space is not known over NBD); convert from
# the URI gives the same bytes as from the file; convert writes raw output
# over an export (nbdkit memory) only when asked to replace it, and
# refuses other formats there. A child's parent comes only from
# --parent-uri.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd

trap 'stop_plain; rm -rf "$WORK"' EXIT

MODEL="$WORK/model.raw"
$GEN raw "$MODEL" $((20 * 1024 * 1024)) 11
"$VHDTOOL" convert -O vhdx -t dynamic -b 1M "$MODEL" "$WORK/disk.vhdx" &&
"$VHDTOOL" create -p "$WORK/disk.vhdx" "$WORK/child.vhdx" &&
head -c 1048576 /dev/urandom | "$VHDTOOL" write --offset 2097152 "$WORK/child.vhdx" ||
  { not_ok "making the images"; finish; exit; }

serve_plain "$WORK/disk.sock" -r file "$WORK/disk.vhdx" &&
serve_plain "$WORK/child.sock" -r file "$WORK/child.vhdx" ||
  { not_ok "serving the containers"; finish; exit; }
URI="nbd+unix:///?socket=$WORK/disk.sock"
CHILD_URI="nbd+unix:///?socket=$WORK/child.sock"

if "$VHDTOOL" info "$URI" > /dev/null 2> "$WORK/err"; then :; else
  if grep -q "built without libnbd" "$WORK/err"; then
    skip_all "vhdtool was built without libnbd: $(cat "$WORK/err")"
  fi
fi

# same_output DESC ARGS...: vhdtool ARGS FILE and vhdtool ARGS URI print
# the same, once the name is made the same and "disk size" is dropped.
same_output() {
  local desc=$1; shift
  "$VHDTOOL" "$@" "$WORK/disk.vhdx" 2>&1 | sed "s|$WORK/disk.vhdx|NAME|g" |
    grep -v '^disk size:' > "$WORK/local.out"
  "$VHDTOOL" "$@" "$URI" 2>&1 | sed "s|$URI|NAME|g; s|nbd+unix://?socket=$WORK/disk.sock|NAME|g" |
    grep -v '^disk size:' > "$WORK/remote.out"
  if cmp -s "$WORK/local.out" "$WORK/remote.out"; then ok "$desc"
  else not_ok "$desc: $(diff "$WORK/local.out" "$WORK/remote.out" | head -5 | tr '\n' ' ')"; fi
}

same_output "info: same as on the file" info
same_output "check: same as on the file" check
same_output "map: same as on the file" map

"$VHDTOOL" convert -O raw "$URI" "$WORK/from-uri.raw" 2> "$WORK/err"
check "convert -O raw from the URI: succeeds" test $? -eq 0
same_file "convert -O raw from the URI = the model" "$WORK/from-uri.raw" "$MODEL"
"$VHDTOOL" convert -O vhd "$URI" "$WORK/from-uri.vhd" 2> "$WORK/err" &&
  "$VHDTOOL" read "$WORK/from-uri.vhd" > "$WORK/from-uri.vhd.raw"
check "convert -O vhd from the URI: succeeds" test $? -eq 0
same_file "convert -O vhd from the URI reads as the model" "$WORK/from-uri.vhd.raw" "$MODEL"
check_clean "convert -O vhd from the URI: output checks clean" "$WORK/from-uri.vhd"

# A child: refused without its parent's URI, read with it.
"$VHDTOOL" convert -O raw "$CHILD_URI" "$WORK/child.raw" 2> "$WORK/err"
check "child without --parent-uri: convert fails" test $? -ne 0
check "child without --parent-uri: one line naming the locator" \
  grep -q "parent locator .*disk.vhdx names no file on this host" "$WORK/err"
"$VHDTOOL" convert -O raw "$WORK/child.vhdx" "$WORK/child.local.raw" &&
"$VHDTOOL" convert --parent-uri "$URI" -O raw "$CHILD_URI" "$WORK/child.raw" 2> "$WORK/err"
check "child with --parent-uri: convert succeeds" test $? -eq 0
same_file "child with --parent-uri = the local chain" "$WORK/child.raw" "$WORK/child.local.raw"

# Output over an export: raw only, and only when asked to replace it.
serve_plain "$WORK/out.sock" memory 24M || not_ok "serving the output export"
OUT_URI="nbd+unix:///?socket=$WORK/out.sock"
"$VHDTOOL" convert -O raw "$WORK/disk.vhdx" "$OUT_URI" 2> "$WORK/err"
check "convert onto an export without --force: refused" test $? -ne 0
"$VHDTOOL" convert -O vhdx --force "$WORK/disk.vhdx" "$OUT_URI" 2> "$WORK/err"
check "convert -O vhdx onto an export: refused" test $? -ne 0
check "convert -O vhdx onto an export: says only raw" grep -q "only raw images" "$WORK/err"
"$VHDTOOL" convert -O raw --force "$WORK/disk.vhdx" "$OUT_URI" 2> "$WORK/err"
check "convert -O raw --force onto an export: succeeds" test $? -eq 0
nbdcopy "$OUT_URI" - | head -c $((20 * 1024 * 1024)) > "$WORK/exported.raw"
same_file "the export holds the disk" "$WORK/exported.raw" "$MODEL"

finish
