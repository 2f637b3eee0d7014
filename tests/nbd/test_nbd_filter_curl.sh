#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkit-vhd-filter over `nbdkit curl`, against lighttpd on 127.0.0.1 (a
# generated config in the scratch directory, a free port), serving a
# dynamic VHDX and a fixed VHD: the export reads byte for byte as the
# model, and the filter's cache keeps the HTTP requests (lighttpd's access
# log) far below one per client read.
#
# The bound: with a cache (64 MiB) larger than the container, each
# 1 MiB cache block is fetched at most once, so no read pattern costs more
# than ceil(container / 1 MiB) requests, plus a few for the open (curl's
# size probe, headers, region table, metadata, BAT). The test asserts
# that, and that 1000 random 4 KiB reads cost fewer than 100 requests;
# with the cache cut to nothing, one per read of data (the control).
. "$(dirname "$0")/../interop/common.sh"
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/http_server.sh"
need_filter
need_cmd lighttpd qemu-io
nbdkit curl --dump-plugin >/dev/null 2>&1 || skip_all "nbdkit's curl plugin is not installed (nbdkit-plugin-curl)"

trap '[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null; rm -rf "$WORK"' EXIT

SIZE=$((64 * 1024 * 1024))
MODEL="$WORK/model.raw"
# Half data: random bytes in the first 32 MiB, zeros after.
head -c $((SIZE / 2)) /dev/urandom > "$MODEL"
truncate -s "$SIZE" "$MODEL"
http_setup "$WORK"
"$VHDTOOL" convert -O vhdx -t dynamic "$MODEL" "$WORK/www/disk.vhdx" &&
"$VHDTOOL" convert -O vhd -t fixed "$MODEL" "$WORK/www/disk.vhd" ||
  { not_ok "making the images"; finish; exit; }

# 1000 random 4 KiB-aligned reads, as qemu-io commands.
$PYTHON -c "
import random
random.seed(21)
print(' '.join(\"-c 'read %d 4096'\" % (random.randrange($SIZE // 4096) * 4096) for _ in range(1000)))
" > "$WORK/reads"

for img in disk.vhdx disk.vhd; do
  url="http://127.0.0.1:$HTTP_PORT/$img"
  container=$(stat -c %s "$WORK/www/$img")
  bound=$(( (container + 1048575) / 1048576 + 16 ))

  rm -f "$WORK/out"
  start_http || { not_ok "lighttpd did not start: $(cat "$WORK/error.log")"; break; }
  filtered -r curl "$url" -- "nbdcopy \"\$uri\" '$WORK/out'" 2> "$WORK/err"
  rc=$?
  stop_http; full=$REQUESTS
  [ $rc -eq 0 ] ||
    { not_ok "$img: full read through the filter over curl failed: $(head -c 300 "$WORK/err")"; continue; }
  same_file "$img: filter over curl = model" "$WORK/out" "$MODEL"
  echo "# $img: full read of $SIZE bytes (container $container): $full HTTP requests"
  check "$img: full read in $full requests <= $bound" test "$full" -le "$bound"

  start_http || { not_ok "lighttpd did not start: $(cat "$WORK/error.log")"; break; }
  filtered -r curl "$url" -- "qemu-io -r -f raw $(cat "$WORK/reads") \"\$uri\" > /dev/null" \
    2> "$WORK/err"
  rc=$?
  stop_http; random=$REQUESTS
  [ $rc -eq 0 ] || { not_ok "$img: random reads failed: $(head -c 300 "$WORK/err")"; continue; }
  echo "# $img: 1000 random 4 KiB reads: $random HTTP requests"
  check "$img: 1000 random reads in $random requests <= $bound" test "$random" -le "$bound"
  check "$img: 1000 random reads in $random requests < 100" test "$random" -lt 100
done

# The control: with the cache cut to two 4 KiB blocks, every read that
# lands in the data half (about 500 of the 1000; the other half reads
# unallocated blocks, which cost nothing) costs a request. Shows that the
# counting sees the requests (a count of 0 would pass every bound above).
start_http || { not_ok "lighttpd did not start"; finish; exit; }
filtered -r curl "http://127.0.0.1:$HTTP_PORT/disk.vhdx" cache-block=4K cache-size=8K -- \
  "qemu-io -r -f raw $(cat "$WORK/reads") \"\$uri\" > /dev/null" 2> "$WORK/err"
rc=$?
stop_http; uncached=$REQUESTS
echo "# disk.vhdx, cache of two 4 KiB blocks: 1000 random 4 KiB reads: $uncached HTTP requests"
check "control: without a useful cache the reads cost $uncached > 400 requests" \
  test $rc -eq 0 -a "$uncached" -gt 400

finish
