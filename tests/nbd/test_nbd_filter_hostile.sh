#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The hostile-image catalogue (tests/hostile) through nbdkit-vhd-filter
# over nbdkit file: the filter serves uploads. Each case must be served or
# refused with its first error line naming the export (or, for what the
# file plugin itself refuses, the file), never hang, crash, write without
# bound, or show a byte of any other file (the filter follows no locator:
# parents come only from parent= URIs). test_nbd_hostile.sh does the work.
HOSTILE_NBD_MODE=filter exec bash "$(dirname "$0")/test_nbd_hostile.sh" "$@"
