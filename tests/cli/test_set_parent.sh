#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vhdtool set-parent: a differencing image whose parent moved is repointed
# and reads as before, from any directory; a parent of another identity is
# refused unless --ignore-id-mismatch. VHD and VHDX.
#
# Oracles: the content read through the original chain before the move
# (vhdtool); an independent reader given the parent explicitly, so it does
# not depend on our locators (VHD: tests/interop/vhd_oracle.py; VHDX:
# libvhdi, at default block sizes, which it reads right); the file bytes of
# a refused child (unchanged).
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd cmp truncate
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
have_vhdi=false
[ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ] && have_vhdi=true

# oracle CHILD PARENT: the chain's virtual disk on stdout, read without
# libvhd. Returns 77 when no oracle exists for the format here.
oracle() {
  case $1 in
    *.vhd) "$PYTHON" "$TESTS_DIR/interop/vhd_oracle.py" "$1" "$2" ;;
    *) $have_vhdi || return 77; "$VHDI_READ" "$1" "$2" ;;
  esac
}
# same_as_oracle DESC CHILD PARENT EXPECTED
same_as_oracle() {
  local st
  oracle "$2" "$3" > oracle.out 2>/dev/null
  st=$?
  [ $st -eq 77 ] && return 0
  check "$1" sh -c "[ $st -eq 0 ] && cmp -s oracle.out '$4'"
}

head -c 3145728 /dev/urandom > base.data
head -c 1048576 /dev/urandom > child.data
head -c 65536 /dev/urandom > late.data

# A long directory name: the VHD locators outgrow their sectors, the VHDX
# locator item its place in the metadata region.
LONG=$(printf 'very-long-directory-name-%03d/' $(seq 1 9))

# run_format EXT [BLOCK_SIZE]
run_format() {
  local ext=$1 bsopt=() name
  [ -n "${2:-}" ] && bsopt=(-b "$2")
  mkdir -p "$ext/a" "$ext/b" "$ext/c/$LONG" && cd "$ext" || return
  V create -s 8M "${bsopt[@]}" a/base.$ext >/dev/null && V write a/base.$ext < ../base.data &&
  V create -p a/base.$ext "${bsopt[@]}" child.$ext >/dev/null &&
  V write --offset 2M child.$ext < ../child.data ||
    { not_ok "$ext: make the chain"; cd ..; return; }
  V read child.$ext > model.raw
  check "$ext: the chain reads before the move" [ -s model.raw ]
  same_as_oracle "$ext: the independent reader agrees before the move" child.$ext a/base.$ext model.raw

  mv a/base.$ext b/moved.$ext
  V read child.$ext > /dev/null 2>err
  check "$ext: child does not open once its parent moved" [ $? -eq 1 ]
  check "$ext: the error names the child and the parent lookup" grep -q "child.$ext: parent" err

  out=$(V set-parent child.$ext b/moved.$ext)
  check "$ext: set-parent succeeds" [ $? -eq 0 ]
  check "$ext: set-parent says what it did" sh -c "printf '%s' '$out' | grep -q 'parent set to b/moved.$ext'"
  V check child.$ext >/dev/null
  check "$ext: check is clean after set-parent" [ $? -eq 0 ]
  check "$ext: check finds the moved parent" \
    sh -c "\"$VHDTOOL\" check child.$ext | grep -q 'parent ./b/moved.$ext found and matches'"
  check "$ext: child reads as before" sh -c "\"$VHDTOOL\" read child.$ext | cmp -s - model.raw"
  check "$ext: child reads as before from another working directory" \
    sh -c "cd / && \"$VHDTOOL\" read \"$PWD/child.$ext\" | cmp -s - \"$PWD/model.raw\""
  check "$ext: info shows the new relative locator" \
    sh -c "\"$VHDTOOL\" info child.$ext | grep -q 'b.moved.$ext'"
  # The whole directory moves: the relative locator still finds the parent.
  mkdir -p ../moved-$ext && cp child.$ext ../moved-$ext/ && mkdir -p ../moved-$ext/b &&
    cp b/moved.$ext ../moved-$ext/b/
  check "$ext: child and parent moved together still read as before" \
    sh -c "\"$VHDTOOL\" read ../moved-$ext/child.$ext | cmp -s - model.raw"

  # A long path: locator space must grow.
  mv b/moved.$ext "c/$LONG/p.$ext"
  V set-parent child.$ext "c/$LONG/p.$ext" >/dev/null
  check "$ext: set-parent to a long path succeeds" [ $? -eq 0 ]
  V check child.$ext >/dev/null
  check "$ext: check is clean after the locators grew" [ $? -eq 0 ]
  check "$ext: child reads as before through the long path" \
    sh -c "\"$VHDTOOL\" read child.$ext | cmp -s - model.raw"
  # New blocks must not overwrite the new locators.
  V write --offset 6M child.$ext < ../late.data
  cp model.raw model2.raw
  dd if=../late.data of=model2.raw bs=1M seek=6 conv=notrunc 2>/dev/null
  V check child.$ext >/dev/null
  check "$ext: check is clean after a write that allocates" [ $? -eq 0 ]
  check "$ext: the write and the old data read back" \
    sh -c "\"$VHDTOOL\" read child.$ext | cmp -s - model2.raw"
  same_as_oracle "$ext: the independent reader agrees after the write" child.$ext "c/$LONG/p.$ext" model2.raw
  mv "c/$LONG/p.$ext" a/base.$ext
  V set-parent child.$ext a/base.$ext >/dev/null
  check "$ext: set-parent back to a short path succeeds" [ $? -eq 0 ]
  check "$ext: still clean and equal to the model" \
    sh -c "\"$VHDTOOL\" check child.$ext >/dev/null && \"$VHDTOOL\" read child.$ext | cmp -s - model2.raw"

  # Another image of the same size: another identity.
  V create -s 8M "${bsopt[@]}" other.$ext >/dev/null
  V write --offset 1M other.$ext < ../late.data
  cp child.$ext child.before
  V set-parent child.$ext other.$ext >/dev/null 2>err
  check "$ext: a parent of another identity is refused (exit 1)" [ $? -eq 1 ]
  check "$ext: the refusal names the identity field" grep -Eq "parent_unique_id|parent_linkage" err
  check "$ext: the refusal suggests --ignore-id-mismatch" grep -q -- "--ignore-id-mismatch" err
  check "$ext: the refused child is unchanged" cmp -s child.$ext child.before
  V set-parent --ignore-id-mismatch child.$ext other.$ext >/dev/null
  check "$ext: --ignore-id-mismatch accepts it" [ $? -eq 0 ]
  V check child.$ext >/dev/null
  check "$ext: the child now opens over the other parent (identity stored)" [ $? -eq 0 ]
  V read child.$ext > now.raw
  same_as_oracle "$ext: content is the child's data over the other parent" child.$ext other.$ext now.raw
  V set-parent child.$ext child.$ext >/dev/null 2>err
  check "$ext: a child cannot be its own parent" grep -q "loop" err
  V set-parent a/base.$ext other.$ext >/dev/null 2>err
  check "$ext: a base image is refused" grep -q "not a differencing image" err
  cd ..
}

