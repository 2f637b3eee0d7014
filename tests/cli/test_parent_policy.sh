#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Where parents come from (issue 11, "host file disclosure through parent
# locators"): a differencing image's locators are text its author chose,
# so nothing of a host file may come out through them unless the user
# said so. Cases:
#  - a VHD with a zero parent id whose locators name a secret file outside
#    its directory (relative ..\ climb, Windows absolute, MacX URL) and
#    /etc/passwd: no command shows a byte of either without --raw-parent;
#  - a VHD and a VHDX whose real parent (matching id) lies outside the
#    image's directory: followed by default, refused with --parent-dir,
#    with the same message whether or not the outside file exists;
#  - a symbolic link inside the allowed directory that leads out;
#  - a Windows absolute locator is looked for beside the child only.
# Oracles: the secret's bytes (grep -F on everything printed or written),
# cmp against the parent's own bytes, vhdtool check's exit status.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../interop/common.sh"
need_vhdtool
need_cmd cmp python3 od grep
cd "$WORK" || exit 1

V() { "$VHDTOOL" "$@"; }
LOC="$PYTHON $HERE/vhd_locators.py"

mkdir -p imgs/sub outside
# The secret: random bytes with a marker no image holds.
{ printf 'SECRET-MARKER-%s\n' "$$"; head -c 65536 /dev/urandom; } > outside/secret.raw
truncate -s 1M outside/secret.raw
marker="SECRET-MARKER-$$"
passwd_line=$(head -1 /etc/passwd)

# leaks FILE...: true when any file holds the secret marker or /etc/passwd's
# first line.
leaks() { grep -qaF -e "$marker" -e "$passwd_line" "$@" 2>/dev/null; }

# one_line DESC FILE: FILE (stderr) is exactly one line naming the image.
one_line() {
  local n; n=$(wc -l < "$2")
  if [ "$n" -eq 1 ] && grep -q "hostile.vhd\|child" "$2"; then ok "$1"; else
    not_ok "$1: $n lines: $(head -c 300 "$2")"; fi
}

# --- A zero parent id with locators naming host files ---------------------
head -c 1M /dev/urandom > imgs/base.raw
V create -f vhd -t differencing -p imgs/base.raw imgs/hostile.vhd > /dev/null ||
  not_ok "make the hostile child"
$LOC imgs/hostile.vhd --zero-id 'W2ru=..\outside\secret.raw' \
  'W2ku=C:\etc\passwd' 'MacX=file:///etc/passwd' || not_ok "rewrite its locators"
rm imgs/base.raw     # only the named files remain to be found

for cmd in "read" "convert -O raw" "map" "info" "check"; do
  set -- $cmd
  out=out.$1
  rm -f "$out" conv.raw
  if [ "$1" = convert ]; then
    V $cmd imgs/hostile.vhd conv.raw > "$out" 2> err; st=$?
  else
    V $cmd imgs/hostile.vhd > "$out" 2> err; st=$?
  fi
  if leaks "$out" err conv.raw; then
    not_ok "zero parent id: $cmd shows bytes of a host file"
  else
    ok "zero parent id: $cmd shows no byte of a host file"
  fi
  case $1 in
    read|convert|map)
      check "zero parent id: $cmd fails" [ "$st" -eq 1 ]
      one_line "zero parent id: $cmd says why on one line" err ;;
    check)
      # Exit 1 (could not check: no parent may be opened) or 2, never 0.
      check "zero parent id: check does not call it clean (exit $st)" [ "$st" -eq 1 -o "$st" -eq 2 ] ;;
  esac
done
check "zero parent id: convert left no output" [ ! -e conv.raw ]

# With --raw-parent the user trusts the locators: the secret does come out
# through the relative locator (the oracle of the leak check above)...
V read --raw-parent imgs/hostile.vhd > out.trusted 2> err
check "with --raw-parent the relative locator is followed (the leak check can see a leak)" \
  leaks out.trusted
