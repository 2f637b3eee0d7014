#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Pack image files into one fuzz_chain input (fuzz/fuzz_chain.c says the
form): pack-chain.py OUT FLAGS NAME=FILE [NAME=FILE ...], the first being
the top image. Files over 64 KiB go in the sparse form of sparsify.py."""
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def blob(path):
    data = open(path, "rb").read()
    if len(data) <= 65536:
        return data
    with tempfile.NamedTemporaryFile() as t:
        subprocess.check_call([sys.executable, os.path.join(HERE, "sparsify.py"), path, t.name])
        return open(t.name, "rb").read()


def main(out, flags, files):
    body = b"VHDFUZZC" + bytes([int(flags)])
    for spec in files:
        name, path = spec.split("=", 1)
        b = blob(path)
        body += bytes([len(name)]) + name.encode() + struct.pack("<I", len(b)) + b
    open(out, "wb").write(body)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
