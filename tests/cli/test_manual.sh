#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Usability: every subcommand answers --help (status 0, its own synopsis);
# the manual page vhdtool(1) built next to vhdtool renders without groff
# warnings and has a section for every subcommand and the exit statuses;
# the bash completion parses and completes subcommands, per-command options
# and option values; cmake --install puts both where man and bash look.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$(dirname "$VHDTOOL")/.." && pwd)
MAN=$(dirname "$VHDTOOL")/vhdtool.1

commands=$("$VHDTOOL" help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }')
check "vhdtool help lists commands (map and the issue-6 ones among them)" \
  sh -c "echo '$commands' | grep -qx map && echo '$commands' | grep -qx compact"
for cmd in $commands; do
  "$VHDTOOL" "$cmd" --help > "$WORK/help" 2> "$WORK/err"
  rc=$?
  if [ $rc -eq 0 ] && grep -q "^Usage: vhdtool $cmd" "$WORK/help" && [ ! -s "$WORK/err" ]; then
    ok "$cmd --help: status 0, its usage"
  else
    not_ok "$cmd --help: status $rc: $(head -c 200 "$WORK/err")"
  fi
done

# --- the README synopsis: each command's usage, on one line --------------------
for cmd in $commands; do
  "$VHDTOOL" help "$cmd" | awk '/^Usage:/ { on = 1 } on && /^$/ { exit } on' |
    sed -e 's/^Usage: *//' -e 's/^ *//' | tr '\n' ' ' | sed -e 's/ $//' -e 's/ \(vhdtool \)/\n\1/g' \
    > "$WORK/synopsis"
  echo >> "$WORK/synopsis"
  check "README has the synopsis of $cmd as the program prints it" \
    sh -c "while IFS= read -r l; do grep -qxF -- \"\$l\" '$SRC/README.md' || exit 1; done < '$WORK/synopsis'"
done

# --- the manual page -----------------------------------------------------------
if [ -f "$MAN" ]; then
  check "vhdtool.1: every subcommand has a section" \
    sh -c "for c in $(echo $commands); do grep -qx \".SS \$c\" '$MAN' || exit 1; done"
  check "vhdtool.1: EXIT STATUS covers 0 to 4" \
    sh -c "grep -q '^.SH EXIT STATUS' '$MAN' && for n in 0 1 2 3 4; do grep -qx \".B \$n\" '$MAN' || exit 1; done"
  if command -v groff > /dev/null; then
    groff -man -ww -z "$MAN" > "$WORK/groff" 2>&1
    check "vhdtool.1: groff renders it without warnings" test ! -s "$WORK/groff"
  fi
  if command -v man > /dev/null; then
    MANWIDTH=80 man -l "$MAN" > "$WORK/man.txt" 2> /dev/null
    check "man -l shows the map section" grep -q 'vhdtool map \[--json' "$WORK/man.txt"
  fi
else
  not_ok "vhdtool.1 was not built next to vhdtool ($MAN)"
fi

# --- bash completion -------------------------------------------------------------
COMP=$SRC/completions/vhdtool.bash
check "completion: bash -n" bash -n "$COMP"
# complete WORDS...: what the completion offers for the last word.
complete_words() {
  bash -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    _vhdtool
    printf "%s\n" "${COMPREPLY[@]}"' _ "$COMP" "$@"
}
out=$(complete_words "$VHDTOOL" "")
check "completion: all subcommands offered" sh -c "for c in $(echo $commands); do echo '$out' | grep -qx \"\$c\" || exit 1; done"
out=$(complete_words "$VHDTOOL" "m")
check "completion: 'm' -> map, measure, merge" test "$(printf '%s\n' $out | sort | tr '\n' ' ')" = "map measure merge "
out=$(complete_words "$VHDTOOL" check --p)
check "completion: check --p -> --profile ($out)" sh -c "echo '$out' | grep -qx -- --profile"
out=$(complete_words "$VHDTOOL" map --)
check "completion: map options (--json, --output, --start-offset)" \
  sh -c "echo '$out' | grep -qx -- --json && echo '$out' | grep -qx -- --output && echo '$out' | grep -qx -- --start-offset"
out=$(complete_words "$VHDTOOL" convert --profile "")
check "completion: --profile values" test "$(echo $out)" = "azure hyperv virtualpc"
out=$(complete_words "$VHDTOOL" create --physical-sector-size "")
check "completion: --physical-sector-size values" test "$(echo $out)" = "512 4096"
out=$(complete_words "$VHDTOOL" attach --mode "")
check "completion: attach --mode values" test "$(echo $out)" = "ro cow rw"
for cmd in info check compact; do
  out=$(complete_words "$VHDTOOL" $cmd --output "")
  check "completion: $cmd --output values" test "$(echo $out)" = "human json"
done
out=$(complete_words "$VHDTOOL" create -f vhd)
check "completion: -f values" test "$(echo $out)" = "vhd vhdx"
touch "$WORK/disk-one.vhd"
out=$(complete_words "$VHDTOOL" info "$WORK/disk-o")
check "completion: file names" test "$out" = "$WORK/disk-one.vhd"
out=$(complete_words "$VHDTOOL" compare -F "")
check "completion: compare -F values" test "$(echo $out)" = "vhd vhdx raw"
out=$(complete_words "$VHDTOOL" compare -s "$WORK/disk-o")
check "completion: compare -s takes no value" test "$out" = "$WORK/disk-one.vhd"
out=$(complete_words "$VHDTOOL" measure --output "")
check "completion: measure --output values" test "$(echo $out)" = "human json"

# --- installation ------------------------------------------------------------------
if command -v cmake > /dev/null && [ -f "$BUILD/CMakeCache.txt" ]; then
  cmake --install "$BUILD" --prefix "$WORK/inst" > "$WORK/install.log" 2>&1
  check "cmake --install: man1/vhdtool.1" test -f "$WORK/inst/share/man/man1/vhdtool.1"
  check "cmake --install: bash-completion/completions/vhdtool" \
    test -f "$WORK/inst/share/bash-completion/completions/vhdtool"
fi

finish
