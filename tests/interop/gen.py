#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Deterministic test data for the shell tests (fixed seeds, so every run
and every failure is reproducible).

  gen.py raw FILE SIZE SEED
      A sparse raw disk of SIZE bytes: zeros with scattered random chunks
      (always one at the very start and one touching the very end).

  gen.py writes SEED COUNT DISK_SIZE MODE OUTDIR PREFIX
      COUNT writes inside a disk of DISK_SIZE bytes. Each write's data goes to
      OUTDIR/PREFIX-NNN.bin; stdout gets one line "OFFSET DATAFILE" per write.
      MODE aligned: offsets and lengths are multiples of 4 KiB (libvhdi can
      be the oracle). MODE unaligned: lengths 1, 100, 511, 513, 4097 and
      random ones at odd offsets (only our raw model is the oracle).
"""
import os
import random
import sys


def make_raw(path, size, seed):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        budget = min(size // 2, 8 << 20)  # bytes of random data at most
        chunks = [(0, min(size, 4096)), (max(0, size - 4096), min(size, 4096))]
        used = sum(n for _, n in chunks)
        while used < budget and len(chunks) < 64:
            n = rng.choice([1, 511, 512, 4096, 65536, rng.randint(1, 300000)])
            n = min(n, size, budget - used)
            if n <= 0:
                break
            off = rng.randrange(0, size - n + 1)
            chunks.append((off, n))
            used += n
        for off, n in chunks:
            f.seek(off)
            f.write(rng.randbytes(n))


def make_writes(seed, count, disk_size, mode, outdir, prefix):
    rng = random.Random(seed)
    odd_sizes = [1, 100, 511, 513, 4097]
    for i in range(count):
        if mode == "aligned":
            n = 4096 * rng.choice([1, 2, 3, 16, rng.randint(1, 96)])
            n = min(n, disk_size)
            off = 4096 * rng.randrange(0, (disk_size - n) // 4096 + 1)
        elif mode == "unaligned":
            n = odd_sizes[i] if i < len(odd_sizes) else rng.randint(1, 70000)
            n = min(n, disk_size)
            off = rng.randrange(0, disk_size - n + 1)
            if off % 2 == 0 and off + n < disk_size:
                off += 1  # odd offsets: never sector aligned
        else:
            sys.exit("unknown mode " + mode)
        data = os.path.join(outdir, "%s-%03d.bin" % (prefix, i))
        with open(data, "wb") as f:
            f.write(rng.randbytes(n))
        print(off, data)


def main(argv):
    if len(argv) == 5 and argv[1] == "raw":
        make_raw(argv[2], int(argv[3]), int(argv[4]))
    elif len(argv) == 8 and argv[1] == "writes":
        make_writes(int(argv[2]), int(argv[3]), int(argv[4]), argv[5], argv[6], argv[7])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
