#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Where the plugin takes parents from (issue 11): a host that serves
# uploaded images must not hand out its own files through their parent
# locators.
#  - default (parents=beside): a child whose parent lies outside its
#    directory is refused at start-up with one line naming it; parents=any
#    serves it (oracle: nbdcopy output = the parent's bytes);
#  - a zero parent id whose locators name a secret outside and /etc/passwd:
#    refused with parents=any too unless raw-parent=true, and never a byte
#    of either reaches a client;
#  - parents=none refuses any differencing image; a parent beside the
#    child is served under the default.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../interop/common.sh"
. "$HERE/common.sh"
need_nbd
need_cmd grep cmp

V() { "$VHDTOOL" "$@"; }
LOC="$PYTHON $HERE/../cli/vhd_locators.py"
cd "$WORK" || exit 1

# Under the ASan preload nbdkit may hang in exit() after a start-up error
# (see test_nbd_readonly.sh): a marker left by --run tells whether it served.
STARTUP_TIMEOUT=120
[ -n "$NBDKIT_PRELOAD" ] && STARTUP_TIMEOUT=15
# serve_copy OUT ARGS...: nbdcopy the export into OUT; 0 if it was served.
serve_copy() {
  local out=$1; shift
  rm -f "$out" served
  local saved=("${NBDKIT[@]}")
  NBDKIT=(timeout "$STARTUP_TIMEOUT" "${NBDKIT[@]}")
  captive -r "$@" -- "nbdcopy \"\$uri\" '$WORK/$out' && touch '$WORK/served'" 2> nbd.err
  NBDKIT=("${saved[@]}")
  [ -f served ]
}

mkdir -p imgs outside
{ printf 'SECRET-MARKER-%s\n' "$$"; head -c 65536 /dev/urandom; } > outside/secret.raw
truncate -s 1M outside/secret.raw
marker="SECRET-MARKER-$$"
passwd_line=$(head -1 /etc/passwd)
leaks() { grep -qaF -e "$marker" -e "$passwd_line" "$@" 2>/dev/null; }

# --- A parent outside the image's directory ---------------------------------
V create -f vhdx -s 4M outside/base.vhdx > /dev/null
head -c 4M /dev/urandom > base.content
V write outside/base.vhdx < base.content
V create -t differencing -p outside/base.vhdx imgs/child.vhdx > /dev/null
if serve_copy out.raw imgs/child.vhdx; then
  not_ok "default: a parent outside the directory was served"
else
  ok "default: a parent outside the directory stops nbdkit"
fi
grep -q "child.vhdx.*outside the allowed directories" nbd.err &&
  ok "default: the message names the child and says why" ||
  not_ok "default: message: $(head -c 300 nbd.err)"
if serve_copy out.raw imgs/child.vhdx parents=any; then
  same_file "parents=any: the export reads as the parent" out.raw base.content
else
  not_ok "parents=any: not served: $(head -c 300 nbd.err)"
fi
if serve_copy out.raw imgs/child.vhdx parents=none; then
  not_ok "parents=none: a differencing image was served"
else
  grep -q "differencing" nbd.err && ok "parents=none: refused, saying why" ||
    not_ok "parents=none: message: $(head -c 300 nbd.err)"
fi

# --- A parent beside the child is served by default --------------------------
cp outside/base.vhdx imgs/base.vhdx
V create -t differencing -p imgs/base.vhdx imgs/near.vhdx > /dev/null
if serve_copy out.raw imgs/near.vhdx; then
  same_file "default: a parent beside the child is served" out.raw base.content
else
  not_ok "default: a parent beside the child: $(head -c 300 nbd.err)"
fi

# --- A zero parent id naming host files ------------------------------------
head -c 1M /dev/urandom > imgs/base.raw
V create -f vhd -t differencing -p imgs/base.raw imgs/hostile.vhd > /dev/null
$LOC imgs/hostile.vhd --zero-id 'W2ru=..\outside\secret.raw' \
  'W2ku=C:\etc\passwd' 'MacX=file:///etc/passwd' || not_ok "rewrite the locators"
rm imgs/base.raw
for params in "" "parents=any" "parents=beside raw-parent=true"; do
  label="zero parent id${params:+, $params}"
  if serve_copy out.raw imgs/hostile.vhd $params; then
    not_ok "$label: served"
  else
    ok "$label: refused"
  fi
  leaks out.raw nbd.err && not_ok "$label: a client or the log saw a host file" ||
    ok "$label: no byte of a host file anywhere"
done
# The oracle can see a leak: trusting the locators does serve the secret.
serve_copy out.raw imgs/hostile.vhd parents=any raw-parent=true
check "parents=any raw-parent=true follows the locator (the leak check works)" leaks out.raw

check "bad parents= value refused" bash -c "! nbdkit '$NBD_PLUGIN' imgs/near.vhdx parents=maybe --run true 2>/dev/null"

finish