# ... but not when parents are confined to the image's directory.
V read --raw-parent --parent-dir imgs imgs/hostile.vhd > out.confined 2> err; st=$?
check "--raw-parent --parent-dir: refused" [ "$st" -eq 1 ]
check "--raw-parent --parent-dir: no byte of a host file" bash -c "! grep -qaF -e '$marker' -e '$passwd_line' out.confined err"
grep -q "outside the allowed directories" err &&
  ok "--parent-dir: the message says the locator leads outside" ||
  not_ok "--parent-dir: message: $(cat err)"

# --- A real parent outside the image's directory --------------------------
for fmt in vhd vhdx; do
  rm -f outside/base.$fmt imgs/child.$fmt
  V create -f $fmt -s 4M outside/base.$fmt > /dev/null
  head -c 4M /dev/urandom > base.content.$fmt
  V write outside/base.$fmt < base.content.$fmt
  V create -f $fmt -t differencing -p outside/base.$fmt imgs/child.$fmt > /dev/null
  same_read "$fmt: a parent outside is followed by default" base.content.$fmt V read imgs/child.$fmt
  V read --parent-dir imgs imgs/child.$fmt > out 2> err.exists; st=$?
  check "$fmt: --parent-dir refuses the parent outside (exit $st)" [ "$st" -eq 1 ]
  check "$fmt: and shows none of its bytes" [ ! -s out ]
  one_line "$fmt: one line naming the child" err.exists
  V check --parent-dir imgs imgs/child.$fmt > /dev/null 2>&1; st=$?
  check "$fmt: check --parent-dir does not call it clean (exit $st)" [ "$st" -eq 1 -o "$st" -eq 2 ]
  same_read "$fmt: --parent-dir with the parent's directory allows it" base.content.$fmt \
    V read --parent-dir outside imgs/child.$fmt
  # The message must not tell whether the outside file exists.
  mv outside/base.$fmt outside/moved.$fmt
  V read --parent-dir imgs imgs/child.$fmt > /dev/null 2> err.missing
  check "$fmt: the refusal reads the same whether the outside file exists or not" \
    cmp -s err.exists err.missing
  mv outside/moved.$fmt outside/base.$fmt
done

# --- A symbolic link in the allowed directory that leads out ----------------
rm -f imgs/link.vhd imgs/linked.vhd
V create -f vhd -t differencing -p outside/base.vhd imgs/linked.vhd > /dev/null
ln -s ../outside/base.vhd imgs/link.vhd
$LOC imgs/linked.vhd 'W2ru=link.vhd' || not_ok "point the child at the link"
same_read "symlink: followed by default" base.content.vhd V read imgs/linked.vhd
V read --parent-dir imgs imgs/linked.vhd > out 2> err; st=$?
check "symlink: --parent-dir refuses a link that leads out (exit $st)" [ "$st" -eq 1 ]
grep -q "outside the allowed directories" err && ok "symlink: the message says so" ||
  not_ok "symlink: message: $(cat err)"

# --- A Windows absolute locator is looked for beside the child ------------
cp outside/base.vhd imgs/sub/base.vhd
rm -f imgs/sub/win.vhd
V create -f vhd -t differencing -p imgs/sub/base.vhd imgs/sub/win.vhd > /dev/null
$LOC imgs/sub/win.vhd "W2ku=C:\\$(pwd | tr / '\\')\\outside\\base.vhd" ||
  not_ok "give the child only a Windows absolute locator"
same_read "Windows absolute locator: the file of that name beside the child is the parent" \
  base.content.vhd V read --parent-dir imgs imgs/sub/win.vhd
rm imgs/sub/base.vhd
V read imgs/sub/win.vhd > /dev/null 2> err; st=$?
check "Windows absolute locator: not mapped onto the host path (exit $st)" [ "$st" -eq 1 ]
grep -q "outside/base.vhd (W2ku" err &&
  not_ok "Windows absolute locator: the host path was tried: $(cat err)" ||
  ok "Windows absolute locator: the host path was not tried"

finish
