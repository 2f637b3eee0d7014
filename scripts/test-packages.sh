#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Builds the Debian packages from a clean tree (git archive of HEAD),
# checks them with lintian (no errors), installs them with apt, runs a
# smoke test against the installed system only (not the build tree), and
# purges them again together with whatever apt pulled in for them, so the
# machine is left as it was. Run as root (CI does) or with sudo.
#
#   scripts/test-packages.sh            build, lint, install, test, purge
#   KEEP=1 scripts/test-packages.sh     ... and leave the .deb files in
#                                       build-packages/
#
# The project's test suite is not run by the package build
# (DEB_BUILD_OPTIONS=nocheck): scripts/test.sh runs it anyway.
set -eu
cd "$(dirname "$0")/.."
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
start=$(date +%s)
elapsed() { echo "($(($(date +%s) - start)) s)"; }
packages="libvhd1 libvhd-dev vhdtool nbdkit-plugin-vhd vhdboot"
for p in $packages; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    echo "$p is already installed: not touching a machine that has it"; exit 1
  fi
done

version=$(sed -n 's/^#define LIBVHD_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' include/vhd.h |
  paste -sd.)
top=$(mktemp -d "${TMPDIR:-/tmp}/libvhd-packages.XXXXXX")
backup=$top/backup
cleanup() {
  status=$?
  set +e
  if [ -f "$top/install.log" ]; then
    # What apt set up: our packages and the dependencies it brought for
    # them (not whatever someone else installed meanwhile).
    added=$(sed -n 's/^Setting up \([^ :]*\).*/\1/p' "$top/install.log" | sort -u)
    if [ -n "$added" ]; then
      echo "== purge: $(echo $added)"
      # shellcheck disable=SC2086
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get purge -y -q $added > "$top/purge.log" 2>&1 ||
        { cat "$top/purge.log"; status=1; }
    fi
    # Files of ours that were on the machine before, owned by no package
    # (an earlier `cmake --install`), come back as they were.
    [ -d "$backup" ] && $SUDO cp -a "$backup/." /
  fi
  [ -n "${KEEP:-}" ] && { mkdir -p build-packages; cp "$top"/*.deb build-packages/; }
  rm -rf "$top"
  exit $status
}
trap cleanup EXIT INT TERM

echo "== build the packages from a clean tree $(elapsed)"
src=$top/libvhd-$version
mkdir "$src"
if git rev-parse --git-dir > /dev/null 2>&1; then
  git archive HEAD | tar -x -C "$src"   # what is committed, nothing built
else
  tar -c --exclude='./build*' --exclude='./obj-*' . | tar -x -C "$src"
fi
(cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
  > "$top/build.log" 2>&1 || { tail -50 "$top/build.log"; echo "FAIL: dpkg-buildpackage"; exit 1; }

echo "== lintian $(elapsed)"
lintian --fail-on error "$top"/libvhd_*.changes || { echo "FAIL: lintian errors"; exit 1; }

echo "== install with apt $(elapsed)"
for deb in "$top"/*.deb; do
  case $deb in *-dbgsym_*) continue ;; esac
  dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's|^\./|/|' | while read -r f; do
    [ -f "$f" ] || continue
    dpkg -S "$f" > /dev/null 2>&1 && continue
    mkdir -p "$backup$(dirname "$f")"; cp -a "$f" "$backup$f"
  done
done
debs=$(ls "$top"/*.deb | grep -v -- -dbgsym_)
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $debs \
  > "$top/install.log" 2>&1 || { cat "$top/install.log"; echo "FAIL: apt-get install"; exit 1; }

echo "== smoke test against the installed system $(elapsed)"
# A scratch directory outside the source tree, the system's PATH only.
repo=$(pwd)
(cd "$top" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$top" TMPDIR="$top" \
  VERSION="$version" CONSUMER="$repo/tests/consumer" sh "$repo/scripts/packages-smoke.sh") || { echo "FAIL: smoke test"; exit 1; }
echo "== packages built, installed, tested $(elapsed)"
