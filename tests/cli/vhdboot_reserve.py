#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Give an image file the reserve vhdboot.efi adds in rw mode (the layout
of lib/reserve.h), written independently of the C code so tests compare
two readings of the documentation.

  vhdboot_reserve.py add FILE BYTES     grow FILE by a reserve of BYTES
  vhdboot_reserve.py show FILE          print "L P T" from a valid record
"""
import struct, sys, zlib

def add(path, reserve):
    with open(path, 'r+b') as f:
        data_end = f.seek(0, 2)
        f.seek(0)
        is_vhdx = f.read(8) == b'vhdxfile'
        tail = 0 if is_vhdx else 512
        footer = b''
        if tail:
            f.seek(data_end - 512)
            footer = f.read(512)
        phys = data_end + reserve + 512 + tail
        rec = b'VHDBOOTR' + struct.pack('<IIQQ', 1, tail, phys, data_end)
        rec += struct.pack('<I', zlib.crc32(rec))
        rec = rec.ljust(512, b'\0')
        f.truncate(phys - 512 - tail)
        f.seek(phys - 512 - tail)
        f.write(rec + footer)

def show(path):
    with open(path, 'rb') as f:
        size = f.seek(0, 2)
        for tail in (0, 512):
            if size < tail + 1024:
                continue
            f.seek(size - tail - 512)
            rec = f.read(512)
            if rec[:8] != b'VHDBOOTR' or struct.unpack('<I', rec[32:36])[0] != zlib.crc32(rec[:32]):
                continue
            ver, t, p, l = struct.unpack('<IIQQ', rec[8:32])
            if ver == 1 and t == tail and p == size:
                print(l, p, t)
                return 0
    print('none')
    return 1

if __name__ == '__main__':
    if sys.argv[1] == 'add':
        add(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(show(sys.argv[2]))
