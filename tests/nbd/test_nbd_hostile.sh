#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The hostile-image catalogue of issue 11 (tests/hostile) against the
# nbdkit plugin with its default parameters (parents=beside, no raw
# parent): each case must either stop nbdkit at startup with one error
# line naming the file, or serve an export whose every byte (nbdcopy) holds
# nothing of a file outside the policy; never hang or crash.
# HOSTILE_NBD_MODE=filter (test_nbd_filter_hostile.sh) runs the catalogue
# through nbdkit-vhd-filter over nbdkit file instead (run_hostile.py says
# what is judged there).
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
MODE=${HOSTILE_NBD_MODE:-nbd}
if [ "$MODE" = filter ]; then need_filter; else need_nbd; fi
HOSTILE_DIR=$(cd "$NBD_DIR/../hostile" && pwd)

# nbdkit with the ASan runtime preloaded never exits after a startup error
# (even its own "realpath: No such file"), so a refusal there looks like a
# hang; the library under ASan runs in tests/hostile/test_hostile.sh.
[ -n "$NBDKIT_PRELOAD" ] &&
  skip_all "nbdkit under a preloaded ASan runtime hangs after startup errors"
args=()
[ "${VHD_TEST_SMALL:-0}" = 1 ] && args+=(--small)

if ! "$PYTHON" "$HOSTILE_DIR/gen_hostile.py" --vhdtool "$VHDTOOL" "$WORK/cat"; then
  not_ok "gen_hostile.py could not write the catalogue"
  finish
  exit 1
fi
mkdir -p "$WORK/run"
"$PYTHON" "$HOSTILE_DIR/run_hostile.py" "$MODE" --manifest "$WORK/cat/manifest.json" \
  --work "$WORK/run" --plugin "$NBD_PLUGIN" --filter "$NBD_FILTER" --nbdkit "$(printf '%q ' "${NBDKIT[@]}")" \
  "${args[@]}"
