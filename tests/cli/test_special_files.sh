#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Files that are not images (issue 11.2, 11.6): a FIFO parent used to hang
# info, check and read forever (the open of a FIFO waits for a writer);
# pipes and character devices as images or convert sources. Each is
# refused at once with one line naming the file, and nothing is created.
#
# Oracle: the kind of file, as test(1) sees it; "no hang" is timeout(1)
# not having to stop the command (its status 124).
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
need_cmd mkfifo timeout
cd "$WORK" || exit 1

V() { timeout 20 "$VHDTOOL" "$@"; }

# answers DESC WANT-STATUS PATTERN COMMAND...: the command ends by itself
# with WANT-STATUS, and PATTERN is in one line of its standard error.
answers() {
  local desc=$1 want=$2 pattern=$3 st; shift 3
  "$@" > cmd.out 2> cmd.err < /dev/null
  st=$?
  if [ $st -eq 124 ]; then
    not_ok "$desc: hung (stopped by timeout)"
  elif [ $st -eq "$want" ] && [ "$(grep -c -- "$pattern" cmd.err)" -eq 1 ]; then
    ok "$desc"
  else
    not_ok "$desc (exit $st, want $want: $(head -c 300 cmd.err))"
  fi
}

FIFO_LINE="is a FIFO (named pipe), not a disk image file"

for ext in vhd vhdx; do
  mkdir -p $ext && cd $ext || exit 1
  "$VHDTOOL" create -s 8M base.$ext > /dev/null && "$VHDTOOL" snapshot base.$ext child.$ext > /dev/null ||
    not_ok "$ext: create the chain"
  rm -f base.$ext && mkfifo base.$ext
  # info shows what it can of an image whose parent is missing (exit 0)
  # and warns; check cannot finish (its statuses are 1 or 2 by version of
  # the missing-parent rule); read needs the parent (1).
  answers "$ext: info with a FIFO parent" 0 "base.$ext: $FIFO_LINE" V info child.$ext
  V check child.$ext > cmd.err 2>&1 < /dev/null
  st=$?
  check "$ext: check with a FIFO parent ends (status $st), naming the FIFO" \
    sh -c "[ $st -eq 1 -o $st -eq 2 ] && grep -q 'base.$ext: $FIFO_LINE' cmd.err"
  answers "$ext: read with a FIFO parent" 1 "base.$ext: $FIFO_LINE" V read child.$ext
  answers "$ext: a FIFO as the image" 1 "^vhdtool: base.$ext: $FIFO_LINE" V info base.$ext
  cd ..
done

# Streams as convert sources: refused, and no output is left behind.
"$VHDTOOL" create -s 1M small.raw > /dev/null
cat small.raw | timeout 20 "$VHDTOOL" convert -O vhdx /dev/stdin piped.vhdx > /dev/null 2> cmd.err
st=$?
check "a pipe as convert source is refused (exit $st)" \
  sh -c "[ $st -eq 1 ] && [ \$(wc -l < cmd.err) -eq 1 ] && grep -q '/dev/stdin: $FIFO_LINE' cmd.err"
check "the refused pipe conversion created nothing" [ ! -e piped.vhdx ]
answers "a character device as convert source" 1 "/dev/null: is a character device, not a disk image file" \
  V convert -O vhdx /dev/null null.vhdx
check "the refused device conversion created nothing" [ ! -e null.vhdx ]

# A FIFO as a convert destination (with --force) is neither opened for
# writing forever nor removed.
mkfifo out.fifo
answers "a FIFO as convert destination" 1 "out.fifo: $FIFO_LINE" \
  V convert --force -O raw small.raw out.fifo
check "the FIFO destination is still there" [ -p out.fifo ]

finish
