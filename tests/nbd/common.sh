# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the nbdkit plugin tests (sourced after ../interop/common.sh).
#
# Environment (set by tests/nbd/CMakeLists.txt):
#   NBD_PLUGIN      path of nbdkit-vhd-plugin.so
#   NBDKIT_PRELOAD  sanitizer runtime to preload into nbdkit when the plugin
#                   is built with ASan (nbdkit itself is not), else empty
#   VHDTOOL, SHARED_DIR as for the other shell tests.

NBD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NBD_PLUGIN=${NBD_PLUGIN:-}
NBDKIT_PRELOAD=${NBDKIT_PRELOAD:-}
PYTHON=${PYTHON:-python3}
NBDCLIENT="$PYTHON $NBD_DIR/nbdclient.py"

need_nbd() {
  need_cmd nbdkit nbdinfo nbdcopy python3
  [ -n "$NBD_PLUGIN" ] && [ -f "$NBD_PLUGIN" ] ||
    { echo "FAIL - plugin not built (NBD_PLUGIN='$NBD_PLUGIN')"; echo "0 passed, 1 failed"; exit 1; }
  need_vhdtool
}

# nbdkit, with the sanitizer runtime preloaded when needed. Children that
# nbdkit starts (--run) must not inherit it: they are not instrumented.
# LeakSanitizer stays off for nbdkit itself, whose own allocations at exit
# are not ours to judge; ASan still catches every bad access in the plugin.
# An array, not a function, so that `"${NBDKIT[@]}" ... &` makes $! the
# server itself.
NBDKIT=(nbdkit)
if [ -n "$NBDKIT_PRELOAD" ]; then
  NBDKIT=(env LD_PRELOAD="$NBDKIT_PRELOAD"
          ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0:verify_asan_link_order=0"
          nbdkit)
fi

# captive [NBDKIT-OPTIONS...] IMAGE [PARAMS...] -- SCRIPT
# Serves IMAGE on a private socket while SCRIPT runs ($uri and
# $unixsocket are set for it); returns SCRIPT's status.
captive() {
  local args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  local opts=() params=()
  # nbdkit options come before the plugin, parameters after it.
  while [ ${#args[@]} -gt 0 ] && [ "${args[0]#-}" != "${args[0]}" ]; do
    opts+=("${args[0]}"); args=("${args[@]:1}")
  done
  "${NBDKIT[@]}" -U - "${opts[@]}" "$NBD_PLUGIN" "${args[@]}" \
    --run "unset LD_PRELOAD; $1"
}

# serve SOCKET PIDFILE [NBDKIT-OPTIONS...] -- IMAGE [PARAMS...]
# Starts a background nbdkit on SOCKET (its pid in SERVER_PID); waits
# until it accepts clients.
serve() {
  local sock=$1 pidfile=$2; shift 2
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  rm -f "$sock" "$pidfile"
  # Foreground in the background: the test's shell owns the process, and
  # --exit-with-parent ends it if the test dies.
  "${NBDKIT[@]}" -f --exit-with-parent -U "$sock" -P "$pidfile" "${opts[@]}" \
    "$NBD_PLUGIN" "$@" &
  SERVER_PID=$!
  local i
  for i in $(seq 100); do
    [ -s "$pidfile" ] && [ -S "$sock" ] && return 0
    kill -0 $! 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_server: stop the nbdkit started by serve and wait until it has
# exited (it flushes and closes the image on the way out).
stop_server() {
  [ -n "${SERVER_PID:-}" ] || return 0
  kill "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=
}

# same_file DESC A B: byte-identical files.
same_file() {
  if cmp -s "$2" "$3"; then ok "$1"; else not_ok "$1 ($(cmp "$2" "$3" 2>&1 | head -1))"; fi
}

# vhdtool_can FORMAT: does this build of vhdtool create FORMAT images?
vhdtool_can() {
  local f="$WORK/.probe.$1"
  rm -f "$f"
  "$VHDTOOL" create -f "$1" -s 1M "$f" >/dev/null 2>&1 && "$VHDTOOL" info "$f" >/dev/null 2>&1
  local rc=$?
  rm -f "$f"
  return $rc
}

# check_clean DESC IMAGE [ALLOWED-STATUSES]: vhdtool check exits with one of
# the allowed statuses (default 0).
check_clean() {
  local desc=$1 img=$2 allowed=${3:-0} rc
  "$VHDTOOL" check "$img" > "$WORK/.check.out" 2>&1
  rc=$?
  case " $allowed " in
    *" $rc "*) ok "$desc (vhdtool check exit $rc)" ;;
    *) not_ok "$desc (vhdtool check exit $rc: $(head -c 400 "$WORK/.check.out"))" ;;
  esac
  return 0
}

# --- nbdkit-vhd-filter -------------------------------------------------------
# NBD_FILTER: path of nbdkit-vhd-filter.so (tests/nbd/CMakeLists.txt).
NBD_FILTER=${NBD_FILTER:-}

need_filter() {
  need_nbd
  [ -n "$NBD_FILTER" ] && [ -f "$NBD_FILTER" ] ||
    { echo "FAIL - filter not built (NBD_FILTER='$NBD_FILTER')"; echo "0 passed, 1 failed"; exit 1; }
}

# filtered [NBDKIT-OPTIONS...] PLUGIN [PARAMS...] -- SCRIPT
# Like captive, with the vhd filter over PLUGIN (file, nbd, curl, ...);
# PARAMS are the plugin's and the filter's.
filtered() {
  local opts=() args=()
  while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do opts+=("$1"); shift; done
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  "${NBDKIT[@]}" -U - "${opts[@]}" --filter="$NBD_FILTER" "${args[@]}" \
    --run "unset LD_PRELOAD; $1"
}

# serve_plain SOCKET [NBDKIT-OPTIONS...] PLUGIN [PARAMS...]
# A background nbdkit with any plugin (no filter) on SOCKET, ended with
# the test (--exit-with-parent); its pid is appended to PLAIN_PIDS.
PLAIN_PIDS=()
serve_plain() {
  local sock=$1; shift
  rm -f "$sock" "$sock.pid"
  nbdkit -f --exit-with-parent -U "$sock" -P "$sock.pid" "$@" &
  PLAIN_PIDS+=($!)
  local i
  for i in $(seq 100); do
    [ -s "$sock.pid" ] && [ -S "$sock" ] && return 0
    kill -0 $! 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

stop_plain() {
  local p
  for p in "${PLAIN_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  PLAIN_PIDS=()
}
