#!/bin/sh
# Build the fuzz harnesses with clang (own build directory) and run each for
# a fixed short time; any crash, leak, timeout, model mismatch or broken
# promise fails. Corpora live in fuzz/corpus/<harness> (git-ignored).
#
#   fuzz/run-short.sh [SECONDS]      (default 60; FUZZ_BUILD_DIR overrides build-fuzz)
set -eu
cd "$(dirname "$0")/.."
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
secs=${1:-${FUZZ_SECONDS:-60}}
dir=${FUZZ_BUILD_DIR:-build-fuzz}

cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DVHD_FUZZ=ON -DVHD_SANITIZE=ON -DVHD_TESTS=OFF -DVHD_BENCH=OFF -DVHD_NBD_PLUGIN=OFF > /dev/null
cmake --build "$dir" -j"$(nproc)" --target vhdtool $(cd fuzz && ls fuzz_*.c | sed 's/\.c$//')

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

# fuzz_open starts from small valid images; fuzz_write's inputs are
# operation lists, which it grows from nothing.
mkdir -p fuzz/corpus/open fuzz/corpus/write
fuzz/make-corpus.sh "$dir/tools/vhdtool" fuzz/corpus/open

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
status=0
for fuzzer in "$dir"/fuzz/fuzz_*; do
  [ -x "$fuzzer" ] || continue
  name=$(basename "$fuzzer")
  case $name in
    fuzz_open) args="-max_len=1048576 fuzz/corpus/open $extra" ;;
    fuzz_write) args="-max_len=1024 -len_control=0 fuzz/corpus/write" ;;
    *) args="-max_len=1048576 fuzz/corpus/${name#fuzz_}"; mkdir -p "fuzz/corpus/${name#fuzz_}" ;;
  esac
  echo "== $name for ${secs}s"
  # shellcheck disable=SC2086
  # A fixed seed keeps CI's short run reproducible; FUZZ_SEED=0 asks libFuzzer for a random one.
  "$fuzzer" -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/$name-" $args || status=1
done
[ $status = 0 ] && echo "fuzz: no crash" || echo "fuzz: FAILED, see $dir/artifacts/"
exit $status
