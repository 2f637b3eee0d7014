#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdboot-attach's reading of the hand-off record and of the kernel
command line, without a machine: records encoded here from
docs/efi-handoff.md (an encoder independent of the loader's), written as
efivarfs files (4-byte attribute word first, 4096-byte chunks), decoded by
`vhdboot-attach --dry-run --efivars DIR --cmdline FILE`. Bad records and
settings must give one error line and exit 1.
"""
import os
import struct
import subprocess
import sys
import tempfile
import uuid
import zlib

ATTACH = os.environ.get("VHDBOOT_ATTACH", "")
GUID = "0b00f805-61be-4224-ac21-89e3561f90fd"


def layer(path, fmt, kind, logical, phys, vsize, extents):
    p = path.encode()
    pad = (len(p) + 7) // 8 * 8
    body = struct.pack("<IBBHQQIIQ", 40 + pad + 24 * len(extents), fmt, kind, len(p), logical,
                       phys, len(extents), 0, vsize) + p + bytes(pad - len(p))
    return body + b"".join(struct.pack("<QQQ", *e) for e in extents)


def record(layers, mode=2, part=None, start=1 << 20, size=400 << 20, fs=32, crc_delta=0):
    part = part or uuid.UUID("11111111-2222-3333-4444-555555555555")
    body = b"".join(layers)
    hdr = bytearray(112)
    hdr[0:8] = b"VHDBHOFF"
    struct.pack_into("<HHIIIIIQ", hdr, 8, 1, 112, 112 + len(body), 0, mode, len(layers), 512,
                     112 << 20)
    hdr[40:56] = uuid.UUID("99999999-8888-7777-6666-555555555555").bytes_le
    struct.pack_into("<IIQQ", hdr, 56, 1, 512, start, size)
    hdr[80:96] = part.bytes_le
    hdr[96], hdr[97] = 2, fs
    rec = bytes(hdr) + body
    crc = (zlib.crc32(rec) + crc_delta) & 0xFFFFFFFF
    return rec[:16] + struct.pack("<I", crc) + rec[20:]


def write_vars(d, rec):
    for i in range(0, len(rec), 4096):
        name = "VhdBootHandoff" + (str(i // 4096) if i else "") + "-" + GUID
        with open(os.path.join(d, name), "wb") as f:
            f.write(struct.pack("<I", 6) + rec[i:i + 4096])


def attach(d, cmdline=""):
    cl = os.path.join(d, "cmdline")
    with open(cl, "w") as f:
        f.write(cmdline + "\n")
    p = subprocess.run([ATTACH, "--dry-run", "--efivars", d, "--cmdline", cl],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


def main():
    if not os.path.exists(ATTACH):
        print(f"VHDBOOT_ATTACH does not name a built file ({ATTACH!r})")
        return 1
    failed = 0
    total = 0
    one = layer("\\VHD\\root.vhd", 2, 3, 100 << 20, 170 << 20, 112 << 20,
                [(0, (1 << 20) + 8192, 170 << 20)])
    many = layer("\\VHD\\frag.vhd", 2, 3, 100 << 20, 200 << 12, 112 << 20,
                 [(i << 12, (4 << 20) + (i << 13), 4096) for i in range(200)])
    bad_extents = layer("\\VHD\\x.vhd", 2, 3, 8192, 8192, 112 << 20,
                        [(0, 1 << 20, 4096), (8192, 2 << 20, 4096)])
    # A range with no written blocks (an ext4 unwritten extent) has the disk
    # offset 2^64 - 1 (docs/efi-handoff.md); any other offset must not wrap.
    unwritten = layer("\\VHD\\u.vhd", 2, 2, 8192, 8192, 112 << 20,
                      [(0, 1 << 20, 4096), (4096, (1 << 64) - 1, 4096)])
    wraps = layer("\\VHD\\w.vhd", 2, 2, 8192, 8192, 112 << 20,
                  [(0, 1 << 20, 4096), (4096, (1 << 64) - 2048, 4096)])

    def case(name, rec, cmdline, want_rc, *words):
        nonlocal failed, total
        total += 1
        with tempfile.TemporaryDirectory() as d:
            if rec:
                write_vars(d, rec)
            rc, out, err = attach(d, cmdline)
        problems = []
        if rc != want_rc:
            problems.append(f"exit {rc}, expected {want_rc}")
        text = out if want_rc == 0 else err
        for w in words:
            if w not in text:
                problems.append(f"no {w!r} in {text.strip()!r}")
        if want_rc != 0 and len(err.strip().splitlines()) != 1:
            problems.append(f"{len(err.strip().splitlines())} error lines: {err.strip()!r}")
        print(("FAIL " if problems else "ok   ") + name + (": " + "; ".join(problems) if problems else ""))
        failed += bool(problems)

    case("one layer", record([one]), "quiet", 0, "source=record", "mode=rw",
         "image=/VHD/root.vhd", "partuuid=11111111-2222-3333-4444-555555555555",
         "partition_start=1048576", "partition_size=419430400", "layers=1",
         "layer0=/VHD/root.vhd format=2 type=3 size=104857600 physical=178257920 extents=1")
    case("two chunks (200 extents)", record([many], mode=1), "", 0, "mode=cow", "extents=200")
    case("chain of two", record([one, many], mode=0), "", 0, "mode=ro", "layers=2",
         "layer1=/VHD/frag.vhd")
    case("command line replaces the record", record([one]),
         "a vhdboot.image=UUID=ABCD-1234:\\VHD\\x.vhd vhdboot.mode=ro b", 0,
         "source=cmdline", "mode=ro", "image=/VHD/x.vhd", "uuid=ABCD-1234", "layers=0")
    case("command line without a record", None,
         "vhdboot.image=PARTUUID=AAAAAAAA-0000-4000-8000-000000000002:VHD/y.vhdx", 0,
         "source=cmdline", "mode=rw", "image=/VHD/y.vhdx",
         "partuuid=aaaaaaaa-0000-4000-8000-000000000002")
    case("bad CRC", record([one], crc_delta=1), "", 1, "CRC")
    case("record shorter than its size", record([one])[:-24], "", 1, "total size")
    case("extents not adjacent", record([bad_extents]), "", 1, "not adjacent")
    case("no record, no setting", None, "quiet root=/dev/sda2", 1, "no hand-off record")
    case("bad mode", record([one]), "vhdboot.mode=fast", 1, "vhdboot.mode=fast")
    case("bad image setting", None, "vhdboot.image=LABEL=x:/a.vhd", 1, "vhdboot.image=")
    case("bad partition GUID", None, "vhdboot.image=PARTUUID=1234:/a.vhd", 1, "not a GUID")
    case("extent with no disk offset", record([unwritten]), "", 0, "extents=2")
    case("extent past 2^64", record([wraps]), "", 1, "not adjacent")
    for fs, name in ((2, "ext4"), (3, "ext4"), (4, "ext4"), (7, "ntfs3"), (64, "exfat"),
                     (32, "vfat"), (0, "any")):
        case(f"host file system byte {fs}", record([one], fs=fs), "", 0, f"host_fs={name}")
    case("vhdboot.fstype=ntfs", record([one]), "vhdboot.fstype=ntfs", 0, "host_fs=ntfs3")
    case("vhdboot.fstype=ntfs3", record([one], fs=4), "vhdboot.fstype=ntfs3", 0, "host_fs=ntfs3")
    case("bad vhdboot.fstype", record([one]), "vhdboot.fstype=btrfs", 1, "vhdboot.fstype=btrfs")
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
