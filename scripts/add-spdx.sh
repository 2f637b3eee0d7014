#!/bin/sh
# Puts "SPDX-License-Identifier: BSD-3-Clause" at the top of every source,
# build and script file git knows (after a #! line and a Python coding
# line), in each language's comment syntax. Files that have the line
# already are left alone, so it can run again after new files arrive.
#
#   scripts/add-spdx.sh           add the line where it is missing
#   scripts/add-spdx.sh --check   list the files without it; exit 1 if any
#
# Not touched: data, documentation (LICENSE covers them) and debian/
# (debian/copyright states the licence of every file).
set -eu
cd "$(dirname "$0")/.."
mode=${1:-add}
tag="SPDX-License-Identifier: BSD-3-Clause"

comment_for() {   # the line to add to file $1, or nothing
  case $1 in
    debian/*) ;;
    *.1.in) echo ".\\\" $tag" ;;
    *.c | *.h | *.h.in) echo "/* $tag */" ;;
    *.sh | *.py | *.bash | *.cmake | *CMakeLists.txt | *.in) echo "# $tag" ;;
    *) [ "$(head -c 2 "$1")" != "#!" ] || echo "# $tag" ;;   # scripts without a suffix
  esac
}

add_tag() {   # file line
  # A #! line and a Python coding line stay first; the tag follows them.
  keep=0
  head -n 1 "$1" | grep -q '^#!' && keep=1
  sed -n "$((keep + 1))p" "$1" | grep -q 'coding[:=]' && keep=$((keep + 1))
  tmp="$1.spdx.$$"
  { head -n "$keep" "$1"; printf '%s\n' "$2"; tail -n "+$((keep + 1))" "$1"; } > "$tmp"
  chmod --reference="$1" "$tmp"
  mv "$tmp" "$1"
}

without=$(git ls-files | while read -r f; do
  [ -f "$f" ] || continue
  line=$(comment_for "$f")
  [ -n "$line" ] || continue
  head -n 5 "$f" | grep -q "SPDX-License-Identifier" && continue
  [ "$mode" = --check ] || add_tag "$f" "$line"
  echo "$f"
done)
[ -n "$without" ] || exit 0
if [ "$mode" = --check ]; then
  echo "$without"
  echo "$(echo "$without" | wc -l) file(s) without an SPDX line (scripts/add-spdx.sh adds them)"
  exit 1
fi
echo "SPDX line added to $(echo "$without" | wc -l) file(s)"
