#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Differencing VHDX chains, as test_chain_vhd.sh. Skipped (77) while the VHDX
# driver cannot create differencing images yet.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/chain.sh"
need_cmd python3 cmp dd
need_vhdtool

probe="$WORK/probe"
mkdir -p "$probe"
if ! "$VHDTOOL" create -f vhdx -t dynamic -s 4M "$probe/p.vhdx" 2> "$probe/err"; then
  not_ok "vhdtool create -f vhdx failed: $(cat "$probe/err")"
  finish; exit
fi
if ! "$VHDTOOL" create -f vhdx -t differencing -p "$probe/p.vhdx" "$probe/c.vhdx" 2> "$probe/err"; then
  if grep -qi 'not supported' "$probe/err"; then
    skip_all "differencing VHDX not supported yet: $(cat "$probe/err")"
  fi
  not_ok "vhdtool create -f vhdx -p failed: $(cat "$probe/err")"
  finish; exit
fi
rm -rf "$probe"

run_chains vhdx $((1024 * 1024)) default
finish
