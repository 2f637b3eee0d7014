#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The hostile-image catalogue of issue 11 against vhdtool (every command)
# and the library (hostile_lib): gen_hostile.py writes the images and a
# manifest of what each must do, run_hostile.py runs and judges them (exit
# status, one error line naming the file and the field, no crash, no hang,
# bounded RSS and output, no byte of a secret file outside the policy in
# any output). The plugin's part is tests/nbd/test_nbd_hostile.sh.
#
# Usage: test_hostile.sh [VHDTOOL]   (HOSTILE_LIB: path of hostile_lib)
# VHD_TEST_SMALL=1 (the sanitizer pass) leaves out the 2 GiB sparse cases.
. "$(dirname "$0")/../interop/common.sh"
need_vhdtool
HOSTILE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HOSTILE_LIB=${HOSTILE_LIB:-}

args=()
[ "${VHD_TEST_SMALL:-0}" = 1 ] && args+=(--small)
# Under ASan RSS bounds get the sanitizer's own overhead and timeouts grow.
ldd "$VHDTOOL" 2>/dev/null | grep -q 'asan' && args+=(--sanitized)

if ! "$PYTHON" "$HOSTILE_DIR/gen_hostile.py" --vhdtool "$VHDTOOL" "$WORK/cat"; then
  not_ok "gen_hostile.py could not write the catalogue"
  finish
  exit 1
fi
mkdir -p "$WORK/run"

status=0
echo "# vhdtool"
"$PYTHON" "$HOSTILE_DIR/run_hostile.py" cli --manifest "$WORK/cat/manifest.json" \
  --work "$WORK/run" --vhdtool "$VHDTOOL" "${args[@]}" || status=1
echo "# library"
if [ -n "$HOSTILE_LIB" ] && [ -x "$HOSTILE_LIB" ]; then
  "$PYTHON" "$HOSTILE_DIR/run_hostile.py" lib --manifest "$WORK/cat/manifest.json" \
    --work "$WORK/run" --lib "$HOSTILE_LIB" "${args[@]}" || status=1
else
  echo "FAIL - hostile_lib not built (HOSTILE_LIB='$HOSTILE_LIB')"
  status=1
fi
exit $status
