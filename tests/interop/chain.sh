# SPDX-License-Identifier: BSD-3-Clause
# Differencing-chain checks shared by test_chain_vhd.sh and test_chain_vhdx.sh
# (sourced after common.sh).
#
# A chain is built layer by layer the way it is used: create a layer on top,
# write into it, never write a layer that has children. The same writes go
# into a raw model with dd, so after every layer the top must read as the
# model; earlier layers must still read as their own snapshot of it.

# Writes per layer: 8, or 5 in the sanitizer pass (VHD_TEST_SMALL=1, where
# each vhdtool start costs ~0.1 s of leak checking); 5 still holds every
# odd size of gen.py's unaligned mode (1, 100, 511, 513, 4097 bytes).
CHAIN_WRITES=8
[ "${VHD_TEST_SMALL:-0}" = 1 ] && CHAIN_WRITES=5

# chain_case LABEL FMT LAYERS SIZE BLOCK MODE SEED
#   LAYERS 2 (base+top) or 3 (base+mid+top); MODE aligned|unaligned.
chain_case() {
  local label=$1 fmt=$2 layers=$3 size=$4 bs=$5 mode=$6 seed=$7
  local dir="$WORK/$label"
  mkdir -p "$dir/data"
  local battr=()
  [ "$bs" != default ] && battr=(-b "$bs")
  local names=(base mid top)
  [ "$layers" = 2 ] && names=(base top)
  local model="$dir/model.raw"
  truncate -s "$size" "$model"

  local i name parent rc
  for i in "${!names[@]}"; do
    name=${names[$i]}.$fmt
    # Relative names from inside the chain's directory: the parent locators
    # then hold relative paths, which the move test below depends on.
    if [ "$i" = 0 ]; then
      (cd "$dir" && "$VHDTOOL" create -f "$fmt" -t dynamic -s "$size" "${battr[@]}" "$name") 2> "$dir/err"
    else
      parent=${names[$((i - 1))]}.$fmt
      (cd "$dir" && "$VHDTOOL" create -f "$fmt" -t differencing -p "$parent" "${battr[@]}" "$name") 2> "$dir/err"
    fi
    rc=$?
    if [ $rc != 0 ]; then
      not_ok "$label: vhdtool create $name failed: $(head -c 300 "$dir/err")"
      return
    fi
    $GEN writes $((seed * 10 + i)) "$CHAIN_WRITES" "$size" "$mode" "$dir/data" "${names[$i]}" > "$dir/${names[$i]}.writes"
    check "$label: writes into $name" apply_writes "$dir/$name" "$model" "$dir/${names[$i]}.writes"
    cp --sparse=always "$model" "$dir/${names[$i]}.expect"
    same_read "$label: vhdtool read $name after its writes" "$model" "$VHDTOOL" read "$dir/$name"
  done

  # Lower layers are untouched by writes above them.
  for i in "${!names[@]}"; do
    name=${names[$i]}
    [ "$i" = $((${#names[@]} - 1)) ] && continue
    same_read "$label: $name.$fmt still reads as before its children" "$dir/$name.expect" "$VHDTOOL" read "$dir/$name.$fmt"
  done

  local top=${names[$((${#names[@]} - 1))]}.$fmt
  local chain=()
  for ((i = ${#names[@]} - 1; i >= 0; i--)); do chain+=("$dir/${names[$i]}.$fmt"); done
  # libvhdi resolves bitmaps per 4 KiB and misreads VHD chains whose block
  # size is not 2 MiB (the second of two adjacent 512 KiB blocks reads as
  # the parent's), so it is the oracle for aligned writes at default VHD
  # block sizes; our own spec reader (vhd_oracle.py) covers every VHD case.
  if [ "$mode" = aligned ] && [ -n "$VHDI_READ" ] && [ -x "$VHDI_READ" ] &&
     { [ "$fmt" = vhdx ] || [ "$bs" = default ]; }; then
    same_read "$label: libvhdi reads the top through the chain as the model" "$model" "$VHDI_READ" "${chain[@]}"
  fi
  if [ "$fmt" = vhd ]; then
    same_read "$label: vhd_oracle.py reads the top through the chain as the model" "$model" \
      "$PYTHON" "$TESTS_DIR/interop/vhd_oracle.py" "${chain[@]}"
  fi

  "$VHDTOOL" check "$dir/$top" > "$dir/check.out" 2>&1
  rc=$?
  check "$label: vhdtool check $top exit $rc = 0" [ "$rc" = 0 ]

  local info="$dir/info.json"
  if "$VHDTOOL" info --json "$dir/$top" > "$info" 2> "$dir/err"; then
    json_load "$info"
    check "$label: info type differencing" [ "${J[type]-}" = differencing ]
    check "$label: info virtual-size $size" [ "${J[virtual-size]-}" = "$size" ]
    check "$label: info parent names the parent" grep -q "${names[$((${#names[@]} - 2))]}.$fmt" "$info"
  else
    not_ok "$label: vhdtool info --json $top failed: $(head -c 300 "$dir/err")"
  fi

  # The chain moved as a whole to another directory still resolves (relative
  # locators), and a chain with its base missing fails naming the base.
  mv "$dir" "$dir.moved"
  same_read "$label: chain moved to another directory reads the same" "$dir.moved/model.raw" "$VHDTOOL" read "$dir.moved/$top"
  mv "$dir.moved/base.$fmt" "$dir.moved/base.$fmt.away"
  if "$VHDTOOL" read "$dir.moved/$top" > /dev/null 2> "$dir.moved/err"; then
    not_ok "$label: read with the base missing succeeded"
  else
    check "$label: missing base: error names base.$fmt ($(head -c 200 "$dir.moved/err"))" grep -q "base.$fmt" "$dir.moved/err"
  fi
  rm -rf "$dir.moved"
}

# run_chains FMT BLOCK_A BLOCK_B: the standard set for one format.
run_chains() {
  local fmt=$1 ba=$2 bb=$3 M=$((1024 * 1024))
  chain_case "$fmt-2level-aligned" "$fmt" 2 $((20 * M)) "$ba" aligned 1
  chain_case "$fmt-3level-aligned" "$fmt" 3 $((20 * M)) "$ba" aligned 2
  chain_case "$fmt-3level-aligned-b$bb" "$fmt" 3 $((12 * M + 4096)) "$bb" aligned 3
  chain_case "$fmt-3level-unaligned" "$fmt" 3 $((8 * M)) "$bb" unaligned 5
}
