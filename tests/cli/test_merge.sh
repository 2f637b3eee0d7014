#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool merge: chains of two and three images (VHD, VHDX, a VHD child
# over a VHDX parent) merged into the parent, into the base (--into), and
# flattened into a new image (--output); then merges killed with SIGKILL at
# random moments, again and again, each time checking that every image
# still opens and checks clean and that the child reads as before, and a
# rerun finishing the job.
#
# Oracles: a raw model written with dd alongside every vhdtool write (cmp),
# libvhdi (vhdi_read, which reads chains) for the child before the merge,
# qemu-img for the merged base where it reads the format (convert/compare
# with -f vpc or -f vhdx, and check for VHDX; qemu cannot check vpc).
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd cmp dd truncate sha256sum timeout
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
have_qemu=false
command -v qemu-img >/dev/null 2>&1 && have_qemu=true
have_vhdi=false
[ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ] && have_vhdi=true

SIZE=8M
# put IMG MODEL OFFSET_KIB LENGTH_KIB: random bytes into both.
put() {
  head -c "$(($4 * 1024))" /dev/urandom > chunk
  V write --offset "$(($3 * 1024))" "$1" < chunk &&
    dd if=chunk of="$2" bs=1024 seek="$3" conv=notrunc status=none
}

# build DIR EXT BLOCK N [CHILD_EXT]: DIR/base.EXT with data, then N-1
# differencing layers l1, l2... (CHILD_EXT: the format of those), each
# written in places of its own and over the layers below; DIR/model.raw
# is what the top reads.
build() {
  local d=$1 ext=$2 bs=$3 n=$4 cext=${5:-$2} i prev
  rm -rf "$d" && mkdir "$d" && truncate -s $SIZE "$d/model.raw"
  V create -s $SIZE -b "$bs" "$d/base.$ext" >/dev/null || return 1
  put "$d/base.$ext" "$d/model.raw" 0 3072 && put "$d/base.$ext" "$d/model.raw" 5000 2000 ||
    return 1
  prev=base.$ext
  for i in $(seq 1 $((n - 1))); do
    V snapshot "$d/$prev" "$d/l$i.$cext" || return 1
    put "$d/l$i.$cext" "$d/model.raw" $((i * 700)) 1500 &&
      put "$d/l$i.$cext" "$d/model.raw" $((3500 + i * 900)) 2000 &&
      put "$d/l$i.$cext" "$d/model.raw" 7000 $((300 * i)) || return 1
    prev=l$i.$cext
  done
}

# reads_model DESC IMG MODEL
reads_model() { same_read "$1" "$3" "$VHDTOOL" read "$2"; }

# clean DESC IMG: vhdtool check exits 0.
clean() {
  if V check "$2" > check.out 2>&1; then ok "$1"; else not_ok "$1: $(tr '\n' ' ' < check.out)"; fi
}

# qemu_agrees DESC FMT IMG MODEL: qemu reads IMG as MODEL (and checks it
# clean where it can check the format).
qemu_agrees() {
  $have_qemu || return 0
  local fmt=$2
  [ "$fmt" = vhd ] && fmt=vpc
  check "$1: qemu-img compare" qemu-img compare -q -f "$fmt" -F raw "$3" "$4"
  if [ "$fmt" = vhdx ]; then
    check "$1: qemu-img check" qemu-img check -q -f vhdx "$3"
  fi
}

# clean_or_leaked DESC IMG: vhdtool check finds no corruption (exit 0, or 3
# for leaked space only, see every_image_fine).
clean_or_leaked() {
  V check "$2" > check.out 2>&1
  local st=$?
  if [ $st -eq 0 ] || [ $st -eq 3 ]; then ok "$1"
  else not_ok "$1 (status $st): $(tr '\n' ' ' < check.out)"; fi
}

# --- merges that run to the end -------------------------------------------

