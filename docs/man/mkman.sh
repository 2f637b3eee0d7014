#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# mkman.sh VHDTOOL TEMPLATE VERSION OUTPUT
# The manual page: TEMPLATE with @COMMANDS@ replaced by one subsection per
# subcommand, taken from the program's own `vhdtool help COMMAND`, so the
# page and the program cannot disagree about options.
set -eu
tool=$1 template=$2 version=$3 output=$4

# roff for preformatted text: backslashes escaped, lines that start with
# a dot or a quote protected from being read as requests.
escape() {
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

commands() {
  # The command list of `vhdtool help`: the indented lines after "Commands:".
  "$tool" help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }'
}

section() {
  for cmd in $(commands); do
    printf '.SS %s\n' "$cmd"
    printf '.nf\n'
    "$tool" help "$cmd" | escape
    printf '.fi\n'
  done
}

exec > "$output.tmp"
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d 2>/dev/null || date -u +%Y-%m-%d)
while IFS= read -r line; do
  case $line in
    @COMMANDS@) section ;;
    *) printf '%s\n' "$line" | sed -e "s/@DATE@/$date/" -e "s/@VERSION@/$version/" ;;
  esac
done < "$template"
mv "$output.tmp" "$output"
