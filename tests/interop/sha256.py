#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""SHA-256 of a file, or of standard input, printed in hex.

    sha256.py [FILE]

The tests hash whole virtual disks (up to 10 GiB). hashlib uses the CPU's
SHA instructions (coreutils' sha256sum does not: three times the CPU), and
a pipe on standard input is grown from 64 KiB to 1 MiB first, which halves
the time a busy machine spends switching between writer and reader.
"""
import fcntl
import hashlib
import os
import sys

F_SETPIPE_SZ = 1031


def main(argv):
    fd = os.open(argv[1], os.O_RDONLY) if len(argv) > 1 else 0
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
    except OSError:
        pass  # not a pipe, or a smaller limit: hashing works all the same
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while True:
        n = os.readv(fd, [buf])
        if not n:
            break
        h.update(view[:n])
    print(h.hexdigest())


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit(__doc__)
    main(sys.argv)
