#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool measure against the file vhdtool convert then really makes, for
# VHD and VHDX, fixed and dynamic, several block sizes: exact for fixed and
# for the fully-allocated figure (a source with data in every block), exact
# for the current-data figure where the data is not zeros, an upper bound
# where it is (a non-sparse raw source). Raw output against qemu-img
# measure, the oracle (qemu-img 7.2 cannot measure vpc or vhdx).
. "$(dirname "$0")/common.sh"
need_cmd qemu-img
need_vhdtool

M=$((1024 * 1024))
$GEN raw "$WORK/sparse.raw" $((64 * M)) 11 || exit 1
# Data in every block, and a partial last block for every block size.
head -c $((10 * M + 4096)) /dev/urandom > "$WORK/full.raw"
# The sparse source's zeros written out: a raw file's block status then
# calls them data, so the current-data figure can only be an upper bound.
cp --sparse=never "$WORK/sparse.raw" "$WORK/dense.raw"

# measure ARGS...: sets REQ and FULL from --json.
measure() {
  REQ= FULL=
  "$VHDTOOL" measure --json "$@" > "$WORK/m.json" 2> "$WORK/err" || return 1
  REQ=$(json_get "$WORK/m.json" required)
  FULL=$(json_get "$WORK/m.json" fully-allocated)
}

# real SRC ARGS...: the size of the file vhdtool convert makes.
real() {
  local src=$1; shift
  rm -f "$WORK/out"
  "$VHDTOOL" convert "$@" "$src" "$WORK/out" 2> "$WORK/err" && stat -c %s "$WORK/out"
}

for fmt in vhd vhdx; do
  for opts in "-t fixed" "-t dynamic" "-t dynamic -b 1M" "-t dynamic -b 512K" \
              "-t dynamic -b 32M"; do
    [ "$fmt:$opts" = "vhd:-t dynamic -b 32M" ] && continue
    [ "$fmt:$opts" = "vhdx:-t dynamic -b 512K" ] && continue
    args=(-O "$fmt" $opts)
    for src in full sparse; do
      if ! measure "${args[@]}" "$WORK/$src.raw"; then
        not_ok "measure ${args[*]} $src: $(cat "$WORK/err")"; continue
      fi
      size=$(real "$WORK/$src.raw" "${args[@]}") || { not_ok "convert ${args[*]}: $(cat "$WORK/err")"; continue; }
      check "${args[*]} $src: required $REQ = the converted file $size" [ "$REQ" = "$size" ]
      if [ "$src" = full ] || [ "${opts#-t fixed}" != "$opts" ]; then
        check "${args[*]} $src: fully allocated $FULL = the converted file" [ "$FULL" = "$size" ]
      fi
    done
    # An upper bound, and the fully-allocated figure, for a dense source.
    measure "${args[@]}" "$WORK/dense.raw" && size=$(real "$WORK/dense.raw" "${args[@]}")
    check "${args[*]} dense: required $REQ >= the converted file $size" [ "$REQ" -ge "$size" ]
    check "${args[*]} dense: required <= fully allocated $FULL" [ "$REQ" -le "$FULL" ]
    # Without a source: an empty image.
    measure "${args[@]}" --size 100M
    "$VHDTOOL" create -f "$fmt" $opts -s 100M "$WORK/empty" 2> "$WORK/err"
    check "${args[*]} --size 100M: required $REQ = a created image" \
      [ "$REQ" = "$(stat -c %s "$WORK/empty")" ]
    rm -f "$WORK/empty"
  done
done

# The profiles: the same options convert takes.
for prof in azure virtualpc "hyperv -O vhdx"; do
  measure --profile $prof "$WORK/sparse.raw"
  size=$(real "$WORK/sparse.raw" --profile $prof -O "$( [ "$prof" = "hyperv -O vhdx" ] && echo vhdx || echo vhd)")
  check "--profile $prof: required $REQ = the converted file $size" [ "$REQ" = "$size" ]
done

# Raw: qemu-img measure's own text.
for src in sparse full; do
  want=$(qemu-img measure -O raw -f raw "$WORK/$src.raw" 2>&1)
  got=$("$VHDTOOL" measure -O raw "$WORK/$src.raw" 2>&1)
  check "-O raw $src: as qemu-img measure ($(echo $got))" [ "$got" = "$want" ]
done
qemu-img measure --output=json -O raw -f raw "$WORK/full.raw" > "$WORK/q.json"
"$VHDTOOL" measure --output=json -O raw "$WORK/full.raw" > "$WORK/v.json"
check "-O raw --output=json: qemu-img's keys and figures" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$WORK/q.json" "$WORK/v.json"
for qfmt in vpc vhdx; do
  if out=$(qemu-img measure -O "$qfmt" -f raw "$WORK/full.raw" 2>&1); then
    echo "# qemu-img measure -O $qfmt: $(echo $out) (vhdtool: see the checks above)"
  else
    echo "# qemu-img cannot measure $qfmt here: $out"
  fi
done

# JSON and human agree; --output=json is --json.
"$VHDTOOL" measure -O vhdx "$WORK/sparse.raw" > "$WORK/human"
measure -O vhdx "$WORK/sparse.raw"
check "human output: the JSON figures" \
  test "$(cat "$WORK/human")" = "$(printf 'required size: %s\nfully allocated size: %s' "$REQ" "$FULL")"
"$VHDTOOL" measure --output=json -O vhdx "$WORK/sparse.raw" > "$WORK/m2.json"
check "--output=json is --json" cmp -s "$WORK/m.json" "$WORK/m2.json"
# Bad requests: one line, status 1.
"$VHDTOOL" measure "$WORK/sparse.raw" 2> "$WORK/err"
check "no -O: status 1" [ $? = 1 ]
"$VHDTOOL" measure -O vhd 2> "$WORK/err"
check "neither SRC nor --size: status 1" [ $? = 1 ]
"$VHDTOOL" measure -O raw -t fixed --size 1M 2> "$WORK/err"
check "raw with -t: status 1" [ $? = 1 ]
"$VHDTOOL" measure -O vhd "$WORK/missing.vhd" 2> "$WORK/err"
check "a missing SRC: status 1, one line naming it" \
  sh -c "[ $? = 1 ] && [ \$(wc -l < '$WORK/err') = 1 ] && grep -q missing.vhd '$WORK/err'"

finish
