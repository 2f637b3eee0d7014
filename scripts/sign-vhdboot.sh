#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Signs vhdboot.efi for Secure Boot with sbsign (Debian package sbsigntool).
#
#   scripts/sign-vhdboot.sh KEY CERT [IN [OUT]]
#
# KEY and CERT are PEM files (the key in db, a MOK, or a key the owner
# enrolled: docs/efi-loader.md, "Secure Boot"). IN defaults to
# build/efi-loader/vhdboot.efi, OUT to IN.signed, the name Debian's signed
# boot loader packages use beside the unsigned file. A key with a
# passphrase is read with the passphrase from $VHDBOOT_KEY_PASS (sbsign
# itself can only ask on a terminal). The result is checked with
# sbverify against CERT before the script says it is done.
set -eu

usage() {
  echo "usage: $0 KEY CERT [IN [OUT]]" >&2
  exit 2
}
[ $# -ge 2 ] && [ $# -le 4 ] || usage
key=$1
cert=$2
in=${3:-build/efi-loader/vhdboot.efi}
out=${4:-$in.signed}

for tool in sbsign sbverify; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "$0: $tool not found (install sbsigntool)" >&2; exit 1; }
done
for f in "$key" "$cert" "$in"; do
  [ -r "$f" ] || { echo "$0: $f: cannot read it" >&2; exit 1; }
done
# shim refuses binaries without SBAT; a signed loader that shim will not
# start is a mistake better caught here.
if command -v objdump >/dev/null 2>&1 && ! objdump -h "$in" | grep -q ' \.sbat '; then
  echo "$0: $in: no .sbat section (shim would refuse it); build it with this project's CMake" >&2
  exit 1
fi

tmp=""
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT
if grep -q ENCRYPTED "$key"; then
  [ -n "${VHDBOOT_KEY_PASS:-}" ] ||
    { echo "$0: $key has a passphrase: give it in VHDBOOT_KEY_PASS" >&2; exit 1; }
  tmp=$(mktemp -d)
  chmod 700 "$tmp"
  (umask 077 && VHDBOOT_KEY_PASS=$VHDBOOT_KEY_PASS \
     openssl rsa -in "$key" -passin env:VHDBOOT_KEY_PASS -out "$tmp/key.pem" 2>/dev/null) ||
    { echo "$0: $key: wrong passphrase in VHDBOOT_KEY_PASS, or not an RSA key" >&2; exit 1; }
  key=$tmp/key.pem
fi

sbsign --key "$key" --cert "$cert" --output "$out.tmp" "$in" >/dev/null
sbverify --cert "$cert" "$out.tmp" >/dev/null ||
  { rm -f "$out.tmp"; echo "$0: sbverify does not accept the signed $out" >&2; exit 1; }
mv "$out.tmp" "$out"
echo "signed: $out"