run_format vhd 512K
run_format vhdx

# Parent written after the child was made: its VHDX data write GUID changed.
mkdir -p w && cd w || exit 1
V create -s 4M -b 1M p.vhdx >/dev/null && V create -p p.vhdx c.vhdx >/dev/null &&
  V write --offset 1M p.vhdx < ../late.data
V set-parent c.vhdx p.vhdx >/dev/null 2>err
check "vhdx: a parent changed since the child was made is refused" [ $? -eq 1 ]
check "vhdx: the refusal names parent_linkage" grep -q parent_linkage err
cd ..

# Images made by Windows whose parents are not available: repointed at a
# new, empty parent of the right size (another identity, so only with
# --ignore-id-mismatch).
if [ -n "$SHARED_DIR" ] && [ -f "$SHARED_DIR/images/dfvfs-fat-differential.vhd.gz" ]; then
  mkdir -p real && cd real || exit 1
  gzip -dc "$SHARED_DIR/images/dfvfs-fat-differential.vhd.gz" > c.vhd
  V create -s 4194304 p.vhd >/dev/null
  V set-parent c.vhd p.vhd >/dev/null 2>&1
  check "diskpart VHD: a new parent is refused without --ignore-id-mismatch" [ $? -eq 1 ]
  V set-parent --ignore-id-mismatch c.vhd p.vhd >/dev/null
  check "diskpart VHD: set-parent --ignore-id-mismatch succeeds" [ $? -eq 0 ]
  check "diskpart VHD: check is clean with the new parent" \
    sh -c "\"$VHDTOOL\" check c.vhd | grep -q 'parent ./p.vhd found and matches'"
  V read c.vhd > now.raw
  same_as_oracle "diskpart VHD: the independent reader agrees over the new parent" c.vhd p.vhd now.raw
  cd ..
fi
if [ -n "$SHARED_DIR" ] && [ -f "$SHARED_DIR/images/dissect-differencing.avhdx.gz" ]; then
  mkdir -p real && cd real || exit 1
  gzip -dc "$SHARED_DIR/images/dissect-differencing.avhdx.gz" > c.avhdx
  V create -s 8G p.vhdx >/dev/null
  V set-parent --ignore-id-mismatch c.avhdx p.vhdx >/dev/null
  check "Hyper-V checkpoint: set-parent --ignore-id-mismatch succeeds" [ $? -eq 0 ]
  check "Hyper-V checkpoint: check is clean with the new parent" \
    sh -c "\"$VHDTOOL\" check c.avhdx | grep -q 'parent ./p.vhdx found and matches'"
  cd ..
fi

V set-parent --help | grep -q "set-parent \[--ignore-id-mismatch\] FILE NEW_PARENT"
check "set-parent --help shows the synopsis" [ $? -eq 0 ]
V help set-parent | grep -q -- "--ignore-id-mismatch"
check "help set-parent lists the option" [ $? -eq 0 ]
V set-parent only-one.vhd >/dev/null 2>err
check "set-parent with one argument is a usage error (exit 1)" [ $? -eq 1 ]
check "the usage error names the missing argument" grep -q "missing NEW_PARENT" err
V set-parent missing.vhd vhd/a/base.vhd >/dev/null 2>err
check "a missing child is an error naming it" grep -q "missing.vhd" err

finish
