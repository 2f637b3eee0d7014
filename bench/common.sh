# SPDX-License-Identifier: BSD-3-Clause
# What the benchmarks share; each sources it after setting HERE (its own
# directory) and BENCH_NAME (its name in messages). Every path can be
# given from the environment; a script that wants another BENCH_DIR sets
# it before sourcing this.
ROOT=$(cd "$HERE/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
BENCH_DIR=${BENCH_DIR:-/var/tmp/libvhd-bench}
VHDTOOL=${VHDTOOL:-$BUILD/tools/vhdtool}
TIMER=${TIMER:-$BUILD/bench/bench-timer}

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
note() { echo "$BENCH_NAME: $*" >&2; }
# has_op OP: whether OP is among the words of $OPS.
has_op() { case " $OPS " in *" $1 "*) return 0 ;; esac; return 1; }

# A process's user + system CPU time, in clock ticks of TICK per second.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# rotate N ITEM...: the items, one per line, starting at the Nth (rounds
# rotate the order so that each sees the same background noise).
rotate() {
  local n=$1; shift
  local a=("$@") k=$# i
  for ((i = 0; i < k; i++)); do echo "${a[$(((i + n) % k))]}"; done
}

# ratio A B: A / B to two places, "-" when either is missing or B is 0.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }

# timer_stats FILE: of bench-timer's lines ("wall_ms user_ms sys_ms" per
# run), the median and minimum wall time and the median CPU time, in ms.
median_of_lines() { sort -n | awk '{ v[NR] = $1 } END { printf "%.0f", v[int((NR + 1) / 2)] }'; }
timer_stats() {
  echo "$(cut -d' ' -f1 "$1" | median_of_lines) $(cut -d' ' -f1 "$1" | sort -n | head -1 | cut -d. -f1)" \
       "$(awk '{ print $2 + $3 }' "$1" | median_of_lines)"
}
