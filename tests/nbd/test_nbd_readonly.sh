#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Read-only serving and start-up errors.
#  - -r never writes the image (sha256 before/after) and refuses writes;
#  - a VHDX with a pending log served with -r shows the post-replay
#    content (oracle: qemu-img check -r all on a copy, then convert) while
#    the file stays unchanged; served writable, the log is replayed;
#  - a damaged image, or a differencing image without its parent, stops
#    nbdkit before it serves, with the message vhdtool gives;
#  - format= forces a format; bad parameters are refused.
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
need_nbd
need_cmd qemu-img gzip

SIZE=$((8 * 1024 * 1024))
C="$NBDCLIENT op --socket \"\$unixsocket\""

# sha256 with the CPU's SHA instructions (1 GiB disks are hashed 4 times;
# coreutils' sha256sum took three times the CPU).
SHA256="$PYTHON $TESTS_DIR/interop/sha256.py"
sha() { $SHA256 "$1"; }

# readonly_case LABEL IMAGE: -r export reads right and changes nothing.
readonly_case() {
  local label=$1 img=$2 before after
  before=$(sha "$img")
  "$VHDTOOL" read "$img" > "$WORK/ref" || { not_ok "$label: vhdtool read failed"; return; }
  captive -r "$img" -- "$C flags > '$WORK/flags' && nbdcopy \"\$uri\" '$WORK/out'; $C write --offset 0 --length 512 --byte 1 2> '$WORK/werr'; echo \$? > '$WORK/wrc'" 2> "$WORK/err" ||
    { not_ok "$label: -r export failed: $(head -c 300 "$WORK/err")"; return; }
  same_file "$label -r: export = vhdtool read" "$WORK/out" "$WORK/ref"
  check "$label -r: advertised read-only ($(cat "$WORK/flags"))" grep -qw read_only "$WORK/flags"
  check "$label -r: a write is refused ($(head -c 100 "$WORK/werr"))" test "$(cat "$WORK/wrc")" != 0
  after=$(sha "$img")
  check "$label -r: the file is unchanged (sha256)" test "$before" = "$after"
  rm -f "$WORK/out" "$WORK/ref"
}

# Under the ASan preload, nbdkit itself (any plugin, even nbdkit's file
# plugin on a missing file) deadlocks in exit() after a start-up error
# (p11-kit's destructor waits for glibc's locale lock), so a refusal may
# end in a timeout. Whether the image was served is told by a marker the
# --run command leaves, never by the exit status alone.
STARTUP_TIMEOUT=120
[ -n "$NBDKIT_PRELOAD" ] && STARTUP_TIMEOUT=15

# try_serve ARGS...: start nbdkit with ARGS; 0 if it served (ran --run).
try_serve() {
  rm -f "$WORK/served"
  local saved=("${NBDKIT[@]}")
  NBDKIT=(timeout "$STARTUP_TIMEOUT" "${NBDKIT[@]}")
  captive "$@" -- "touch '$WORK/served'"
  NBDKIT=("${saved[@]}")
  [ -f "$WORK/served" ]
}

# refuses ARGS...: nbdkit with the plugin and ARGS does not serve.
refuses() { ! try_serve "$@" > /dev/null 2>&1; }

# startup_error LABEL IMAGE [PARAMS...]: nbdkit refuses to start and its
# message contains vhdtool's message for the same file.
startup_error() {
  local label=$1 img=$2; shift 2
  local want
  # vhdtool read, not info: info shows an orphaned child on its own, but
  # serving it needs the whole chain, as reading does.
  if "$VHDTOOL" read --length 512 "$img" > /dev/null 2> "$WORK/verr"; then
    not_ok "$label: vhdtool read accepts the image; nothing to compare"
    return
  fi
  want=$(head -1 "$WORK/verr" | sed 's/^vhdtool[a-z ]*: //')
  if try_serve -r "$img" "$@" > "$WORK/out" 2> "$WORK/err"; then
    not_ok "$label: nbdkit served the image"
  elif grep -qF -- "$want" "$WORK/err"; then
    ok "$label: nbdkit refuses to start with vhdtool's message ($want)"
  else
    not_ok "$label: nbdkit said '$(head -c 300 "$WORK/err")', vhdtool said '$want'"
  fi
}

