#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Check `vhdtool map --json` against independent oracles, as sets of bytes.

  map_oracle.py qemu OURS.json QEMU.json CONTENT LAYER0 [LAYER1...]
      qemu-img map of the same image: the bytes each calls data must be the
      same; every byte qemu calls zero we call zero too, and the bytes only
      we call zero (host holes inside allocated blocks) read as zeros.
  map_oracle.py model OURS.json MODEL CONTENT LAYER0 [LAYER1...]
      The allocation the test made (MODEL: lines "DEPTH START LENGTH", the
      ranges each layer stores, upper layers first): bytes a layer stores
      are data at that depth (or data+zero where they are zeros), the rest
      is not data.
  Both also check, for every extent: it follows the previous one; zero
  bytes read as zeros in CONTENT (the virtual disk read by an oracle);
  data extents with an offset hold CONTENT's bytes at that offset of the
  layer's file (LAYERn, n = depth), and every data extent has an offset
  unless qemu-img gives none there either (compressed clusters). Prints one line per problem (at most
  ten) and exits 1 when there is any.
"""
import json
import sys

errors = []


def err(msg):
    errors.append(msg)


def load(path):
    with open(path) as f:
        return json.load(f)


def flags(entries, size, key):
    """bytearray over the disk: 1 where entries say key is true."""
    out = bytearray(size)
    for e in entries:
        if e[key]:
            out[e["start"]:e["start"] + e["length"]] = b"\1" * e["length"]
    return out


def first_diff(a, b):
    for i in range(len(a)):
        if a[i] != b[i]:
            return i
    return -1


def common(ours, content, layers, no_offset_ok=None):
    size = len(content)
    pos = 0
    for e in ours:
        if e["start"] != pos:
            err("extent at %d does not follow the previous one (expected %d)" % (e["start"], pos))
            return
        pos += e["length"]
        s, n = e["start"], e["length"]
        if e["zero"] and content[s:s + n].count(0) != n:
            err("extent %d+%d is zero but reads non-zero bytes" % (s, n))
        if e["data"] and "offset" in e and not e["zero"]:
            with open(layers[e["depth"]], "rb") as f:
                f.seek(e["offset"])
                got = f.read(n)
            got += bytes(n - len(got))
            if got != content[s:s + n]:
                err("extent %d+%d: layer %d's file at offset %d does not hold the disk's bytes"
                    % (s, n, e["depth"], e["offset"]))
        if e["data"] and "offset" not in e and not (
                no_offset_ok and no_offset_ok[s:s + n].count(1) == n):
            err("data extent %d+%d has no offset" % (s, n))
    if pos != size:
        err("the map covers %d bytes, the disk has %d" % (pos, size))


def cmd_qemu(ours, theirs, content):
    size = len(content)
    od, qd = flags(ours, size, "data"), flags(theirs, size, "data")
    if od != qd:
        i = first_diff(od, qd)
        err("data differs from qemu-img at byte %d (ours %d, qemu %d)" % (i, od[i], qd[i]))
    oz, qz = flags(ours, size, "zero"), flags(theirs, size, "zero")
    for i in range(0, size, 512):
        if qz[i] and not oz[i]:
            err("qemu-img says byte %d is zero, we do not" % i)
            break


def cmd_model(ours, model, content):
    size = len(content)
    want = bytearray(b"\xff" * size)   # depth storing each byte, 255 = none
    for line in open(model):
        f = line.split()
        if len(f) != 3:
            continue
        d, s, n = int(f[0]), int(f[1]), int(f[2])
        for i in range(s, s + n, 512):
            if want[i] == 255 or want[i] > d:
                want[i:i + 512] = bytes([d]) * 512
    got = bytearray(b"\xff" * size)
    for e in ours:
        if e["data"]:
            got[e["start"]:e["start"] + e["length"]] = bytes([e["depth"]]) * e["length"]
    for i in range(0, size, 512):
        if want[i] != got[i]:
            err("byte %d: the model stores it at depth %s, the map says %s"
                % (i, "none" if want[i] == 255 else want[i], "none" if got[i] == 255 else got[i]))
            break


def main(argv):
    mode, ours_path, other, content_path = argv[:4]
    layers = argv[4:]
    ours = load(ours_path)
    content = open(content_path, "rb").read()
    if mode == "qemu":
        # Where qemu-img gives data no offset either (compressed clusters),
        # no file holds the bytes as read.
        theirs = load(other)
        bare = [dict(e, bare=e["data"] and "offset" not in e) for e in theirs]
        common(ours, content, layers, flags(bare, len(content), "bare"))
    else:
        common(ours, content, layers)
    if mode == "qemu":
        cmd_qemu(ours, load(other), content)
    elif mode == "model":
        cmd_model(ours, other, content)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for e in errors[:10]:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
