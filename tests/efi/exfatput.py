#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Put files into an exFAT file system image without mounting it.

mkfs.exfat (exfatprogs) makes the file system; nothing in Debian writes
files into an unmounted exFAT image, and mounting needs root. This writes
the structures the exFAT specification describes: the allocation bitmap,
FAT chains (or NoFatChain for contiguous files), and directory entry sets
(File, Stream Extension, File Name) with their set checksum and name hash.
fsck.exfat -n accepts the result (the tests check that).

    exfatput.py IMAGE[@OFFSET] mkdir PATH [--chain]
    exfatput.py IMAGE[@OFFSET] put SRC PATH [--fragments N] [--chain]
    exfatput.py IMAGE[@OFFSET] get PATH DEST      (read a file back)
    exfatput.py IMAGE[@OFFSET] mkdir PATH + put SRC PATH ...   (several at once)

--fragments N spreads the file over N runs of clusters with a free cluster
between runs (so the file needs a FAT chain); --chain writes a FAT chain
even for a contiguous file or directory (NoFatChain clear). Paths use '/'.
"""
import struct
import sys


class ExFat:
    def __init__(self, path, offset):
        self.f = open(path, "r+b")
        self.base = offset
        boot = self.read(0, 512)
        if boot[3:11] != b"EXFAT   ":
            raise SystemExit(f"{path}@{offset}: not an exFAT file system")
        (self.fat_off, self.fat_len, self.heap_off, self.count,
         self.root) = struct.unpack_from("<IIIII", boot, 80)
        self.bps = 1 << boot[108]
        self.cs = self.bps << boot[109]
        self.fat_off *= self.bps
        self.heap_off *= self.bps
        self.bitmap_cluster = self.bitmap_len = None
        self.upcase = {}
        for off, e in self.dir_entries(self.root, None):
            if e[0] == 0x81:
                self.bitmap_cluster, self.bitmap_len = struct.unpack_from("<IQ", e, 20)
            elif e[0] == 0x82:
                cl, ln = struct.unpack_from("<IQ", e, 20)
                self.load_upcase(self.read_chain(cl, ln))
        if self.bitmap_cluster is None:
            raise SystemExit("no allocation bitmap in the root directory")
        self.bitmap = bytearray(self.read_chain(self.bitmap_cluster, self.bitmap_len))

    # -- raw access ---------------------------------------------------------
    def read(self, off, n):
        self.f.seek(self.base + off)
        return self.f.read(n)

    def write(self, off, data):
        self.f.seek(self.base + off)
        self.f.write(data)

    def coff(self, c):
        return self.heap_off + (c - 2) * self.cs

    def fat_get(self, c):
        return struct.unpack("<I", self.read(self.fat_off + 4 * c, 4))[0]

    def fat_set(self, c, v):
        self.write(self.fat_off + 4 * c, struct.pack("<I", v))

    def chain(self, first, length=None, contiguous=False):
        n = None if length is None else max(1, -(-length // self.cs))
        c, out = first, []
        while True:
            out.append(c)
            if n is not None and len(out) == n:
                return out
            if contiguous:
                c += 1
                continue
            nxt = self.fat_get(c)
            if nxt >= 0xFFFFFFF7:
                return out
            c = nxt

    def read_chain(self, first, length):
        data = b"".join(self.read(self.coff(c), self.cs) for c in self.chain(first, length))
        return data[:length]

    def load_upcase(self, table):
        chars = struct.unpack(f"<{len(table) // 2}H", table)
        i = code = 0
        while i < len(chars):
            if chars[i] == 0xFFFF and i + 1 < len(chars):
                code += chars[i + 1]   # a run of identity mappings
                i += 2
                continue
            if chars[i] != code:
                self.upcase[code] = chars[i]
            code += 1
            i += 1

    def up(self, ch):
        return self.upcase.get(ch, ch)

    # -- directories -------------------------------------------------------
    def dir_clusters(self, first, size, contiguous):
        return self.chain(first, size if contiguous else None, contiguous)

    def dir_entries(self, first, size, contiguous=False):
        for c in self.dir_clusters(first, size, contiguous):
            block = self.read(self.coff(c), self.cs)
            for i in range(0, self.cs, 32):
                yield self.coff(c) + i, block[i:i + 32]

    def find(self, dir_loc, name):
        first, size, contiguous = dir_loc
        want = [self.up(ord(ch)) for ch in name]
        entries = list(self.dir_entries(first, size, contiguous))
        for i, (off, e) in enumerate(entries):
            if e[0] == 0:
                break
            if e[0] != 0x85:
                continue
            count = e[1]
            stream = entries[i + 1][1]
            nlen = stream[3]
            chars = []
            for k in range(count - 1):
                ne = entries[i + 2 + k][1]
                chars += struct.unpack("<15H", ne[2:32])
            got = [self.up(ch) for ch in chars[:nlen]]
            if got == want:
                flags = stream[1]
                cl, = struct.unpack_from("<I", stream, 20)
                ln, = struct.unpack_from("<Q", stream, 24)
                return (cl, ln, bool(flags & 2)), struct.unpack_from("<H", e, 4)[0]
        return None, None

    def resolve_dir(self, parts):
        loc = (self.root, None, False)
        for p in parts:
            loc, attr = self.find(loc, p)
            if loc is None or not attr & 0x10:
                raise SystemExit(f"no directory {p}")
        return loc

    # -- allocation -------------------------------------------------------
    def is_free(self, c):
        i = c - 2
        return not self.bitmap[i // 8] & (1 << (i % 8))

    def mark(self, c):
        i = c - 2
        self.bitmap[i // 8] |= 1 << (i % 8)

    def allocate(self, n, fragments=1):
        """n clusters in `fragments` runs separated by one free cluster."""
        runs, sizes = [], [n // fragments + (1 if k < n % fragments else 0)
                           for k in range(fragments)]
        c = 2
        for want in sizes:
            if want == 0:
                continue
            while True:   # first fit of `want` free clusters after c
                if c + want - 1 > self.count + 1:
                    raise SystemExit("exFAT image full")
                if all(self.is_free(c + k) for k in range(want)):
                    break
                c += 1
            runs.append(list(range(c, c + want)))
            for k in range(want):
                self.mark(c + k)
            c += want + 1   # leave a gap: the next run is not adjacent
        return [c for run in runs for c in run]

    def write_chain_fat(self, clusters):
        for a, b in zip(clusters, clusters[1:]):
            self.fat_set(a, b)
        self.fat_set(clusters[-1], 0xFFFFFFFF)

    def flush_bitmap(self):
        for k, c in enumerate(self.chain(self.bitmap_cluster, self.bitmap_len)):
            self.write(self.coff(c), bytes(self.bitmap[k * self.cs:(k + 1) * self.cs]))

    # -- entry sets ---------------------------------------------------------
    def name_hash(self, name):
        h = 0
        for ch in name:
            u = self.up(ord(ch))
            for b in (u & 0xFF, u >> 8):
                h = (((h & 1) << 15) | (h >> 1)) + b
                h &= 0xFFFF
        return h

    def entry_set(self, name, attr, first, length, contiguous):
        units = [ord(ch) for ch in name]
        if not units or len(units) > 255 or any(u > 0xFFFF for u in units):
            raise SystemExit(f"bad name {name!r}")
        nname = -(-len(units) // 15)
        stamp = (45 << 25) | (1 << 21) | (1 << 16)   # 2025-01-01 00:00:00
        f = bytearray(32)
        f[0], f[1] = 0x85, 1 + nname
        struct.pack_into("<HHIII", f, 4, attr, 0, stamp, stamp, stamp)
        s = bytearray(32)
        s[0], s[1], s[3] = 0xC0, 1 | (2 if contiguous else 0), len(units)
        struct.pack_into("<H", s, 4, self.name_hash(name))
        struct.pack_into("<Q", s, 8, length)
        struct.pack_into("<IQ", s, 20, first, length)
        names = []
        for k in range(nname):
            ne = bytearray(32)
            ne[0] = 0xC1
            chunk = units[15 * k:15 * k + 15]
            chunk += [0] * (15 - len(chunk))
            struct.pack_into("<15H", ne, 2, *chunk)
            names.append(ne)
        entries = bytearray(f + s + b"".join(names))
        total = 0
        for i, b in enumerate(entries):
            if i in (2, 3):
                continue
            total = ((((total & 1) << 15) | (total >> 1)) + b) & 0xFFFF
        struct.pack_into("<H", entries, 2, total)
        return bytes(entries)

    def insert(self, dir_loc, entries):
        first, size, contiguous = dir_loc
        need = len(entries) // 32
        run, start = 0, None
        for off, e in self.dir_entries(first, size, contiguous):
            if e[0] & 0x80:
                run, start = 0, None
                continue
            if start is None or off != start + 32 * run:
                start, run = off, 0
            run += 1
            if run == need:
                self.write(start, entries)
                return
        raise SystemExit("directory full (this tool does not grow directories)")

    def add(self, path, data, attr, fragments=1, chain=False):
        parts = [p for p in path.split("/") if p]
        parent = self.resolve_dir(parts[:-1])
        n = max(1, -(-len(data) // self.cs))
        clusters = self.allocate(n, fragments) if data or attr & 0x10 else []
        contiguous = bool(clusters) and fragments == 1 and not chain
        if clusters and not contiguous:
            self.write_chain_fat(clusters)
        for k, c in enumerate(clusters):
            block = data[k * self.cs:(k + 1) * self.cs]
            self.write(self.coff(c), block + bytes(self.cs - len(block)))
        first = clusters[0] if clusters else 0
        self.insert(parent, self.entry_set(parts[-1], attr, first, len(data), contiguous))
        self.flush_bitmap()
        return clusters


def run(fs, cmd, rest):
    chain = "--chain" in rest
    fragments = 1
    if "--fragments" in rest:
        fragments = int(rest[rest.index("--fragments") + 1])
    if cmd == "mkdir":
        fs.add(rest[0], bytes(fs.cs), 0x10, chain=chain)
    elif cmd == "get":
        parts = [p for p in rest[0].split("/") if p]
        loc, attr = fs.find(fs.resolve_dir(parts[:-1]), parts[-1])
        if loc is None:
            raise SystemExit(f"no file {rest[0]}")
        first, length, contiguous = loc
        clusters = fs.chain(first, length, contiguous) if length else []
        with open(rest[1], "wb") as out:
            for c in clusters:
                out.write(fs.read(fs.coff(c), fs.cs))
            out.truncate(length)
    elif cmd == "put":
        with open(rest[0], "rb") as src:
            data = src.read()
        fs.add(rest[1], data, 0x20, fragments=fragments, chain=chain)
    else:
        raise SystemExit(f"unknown command {cmd}")


def main(argv):
    """Commands may be chained with '+': IMAGE mkdir /a + put x /a/x."""
    if len(argv) < 3:
        raise SystemExit(__doc__)
    image, _, off = argv[0].partition("@")
    fs = ExFat(image, int(off or 0))
    words = argv[1:]
    while words:
        n = words.index("+") if "+" in words else len(words)
        run(fs, words[0], words[1:n])
        words = words[n + 1:]


if __name__ == "__main__":
    main(sys.argv[1:])