# --- raw and VHD -r -----------------------------------------------------------------
$GEN raw "$WORK/disk.raw" "$SIZE" 71
readonly_case raw "$WORK/disk.raw"
if vhdtool_can vhd; then
  "$VHDTOOL" convert -O vhd "$WORK/disk.raw" "$WORK/dyn.vhd"
  readonly_case vhd-dynamic "$WORK/dyn.vhd"
  (cd "$WORK" && "$VHDTOOL" create -t differencing -p dyn.vhd child.vhd)
  head -c 70000 /dev/urandom | "$VHDTOOL" write --offset 12345 "$WORK/child.vhd"
  readonly_case vhd-differencing "$WORK/child.vhd"

  # format=raw shows a fixed VHD's footer as the last sector.
  "$VHDTOOL" convert -O vhd -t fixed "$WORK/disk.raw" "$WORK/fixed.vhd"
  got=$(captive -r "$WORK/fixed.vhd" format=raw -- 'nbdinfo --size "$uri"' 2>/dev/null)
  check "format=raw: a fixed VHD is served with its footer ($got bytes)" test "$got" = $((SIZE + 512))
  got=$(captive -r "$WORK/fixed.vhd" format=vhd -- 'nbdinfo --size "$uri"' 2>/dev/null)
  check "format=vhd: the virtual size ($got bytes)" test "$got" = "$SIZE"
  check "format=vhdx on a VHD is refused" refuses -r "$WORK/dyn.vhd" format=vhdx

  # A damaged dynamic header (its cookie) must stop nbdkit at start-up.
  cp "$WORK/dyn.vhd" "$WORK/bad.vhd"
  printf 'XXXXXXXX' | dd of="$WORK/bad.vhd" bs=1 seek=512 conv=notrunc status=none
  startup_error "damaged dynamic header" "$WORK/bad.vhd"
else
  echo "# skipped: vhdtool cannot create vhd images yet (driver not built)"
fi

# Real damaged and orphaned images from shared/images.
if [ -n "$SHARED_DIR" ] && [ -d "$SHARED_DIR/images" ] && vhdtool_can vhd; then
  gzip -dc "$SHARED_DIR/images/dfvfs-bad-checksum.vhd.gz" > "$WORK/bad-checksum.vhd"
  startup_error "dfvfs-bad-checksum.vhd" "$WORK/bad-checksum.vhd"
  gzip -dc "$SHARED_DIR/images/dfvfs-fat-differential.vhd.gz" > "$WORK/orphan.vhd"
  startup_error "differencing image without its parent" "$WORK/orphan.vhd"
fi

check "unknown parameter is refused" refuses "$WORK/disk.raw" colour=blue
check "bad format= is refused" refuses "$WORK/disk.raw" format=qcow2
check "missing file= is refused" refuses format=raw
check "missing image is refused" refuses "$WORK/no-such.vhd"

# --- VHDX with a pending log ----------------------------------------------------------
log_image="${SHARED_DIR:-}/images/vhdx-log-replay.vhdx.gz"
if [ ! -f "$log_image" ]; then
  echo "# skipped: $log_image not found"
elif ! gzip -dc "$log_image" > "$WORK/log.vhdx" || ! "$VHDTOOL" info --json "$WORK/log.vhdx" > "$WORK/info.json" 2>&1 ||
     [ "$(json_get "$WORK/info.json" format)" != vhdx ]; then
  echo "# skipped: vhdtool cannot open VHDX images yet (driver not built)"
else
  # The oracle: qemu-img replays the log of a copy (only a read-write open
  # replays in qemu), then reads it. Compared by sha256 (1 GiB disks).
  cp "$WORK/log.vhdx" "$WORK/qemu.vhdx"
  qemu-img check -q -r all -f vhdx "$WORK/qemu.vhdx" > /dev/null 2>&1
  qemu-img convert -f vhdx -O raw "$WORK/qemu.vhdx" "$WORK/replayed.raw"
  replayed=$(sha "$WORK/replayed.raw")
  rm -f "$WORK/qemu.vhdx" "$WORK/replayed.raw"
  want=$(sed -n 's/^| vhdx-log-replay.vhdx.gz |[^|]*|[^|]*|[^|]*|[^|]*| \([0-9a-f]\{64\}\).*/\1/p' "$SHARED_DIR/images/CATALOG.md")
  [ -n "$want" ] && check "vhdx log: qemu-img's replay gives the catalog's content" test "$replayed" = "$want"

  before=$(sha "$WORK/log.vhdx")
  served=$(captive -r "$WORK/log.vhdx" -- "nbdcopy \"\$uri\" - | $SHA256" 2> "$WORK/err")
  check "vhdx log -r: served content = qemu-img's after replay ($(head -c 200 "$WORK/err"))" test "$served" = "$replayed"
  check "vhdx log -r: the file is unchanged (sha256)" test "$(sha "$WORK/log.vhdx")" = "$before"

  # Writable: the first connection replays the log into the file.
  served=$(captive "$WORK/log.vhdx" -- "nbdcopy \"\$uri\" - | $SHA256" 2> "$WORK/err")
  check "vhdx log rw: served content = qemu-img's after replay ($(head -c 200 "$WORK/err"))" test "$served" = "$replayed"
  "$VHDTOOL" check --json "$WORK/log.vhdx" > "$WORK/check.json" 2>&1
  check "vhdx log rw: the log was replayed into the file" \
    test "$(json_get "$WORK/check.json" log-needs-replay)" = False
  check "vhdx log rw: qemu-img check" qemu-img check -q -f vhdx "$WORK/log.vhdx"
fi

finish