# Three levels; the top merged into the middle (a three-level merge into
# the parent), which leaves a two-level chain to merge into the base; and a
# copy of the chain merged straight into the base (--into).
for combo in "vhd vhd 64K" "vhdx vhdx 1M" "vhdx vhd 1M"; do
  set -- $combo
  ext=$1 cext=$2 bs=$3
  name="$ext base, $cext children"
  build three "$ext" "$bs" 3 "$cext" || { not_ok "$name: build three levels"; continue; }
  cp -r three three-b
  reads_model "$name: the top reads as the model" three/l2.$cext three/model.raw
  if $have_vhdi && [ "$ext" = "$cext" ]; then
    same_read "$name: libvhdi reads the top as the model" three/model.raw \
      "$VHDI_READ" three/l2.$cext three/l1.$cext three/base.$ext
  fi
  # Into the parent: the base must not change.
  base_sum=$(sha256sum < three/base.$ext)
  V merge -p three/l2.$cext > merge.out 2> merge.err
  st=$?
  check "$name: three levels, merge into the parent (silent -p off a terminal)" \
    [ $st -eq 0 -a ! -s merge.err ]
  grep -q "removed three/l2.$cext\.\$" merge.out && ok "$name: the removal is reported" ||
    not_ok "$name: the removal is reported: $(cat merge.out)"
  check "$name: the base is untouched" [ "$(sha256sum < three/base.$ext)" = "$base_sum" ]
  check "$name: the middle image remains, the top is removed" \
    [ -e three/l1.$cext -a ! -e three/l2.$cext ]
  reads_model "$name: the middle reads as the top did" three/l1.$cext three/model.raw
  clean "$name: the middle checks clean" three/l1.$cext
  # Two levels now: into the parent, which is the base.
  if V merge three/l1.$cext > merge.out 2>&1; then ok "$name: two levels, merge into the parent"
  else not_ok "$name: two levels, merge into the parent: $(cat merge.out)"; fi
  check "$name: the child is removed" [ ! -e three/l1.$cext ]
  reads_model "$name: the parent reads as the child did" three/base.$ext three/model.raw
  clean "$name: the parent checks clean" three/base.$ext
  qemu_agrees "$name: merged parent" "$ext" three/base.$ext three/model.raw
  # Into the base, through the middle.
  if V merge three-b/l2.$cext --into three-b/base.$ext > merge.out 2>&1; then
    ok "$name: merge --into the base"
  else not_ok "$name: merge --into the base: $(cat merge.out)"; fi
  check "$name: top and middle are removed" [ ! -e three-b/l1.$cext -a ! -e three-b/l2.$cext ]
  reads_model "$name: the base reads as the top did" three-b/base.$ext three/model.raw
  clean "$name: the base checks clean" three-b/base.$ext
  qemu_agrees "$name: merged base" "$ext" three-b/base.$ext three/model.raw
  rm -rf three three-b
done

# --- --output: a flattened copy, nothing else changes ------------------------

