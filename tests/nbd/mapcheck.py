#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Compare block-status maps for the extent tests.

  mapcheck.py nbdinfo MAPFILE
      Normalise `nbdinfo --map` output: prints "START LENGTH TYPE" lines with
      neighbours of one type merged (TYPE: 0 data, 2 zero, 3 hole+zero).
  mapcheck.py qemu JSONFILE
      The same from `qemu-img map --output=json` over NBD.
  mapcheck.py expect MAPFILE SIZE BLOCK DATA PARTIAL
      Check a normalised map against the allocation the test made: DATA and
      PARTIAL are comma-separated block indexes ("-" for none). Blocks in
      DATA must be data throughout; outside DATA and PARTIAL the map must say
      hole+zero; PARTIAL blocks may be anything but must be data where
      WRITTEN (optional 6th arg "START+LEN,..." in bytes) says so.
      Prints the number of data bytes.
"""
import json
import sys


def merge(extents):
    out = []
    for start, length, typ in extents:
        if out and out[-1][2] == typ and out[-1][0] + out[-1][1] == start:
            out[-1][1] += length
        else:
            out.append([start, length, typ])
    return out


def parse_nbdinfo(path):
    ext = []
    for line in open(path):
        f = line.split()
        if len(f) >= 3 and f[0].isdigit():
            ext.append((int(f[0]), int(f[1]), int(f[2])))
    return merge(ext)


def parse_qemu(path):
    ext = []
    for e in json.load(open(path)):
        typ = (0 if e["data"] else 1) | (2 if e["zero"] else 0)
        ext.append((e["start"], e["length"], typ))
    return merge(ext)


def load_norm(path):
    return [tuple(int(x) for x in l.split()) for l in open(path) if l.strip()]


def type_at(ext, off):
    for s, n, t in ext:
        if s <= off < s + n:
            return t
    return None


def ranges_of(ext, want):
    return [(s, s + n) for s, n, t in ext if t == want]


def cmd_expect(args):
    ext = load_norm(args[0])
    size, block = int(args[1]), int(args[2])
    data = set() if args[3] == "-" else {int(x) for x in args[3].split(",")}
    partial = set() if args[4] == "-" else {int(x) for x in args[4].split(",")}
    written = []
    if len(args) > 5 and args[5] != "-":
        for w in args[5].split(","):
            s, n = w.split("+")
            written.append((int(s), int(s) + int(n)))
    errors = []
    covered = sum(n for _, n, _ in ext)
    if not ext or ext[0][0] != 0 or covered != size:
        errors.append("map covers %d bytes, the disk has %d" % (covered, size))
    # Every extent boundary-to-boundary piece, block by block.
    for s, n, t in ext:
        off = s
        while off < s + n:
            b = off // block
            end = min(s + n, (b + 1) * block)
            if b in data and t != 0:
                errors.append("block %d (bytes %d-%d) is type %d, expected data" % (b, off, end, t))
            elif b not in data and b not in partial and t != 3:
                errors.append("block %d (bytes %d-%d) is type %d, expected hole,zero" % (b, off, end, t))
            off = end
    for ws, we in written:
        for s, n, t in ext:
            if s < we and ws < s + n and t != 0:
                errors.append("written bytes %d-%d overlap an extent of type %d" % (ws, we, t))
    for e in errors[:10]:
        print(e)
    print(sum(n for _, n, t in ext if t == 0))
    return 1 if errors else 0


def main(argv):
    if argv[0] == "nbdinfo":
        for e in parse_nbdinfo(argv[1]):
            print(*e)
        return 0
    if argv[0] == "qemu":
        for e in parse_qemu(argv[1]):
            print(*e)
        return 0
    if argv[0] == "expect":
        return cmd_expect(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
