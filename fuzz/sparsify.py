#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write a disk image file in the fuzz harness's sparse input form:

  "VHDFUZZS", u64 LE file size, then records (u64 LE offset, u32 LE length,
  bytes) for the non-zero parts; everything else reads as zeros.

  sparsify.py IN OUT
"""
import struct
import sys

GRAIN = 512


def main(src, dst):
    data = open(src, "rb").read()
    records = []
    i = 0
    n = len(data)
    zero = bytes(GRAIN)
    while i < n:
        if data[i:i + GRAIN] == zero[:len(data[i:i + GRAIN])]:
            i += GRAIN
            continue
        start = i
        while i < n and data[i:i + GRAIN] != zero[:len(data[i:i + GRAIN])]:
            i += GRAIN
        records.append((start, data[start:min(i, n)]))
    with open(dst, "wb") as f:
        f.write(b"VHDFUZZS" + struct.pack("<Q", n))
        for off, chunk in records:
            f.write(struct.pack("<QI", off, len(chunk)) + chunk)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
