#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool snapshot: a differencing image over VHD and VHDX parents (and a
# VHD child over a VHDX parent), which must read as the parent, take
# writes without touching it, and open from another working directory,
# after the pair moved together to another directory, and after the child
# moved alone (the relative and the absolute locator).
#
# Oracles: a raw model written with dd (cmp), libvhdi (vhdi_read, given
# the chain) for same-format chains, vhdtool check.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd cmp dd truncate sha256sum
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
have_vhdi=false
[ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ] && have_vhdi=true

put() {
  head -c "$(($4 * 1024))" /dev/urandom > chunk
  V write --offset "$(($3 * 1024))" "$1" < chunk &&
    dd if=chunk of="$2" bs=1024 seek="$3" conv=notrunc status=none
}
reads_model() { same_read "$1" "$3" "$VHDTOOL" read "$2"; }
clean() {
  if V check "$2" > check.out 2>&1; then ok "$1"; else not_ok "$1: $(tr '\n' ' ' < check.out)"; fi
}

for combo in "vhd vhd 64K" "vhdx vhdx 1M" "vhdx vhd 1M"; do
  set -- $combo
  pext=$1 cext=$2 bs=$3
  name="$cext over $pext"
  rm -rf a b c && mkdir -p a/sub && truncate -s 8M parent.raw
  V create -s 8M -b "$bs" a/parent.$pext > /dev/null && put a/parent.$pext parent.raw 0 3000 ||
    { not_ok "$name: make the parent"; continue; }
  fopt=()
  [ "$pext" != "$cext" ] && fopt=(-f "$cext")
  if V snapshot "${fopt[@]}" a/parent.$pext a/sub/child.$cext 2> snap.err; then
    ok "$name: snapshot"
  else
    not_ok "$name: snapshot: $(cat snap.err)"; continue
  fi
  V info a/sub/child.$cext > info.out
  grep -q "file format: *$cext" info.out && grep -q "disk type: *differencing" info.out &&
    ok "$name: a differencing $cext image" || not_ok "$name: info says $(tr '\n' ' ' < info.out)"
  reads_model "$name: the new child reads as the parent" a/sub/child.$cext parent.raw
  clean "$name: the new child checks clean" a/sub/child.$cext

  cp parent.raw model.raw
  psum=$(sha256sum < a/parent.$pext)
  put a/sub/child.$cext model.raw 2000 2500 && put a/sub/child.$cext model.raw 7000 100 ||
    not_ok "$name: write into the child"
  check "$name: writes leave the parent untouched" [ "$(sha256sum < a/parent.$pext)" = "$psum" ]
  reads_model "$name: the child reads as the model" a/sub/child.$cext model.raw
  if $have_vhdi && [ "$pext" = "$cext" ]; then
    same_read "$name: libvhdi reads the child as the model" model.raw \
      "$VHDI_READ" a/sub/child.$cext a/parent.$pext
  fi

  # From another working directory, by absolute and by relative path.
  (cd / && "$VHDTOOL" read "$WORK/a/sub/child.$cext") > from-root.raw 2> snap.err
  check "$name: opens from another directory (absolute path)" cmp -s from-root.raw model.raw
  (cd a/sub && "$VHDTOOL" read child.$cext) > from-sub.raw 2> snap.err
  check "$name: opens from its own directory" cmp -s from-sub.raw model.raw
  # The pair moved together: the relative locator.
  mv a b
  reads_model "$name: the pair moved together still opens" b/sub/child.$cext model.raw
  V info b/sub/child.$cext | grep -q "parent: .*b/sub/\.\./parent\.$pext\|parent: \.\./parent\.$pext" &&
    ok "$name: found through the relative locator" ||
    not_ok "$name: found through the relative locator: $(V info b/sub/child.$cext | grep parent)"
  # The child moved alone: the absolute locator (the parent is back where
  # the child was made).
  mv b a && mkdir c && mv a/sub/child.$cext c/
  reads_model "$name: the child moved alone still opens" c/child.$cext model.raw
  clean "$name: the moved child checks clean" c/child.$cext
done

# --- refusals ------------------------------------------------------------------

refused() {
  local desc=$1; shift
  V snapshot "$@" > /dev/null 2> snap.err
  local st=$?
  if [ $st -ne 0 ] && [ "$(wc -l < snap.err)" -eq 1 ] && grep -q '^vhdtool' snap.err; then
    ok "$desc"
  else
    not_ok "$desc (status $st: $(cat snap.err))"
  fi
}
V create -s 4M -b 64K p.vhd > /dev/null
V snapshot p.vhd exists.vhd 2> /dev/null
sum=$(sha256sum < exists.vhd)
refused "an existing CHILD is not replaced" p.vhd exists.vhd
check "the existing CHILD is untouched" [ "$(sha256sum < exists.vhd)" = "$sum" ]
refused "a VHDX child of a VHD parent is refused by name" -f vhdx p.vhd x.vhdx
grep -q "VHDX parent" snap.err && ok "the refusal says why" || not_ok "the refusal says why: $(cat snap.err)"
check "nothing is left of the refused child" [ ! -e x.vhdx ]
refused "a missing parent" nothing.vhd y.vhd
refused "raw is not a snapshot format" -f raw p.vhd z.raw
refused "missing CHILD" p.vhd
refused "no arguments"
V snapshot --help | grep -q "PARENT CHILD" && ok "snapshot --help" || not_ok "snapshot --help"

finish
