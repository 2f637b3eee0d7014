#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Configures and builds libvhd into ./build (or $1), warnings as errors.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
shift 2>/dev/null || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVHD_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
