#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Rewrite the parent link of a differencing VHD, for tests of where
parents may come from.

  vhd_locators.py FILE [--zero-id] [CODE=TEXT ...]

--zero-id sets parent_unique_id to zeros (blktap's mark of a raw parent).
Each CODE=TEXT (CODE one of W2ru, W2ku, Wi2r, Wi2k, MacX) goes into the
next locator slot, in the order given, with the payload space that slot
already has; slots left over are cleared. The header checksum is
recomputed. Only the format's own rules are used (the dynamic header at
the footer's data_offset, 8 locator entries of 24 bytes at 576)."""
import struct
import sys

CODES = {"W2ru": b"W2ru", "W2ku": b"W2ku", "Wi2r": b"Wi2r", "Wi2k": b"Wi2k",
         "MacX": b"MacX"}


def main():
    path = sys.argv[1]
    zero_id = "--zero-id" in sys.argv[2:]
    wanted = [a.split("=", 1) for a in sys.argv[2:] if a != "--zero-id"]
    with open(path, "r+b") as f:
        f.seek(-512, 2)
        footer = f.read(512)
        (hdr_off,) = struct.unpack(">Q", footer[16:24])
        f.seek(hdr_off)
        h = bytearray(f.read(1024))
        if zero_id:
            h[40:56] = bytes(16)
        slots = []
        for i in range(8):
            e = 576 + 24 * i
            code, space, length, _, off = struct.unpack(">4sIII Q", h[e:e + 24])
            if code != b"\0\0\0\0":
                # Space is in bytes or in sectors, depending on the writer.
                slots.append((e, space if space >= 512 else space * 512, off))
        if len(wanted) > len(slots):
            sys.exit("%s: only %d locator slots" % (path, len(slots)))
        for n, (e, space, off) in enumerate(slots):
            if n >= len(wanted):
                h[e:e + 24] = bytes(24)
                continue
            code, text = wanted[n]
            data = (text.encode("utf-8") if code in ("MacX", "Wi2r", "Wi2k")
                    else text.encode("utf-16-le"))
            if len(data) > space:
                sys.exit("%s: %s does not fit %d bytes" % (path, text, space))
            f.seek(off)
            f.write(data + bytes(space - len(data)))
            h[e:e + 24] = struct.pack(">4sIII Q", CODES[code], space, len(data), 0, off)
        h[36:40] = bytes(4)
        csum = (~sum(h)) & 0xFFFFFFFF
        h[36:40] = struct.pack(">I", csum)
        f.seek(hdr_off)
        f.write(h)


if __name__ == "__main__":
    main()
