#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Differencing VHD chains made by vhdtool read back as a raw model of the same
# writes, through vhdtool and (4 KiB-aligned writes only) libvhdi.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/chain.sh"
need_cmd python3 cmp dd
need_vhdtool

run_chains vhd default $((512 * 1024))
finish