build out vhdx 1M 3 || not_ok "build for --output"
sums=$(sha256sum out/*.vhdx)
if V merge out/l2.vhdx --output flat.vhdx 2> merge.err; then ok "--output"
else not_ok "--output: $(cat merge.err)"; fi
check "--output changes no image" [ "$(sha256sum out/*.vhdx)" = "$sums" ]
reads_model "--output reads as the child" flat.vhdx out/model.raw
V info flat.vhdx | grep -q "disk type: *dynamic" && ok "--output is a standalone image" ||
  not_ok "--output is a standalone image"
qemu_agrees "--output" vhdx flat.vhdx out/model.raw
V merge -f vhd out/l2.vhdx --output flat.vhd 2> merge.err && ok "--output -f vhd" ||
  not_ok "--output -f vhd: $(cat merge.err)"
reads_model "--output -f vhd reads as the child" flat.vhd out/model.raw
qemu_agrees "--output -f vhd" vhd flat.vhd out/model.raw

# --- refusals: one line, nothing changed ----------------------------------------

# refused DESC ARGS...: vhdtool merge fails with exactly one line on stderr.
refused() {
  local desc=$1; shift
  V merge "$@" > /dev/null 2> merge.err
  local st=$?
  if [ $st -ne 0 ] && [ "$(wc -l < merge.err)" -eq 1 ] && grep -q '^vhdtool' merge.err; then
    ok "$desc"
  else
    not_ok "$desc (status $st: $(cat merge.err))"
  fi
}
refused "a base image has nothing to merge" out/base.vhdx
refused "--into an image outside the chain" out/l2.vhdx --into flat.vhdx
refused "--into and --output together" out/l2.vhdx --into out/base.vhdx --output x.vhdx
refused "--output onto an existing file" out/l2.vhdx --output flat.vhdx
refused "--output onto a layer of the chain" out/l2.vhdx --output out/base.vhdx
refused "a missing child" nothing.vhd
refused "no arguments"
check "the refusals changed no image" [ "$(sha256sum out/*.vhdx)" = "$sums" ]
V merge --help | grep -q -- "--into ANCESTOR" && ok "merge --help" || not_ok "merge --help"

# --- killed merges --------------------------------------------------------------

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# every_image_fine DESC DIR CHILD MODEL: every image in DIR opens and checks
# without corruption; when CHILD is still there it reads as the model, and
# when it is gone the merge was complete, so the base must read as the
# model. Leaked space (check's exit status 3) is allowed: a block whose data
# was written but whose BAT entry was not yet is what a kill in the middle
# of an allocation leaves, by the drivers' write ordering; it is harmless
# and `check --repair` reclaims it. It is counted in LEAKED.
LEAKED=0
every_image_fine() {
  local desc=$1 d=$2 child=$3 model=$4 f st bad="" leaks=""
  for f in "$d"/*.vhd "$d"/*.vhdx; do
    [ -e "$f" ] || continue
    V check "$f" > check.out 2>&1
    st=$?
    if [ $st -eq 3 ]; then
      leaks="$leaks $(basename "$f")"
      LEAKED=$((LEAKED + 1))
    elif [ $st -ne 0 ]; then
      bad="$bad $(basename "$f") (status $st): $(tr '\n' ' ' < check.out)"
    fi
  done
  if [ -z "$bad" ]; then
    ok "$desc: every image opens and checks without corruption${leaks:+ (leaked space in$leaks)}"
  else
    not_ok "$desc:$bad"
  fi
  if [ -e "$d/$child" ]; then
    reads_model "$desc: the child reads as before" "$d/$child" "$model"
  else
    reads_model "$desc: merge complete, the base reads as the child did" "$d"/base.* "$model"
  fi
}

# killed EXT BLOCK ROUNDS: a three-level chain merged into its base, killed
# at a random moment of each round; a round that finds the merge complete
# starts again from a fresh copy of the chain.
killed() {
  local ext=$1 bs=$2 rounds=$3 i t ms left=0 SIZE=24M
  # More data on top than elsewhere, so the copy is most of a merge's time.
  build pristine "$ext" "$bs" 3 && put pristine/l2.$ext pristine/model.raw 4096 16384 ||
    { not_ok "$ext: build for the kill test"; return; }
  # How long an uninterrupted merge takes here (the faster of two), started
  # the way the killed ones are: timeout(1) starts its clock, then vhdtool,
  # so process start-up on a busy machine counts in both.
  t=1000000
  for i in 1 2; do
    rm -rf k && cp -r pristine k
    ms=$(now_ms)
    timeout 60 "$VHDTOOL" merge k/l2.$ext --into k/base.$ext > /dev/null ||
      not_ok "$ext: a timing merge"
    ms=$(($(now_ms) - ms))
    [ $ms -lt $t ] && t=$ms
  done
  echo "# $ext: an uninterrupted merge takes about $t ms"
  rm -rf k && cp -r pristine k
  for i in $(seq 1 "$rounds"); do
    if [ ! -e k/l2.$ext ]; then rm -rf k && cp -r pristine k; fi
    ms=$((1 + RANDOM % t))   # timeout 0 would mean no timeout
    # (the braces take the shell's "Killed" notice too)
    { timeout -s KILL "$((ms / 1000)).$(printf %03d $((ms % 1000)))" \
      "$VHDTOOL" merge k/l2.$ext --into k/base.$ext > /dev/null; } 2> /dev/null
    [ -e k/l2.$ext ] && left=$((left + 1))
    every_image_fine "$ext: killed after ${ms} ms (round $i)" k l2.$ext pristine/model.raw
  done
  # At least some kills must have landed inside a merge, or this proved nothing.
  check "$ext: $left of $rounds kills interrupted a merge" [ "$left" -gt 0 ]
  if [ -e k/l2.$ext ]; then
    V merge k/l2.$ext --into k/base.$ext > merge.out 2>&1 && ok "$ext: the rerun finishes" ||
      not_ok "$ext: the rerun finishes: $(cat merge.out)"
  fi
  check "$ext: only the base is left" [ ! -e k/l2.$ext -a ! -e k/l1.$ext ]
  reads_model "$ext: after the rerun the base reads as the child did" k/base.$ext pristine/model.raw
  clean_or_leaked "$ext: after the rerun the base checks without corruption" k/base.$ext
  # Space a kill leaked is given back by check --repair, after which the
  # base is fully clean and still reads as the child did.
  V check --repair k/base.$ext > check.out 2>&1 && ok "$ext: check --repair leaves the base clean" ||
    not_ok "$ext: check --repair leaves the base clean (status $?): $(tr '\n' ' ' < check.out)"
  reads_model "$ext: after the repair the base still reads as the child did" k/base.$ext pristine/model.raw
  qemu_agrees "$ext: after the rerun" "$ext" k/base.$ext pristine/model.raw
  rm -rf k pristine
}

# 10 kills per format; 5 in the sanitizer pass (VHD_TEST_SMALL=1), which
# runs the same code under ASan and pays its start-up per vhdtool run.
KILLS=10
[ "${VHD_TEST_SMALL:-0}" = 1 ] && KILLS=5
killed vhd 64K $KILLS
killed vhdx 1M $KILLS
echo "# $LEAKED image checks after a kill found leaked space (allowed)"

# --- kills inside the removal -------------------------------------------------
# A merge of a three-level chain into its base unlinks the child, then the
# intermediate, then its record of the removal. kill_at_unlink.so (built
# with the tests, preloaded) kills it with SIGKILL right after its Nth
# unlink, so every point of that window is hit, not only those a random
# kill happens to find. After each: every image left checks without
# corruption, nothing but the images and the record is there, the same
# merge command run again succeeds (unless the kill came after the last
# unlink: then the merge was complete), and then only the base is left,
# reading as the child did, clean after check --repair.
unlink_window() {
  local ext=$1 bs=$2 n st left
  build pristine "$ext" "$bs" 3 || { not_ok "$ext: build for the removal kills"; return; }
  for n in 1 2 3; do
    rm -rf k && cp -r pristine k
    { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
      KILL_AT_UNLINK=$n LD_PRELOAD="$KILL_AT_UNLINK_SO" \
      "$VHDTOOL" merge k/l2.$ext --into k/base.$ext > /dev/null 2>&1; } 2> /dev/null
    st=$?
    check "$ext: merge killed right after unlink $n (status $st)" [ "$st" -eq 137 ]
    left=$(cd k && ls | grep -v model.raw | tr '\n' ' ')
    every_image_fine "$ext: killed after unlink $n (left: $left)" k l2.$ext pristine/model.raw
    if [ ! -e k/l2.$ext ] && [ ! -e k/l2.$ext.merging ]; then
      ok "$ext: after unlink $n the merge was complete (no child, no record: nothing to rerun)"
    elif V merge k/l2.$ext --into k/base.$ext > merge.out 2>&1; then
      ok "$ext: after unlink $n the same merge command finishes"
    else
      not_ok "$ext: after unlink $n the same merge command finishes: $(cat merge.out)"
    fi
    left=$(cd k && ls | grep -v model.raw | tr '\n' ' ')
    check "$ext: after unlink $n and the rerun only the base is left (left: $left)" \
      [ "$left" = "base.$ext " ]
    reads_model "$ext: after unlink $n and the rerun the base reads as the child did" \
      k/base.$ext pristine/model.raw
    V check --repair k/base.$ext > check.out 2>&1 &&
      ok "$ext: after unlink $n check --repair leaves the base clean" ||
      not_ok "$ext: after unlink $n check --repair (status $?): $(tr '\n' ' ' < check.out)"
  done
  rm -rf k pristine
}
# A record that is not a merge's, beside a missing child: refused with one
# line naming the record, and nothing removed.
bad_record() {
  local desc=$1 st
  V merge rec/gone.vhd > merge.out 2>&1
  st=$?
  if [ $st -ne 0 ] && [ "$(wc -l < merge.out)" -eq 1 ] && grep -q "$2" merge.out &&
     [ -e rec/base.vhd ] && [ -e rec/other.vhd ]; then
    ok "a merge record $desc is refused, nothing removed"
  else
    not_ok "a merge record $desc is refused, nothing removed (status $st): $(cat merge.out)"
  fi
}
rm -rf rec && mkdir rec
V create -s 1M rec/base.vhd > /dev/null && V create -s 1M rec/other.vhd > /dev/null
printf 'hello\n' > rec/gone.vhd.merging
bad_record "that is not one" "gone.vhd.merging: line 1"
printf 'libvhd merge record 1\nancestor\t%s\nremove\trelative.vhd\n' "$PWD/rec/base.vhd" \
  > rec/gone.vhd.merging
bad_record "with a relative path" "gone.vhd.merging: line 3"
printf 'libvhd merge record 1\nancestor\t%s\nrenew\t0\nremove\t%s\n' "$PWD/rec/base.vhd" \
  "$PWD/rec/other.vhd" > rec/gone.vhd.merging
bad_record "naming an image not above the ancestor" "other.vhd, whose chain does not hold"
rm -rf rec

if [ -n "${KILL_AT_UNLINK_SO:-}" ] && [ -e "$KILL_AT_UNLINK_SO" ]; then
  SIZE=8M
  unlink_window vhd 64K
  unlink_window vhdx 1M
else
  echo "# kill_at_unlink.so not built: the kills inside the removal are not run"
fi

finish
