#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Build the fuzz harnesses with clang (own build directory) and run each for
# a fixed short time; any crash, leak, timeout, model mismatch or broken
# promise fails. Corpora live in fuzz/corpus/<harness> (git-ignored).
#
#   fuzz/run-short.sh [SECONDS]      (default 30 per harness; FUZZ_BUILD_DIR
#                                     overrides build-fuzz; FUZZ_JOBS how many
#                                     harnesses run at once, default nproc)
#
# The harnesses run side by side, one per core: each is single-threaded, so
# on CI's two cores two 30-second runs take 30 seconds, not 60.
set -eu
cd "$(dirname "$0")/.."
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
secs=${1:-${FUZZ_SECONDS:-30}}
jobs=${FUZZ_JOBS:-$(nproc)}
dir=${FUZZ_BUILD_DIR:-build-fuzz}

cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVHD_FUZZ=ON -DVHD_SANITIZE=ON -DVHD_TESTS=OFF -DVHD_BENCH=OFF -DVHD_NBD_PLUGIN=OFF > /dev/null
cmake --build "$dir" -j"$(nproc)" --target vhdtool $(cd fuzz && ls fuzz_*.c | sed 's/\.c$//')

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# fuzz_open starts from small valid images; fuzz_write's inputs are
# operation lists, which it grows from nothing.
mkdir -p fuzz/corpus/open fuzz/corpus/write fuzz/corpus/chain
fuzz/make-corpus.sh "$dir/tools/vhdtool" fuzz/corpus/open
fuzz/make-chain-corpus.sh "$dir/tools/vhdtool" fuzz/corpus/chain

# Real images from other tools, as extra read-only seeds (kept out of the
# project tree: decompressed into a temporary directory).
extra=$(mktemp -d)
trap 'rm -rf "$extra"' EXIT
if [ -d ../shared/images ]; then
  for f in ../shared/images/*.gz ../shared/images/*.bz2; do
    [ -f "$f" ] || continue
    base=$(basename "$f"); base=${base%.*}
    case $f in
      *.gz) gzip -dc "$f" > "$extra/$base" ;;
      *.bz2) bzip2 -dc "$f" > "$extra/$base" ;;
    esac
    "$PYTHON" fuzz/sparsify.py "$extra/$base" "$extra/$base.sparse"
    rm -f "$extra/$base"
  done
fi

mkdir -p "$dir/artifacts"
# run_one FUZZER: one harness for $secs seconds; its output goes to
# $dir/artifacts/NAME.log (printed whole when it is done, so that two runs
# side by side do not interleave) and its status to NAME.status.
run_one() {
  name=$(basename "$1")
  case $name in
    fuzz_open) args="-max_len=1048576 fuzz/corpus/open $extra" ;;
    fuzz_write) args="-max_len=1024 -len_control=0 fuzz/corpus/write" ;;
    *) args="-max_len=1048576 fuzz/corpus/${name#fuzz_}"; mkdir -p "fuzz/corpus/${name#fuzz_}" ;;
  esac
  # shellcheck disable=SC2086
  # A fixed seed keeps CI's short run reproducible; FUZZ_SEED=0 asks libFuzzer for a random one.
  rc=0
  "$1" -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$name-" $args > "$dir/artifacts/$name.log" 2>&1 || rc=$?
  echo "$rc" > "$dir/artifacts/$name.status"
}

names=
running=0
for fuzzer in "$dir"/fuzz/fuzz_*; do
  [ -x "$fuzzer" ] || continue
  name=$(basename "$fuzzer")
  names="$names $name"
  rm -f "$dir/artifacts/$name.status"
  echo "== $name for ${secs}s"
  run_one "$fuzzer" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait
    running=0
  fi
done
wait

status=0
for name in $names; do
  echo "== $name output"
  cat "$dir/artifacts/$name.log"
  rc=$(cat "$dir/artifacts/$name.status" 2>/dev/null || echo missing)
  if [ "$rc" != 0 ]; then
    echo "== $name FAILED (exit status $rc)"
    status=1
  fi
done
[ $status = 0 ] && echo "fuzz: no crash" || echo "fuzz: FAILED, see $dir/artifacts/"
exit $status
