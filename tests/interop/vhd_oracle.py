#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""An independent VHD reader, written from the specification for the tests
(libvhd must not share code with its oracle):

    vhd_oracle.py CHILD [PARENT [GRANDPARENT...]]

writes the virtual disk of CHILD to stdout, resolving differencing images
through the files named after it (each the parent of the one before).
Fixed, dynamic and differencing VHD; sector bitmaps honoured at sector
granularity (libvhdi resolves them per 4 KiB, and misreads chains with
block sizes other than 2 MiB, so it cannot be the only oracle).

Checks only what it needs to read correctly; exits 1 with a message on a
file it cannot read.
"""
import struct
import sys


def fail(msg):
    sys.stderr.write("vhd_oracle: %s\n" % msg)
    sys.exit(1)


class Vhd:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        self.f.seek(0, 2)
        flen = self.f.tell()
        footer = self.at(flen - 512, 512)
        if footer[:8] != b"conectix":
            fail("%s: no footer" % path)
        self.size = struct.unpack(">Q", footer[48:56])[0]
        self.type = struct.unpack(">I", footer[60:64])[0]
        self.uid = footer[68:84]
        if self.type == 2:
            return
        if self.type not in (3, 4):
            fail("%s: disk type %d" % (path, self.type))
        hoff = struct.unpack(">Q", footer[16:24])[0]
        hdr = self.at(hoff, 1024)
        if hdr[:8] != b"cxsparse":
            fail("%s: no dynamic header" % path)
        table = struct.unpack(">Q", hdr[16:24])[0]
        n = struct.unpack(">I", hdr[28:32])[0]
        self.bs = struct.unpack(">I", hdr[32:36])[0]
        self.parent_uid = hdr[40:56]
        self.bat = struct.unpack(">%dI" % n, self.at(table, 4 * n))
        self.bitmap_bytes = (self.bs // 512 // 8 + 511) // 512 * 512
        self.bitmaps = {}

    def at(self, off, n):
        self.f.seek(off)
        b = self.f.read(n)
        return b + bytes(n - len(b))

    def sector(self, s):
        """512 bytes of virtual sector s, or None when this layer lacks it."""
        if self.type == 2:
            return self.at(s * 512, 512)
        spb = self.bs // 512
        blk, i = divmod(s, spb)
        e = self.bat[blk] if blk < len(self.bat) else 0xFFFFFFFF
        if e == 0xFFFFFFFF:
            return None if self.type == 4 else bytes(512)
        if blk not in self.bitmaps:
            self.bitmaps[blk] = self.at(e * 512, self.bitmap_bytes)
        if self.bitmaps[blk][i // 8] >> (7 - i % 8) & 1:
            return self.at(e * 512 + self.bitmap_bytes + i * 512, 512)
        return None if self.type == 4 else bytes(512)


def main(paths):
    chain = [Vhd(p) for p in paths]
    for child, parent in zip(chain, chain[1:]):
        if child.type != 4:
            fail("%s is not differencing" % child.path)
        if child.parent_uid != parent.uid:
            fail("%s: parent id does not match %s" % (child.path, parent.path))
    top = chain[0]
    out = sys.stdout.buffer
    zero = bytes(512)
    # Whole unallocated runs are common: handle a block at a time when no
    # layer has it.
    buf = bytearray()
    for s in range(top.size // 512):
        data = None
        for layer in chain:
            if s * 512 >= layer.size:
                data = zero
                break
            data = layer.sector(s)
            if data is not None:
                break
        buf += data if data is not None else zero
        if len(buf) >= 1 << 20:
            out.write(buf)
            buf = bytearray()
    out.write(buf)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
