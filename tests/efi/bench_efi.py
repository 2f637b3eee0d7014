#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Measurements of vhdboot.efi under qemu TCG (not a test; run by hand).

1. Boot time: the same inner disk booted directly (as qemu's disk) and
   through the loader (fixed and dynamic VHD), interleaved, ROUNDS rounds;
   medians of the time from qemu's start to the payload's first line and to
   power-off, and of qemu's CPU time.
2. The rw reserve: the first rw boot of a dynamic VHD with a large virtual
   disk on a FAT32 host, with the default reserve and with the one the
   loader used to make (room for every block the disk could still need),
   both limited by the host's free space; time to the payload's first line.
3. Read throughput: the payload reads a BIG_MIB MiB file from a 256 MiB
   inner disk, directly and through the loader from a dynamic VHD (mapped
   extents, and whole in memory); the time between the payload's
   PAYLOAD-BENCH-START and PAYLOAD-BENCH lines as they arrive on the serial
   port (reads only; a second pass checks the CRC).

4. Issue 13: the read throughput of 3. through the loader from a FAT32, an
   ext4 and an NTFS host partition of one disk (hostfs); and the time from
   the loader's start to its "starting" line for a 16 GiB dynamic VHDX with
   MAP_GIB GiB of blocks on ext4, its file contiguous and fragmented
   (mapcost: needs about 12 GiB in TMPDIR, so point TMPDIR at a disk).

    VHDBOOT_EFI=... PAYLOAD_EFI=... VHDTOOL=... bench_efi.py [ROUNDS] [boot] [reserve] [read]
        [hostfs] [mapcost]
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402

BIG_MIB = 192
PASSES = 8
MAP_GIB = 2


def boot_times(env, rounds):
    data = T.pattern(5 * T.MIB, 1)
    raw, _ = T.inner_disk(env, "inner.raw", "BENCH", data)
    fixed, dyn = env.path("fixed.vhd"), env.path("dyn.vhd")
    T.convert(env, raw, fixed, "vhd", "fixed")
    T.convert(env, raw, dyn, "vhd", "dynamic")
    host = T.HostDisk(env, esp_mib=100)
    host.esp.put(fixed, "/VHD/fixed.vhd")
    host.esp.put(dyn, "/VHD/dyn.vhd")
    ways = {
        "direct (inner disk as qemu's disk)": ([raw], None),
        "loader, fixed VHD": ([host.path], "image=\\VHD\\fixed.vhd\nmode=ro\n"),
        "loader, dynamic VHD": ([host.path], "image=\\VHD\\dyn.vhd\nmode=ro\n"),
    }
    got = {k: [] for k in ways}
    for r in range(rounds):
        for name, (disks, cfg) in ways.items():
            if cfg:
                host.config(cfg)
            b = T.boot(env, disks, snapshot=True)
            ok = not T.expect_payload(b, "BENCH", data,
                                      device_prefix=None if cfg is None else "VenHw(")
            got[name].append((b.time_of("PAYLOAD-MARKER"), b.wall, b.cpu, ok))
            print(f"  round {r + 1}: {name}: payload at {b.time_of('PAYLOAD-MARKER'):.2f}s, "
                  f"off at {b.wall:.2f}s, cpu {b.cpu:.2f}s{'' if ok else ' (FAILED)'}",
                  flush=True)
    print("\nBoot time, medians over %d rounds:" % rounds)
    print("| way | qemu start -> payload | qemu start -> power-off | qemu CPU |")
    print("|---|---|---|---|")
    for name, rows in got.items():
        m = [statistics.median(x[i] for x in rows) for i in range(3)]
        print(f"| {name} | {m[0]:.2f} s | {m[1]:.2f} s | {m[2]:.2f} s |")


def reserve_times(env, rounds):
    data = T.pattern(5 * T.MIB, 3)
    raw, _ = T.inner_disk(env, "wide.raw", "BENCH-RSV", data, size=2048 * T.MIB)
    dyn = env.path("wide.vhd")
    T.convert(env, raw, dyn, "vhd", "dynamic")
    os.unlink(raw)
    info = json.loads(env.vhdtool_run("info", "--json", dyn))
    free_blocks = info["total-blocks"] - info["allocated-blocks"]
    old = free_blocks * (info["block-size"] + 512) + 512   # the old reserve_default
    host = T.HostDisk(env, name="rsvhost.img", esp_mib=1200)
    host.esp.put(dyn, "/VHD/wide.vhd")
    ways = {"default reserve": "", f"old default ({old >> 20} MiB asked)": f"reserve={old}\n"}
    got = {k: [] for k in ways}
    for r in range(rounds):
        for name, extra in ways.items():
            host.config(f"image=\\VHD\\wide.vhd\nmode=rw\n{extra}")
            b = T.boot(env, [host.path], snapshot=True, timeout=900)
            ok = not T.expect_payload(b, "BENCH-RSV", data, device_prefix="VenHw(")
            grew = next((l for l in b.lines if "grew by" in l or "reserve limited" in l), "")
            got[name].append(b.time_of("PAYLOAD-MARKER"))
            print(f"  round {r + 1}: {name}: payload at {b.time_of('PAYLOAD-MARKER')}s "
                  f"{'' if ok else '(FAILED) '}{grew.strip()}", flush=True)
    print("\nFirst rw boot of a 2 GiB dynamic VHD on a 1200 MiB FAT32 ESP, medians:")
    print("| reserve | qemu start -> payload |")
    print("|---|---|")
    for name, rows in got.items():
        rows = [x for x in rows if x is not None]
        print(f"| {name} | {statistics.median(rows):.2f} s |" if rows else f"| {name} | - |")


def throughput(env, rounds):
    raw, dyn, want = big_image(env)
    host = T.HostDisk(env, name="bighost.img", esp_mib=300)
    host.esp.put(dyn, "/VHD/big.vhd")
    ways = {
        "direct (raw inner disk, OVMF virtio-blk)": ([raw], None),
        "loader, dynamic VHD, mapped extents": ([host.path], "image=\\VHD\\big.vhd\n"
                                                f"mode=ro\nargs=bench=\\BIG.BIN passes={PASSES}\n"),
        "loader, dynamic VHD, in memory (backend=ram)": ([host.path], "image=\\VHD\\big.vhd\n"
                                                         "mode=ro\nbackend=ram\n"
                                                         f"args=bench=\\BIG.BIN passes={PASSES}\n"),
    }
    read_rates(env, host, ways, rounds, want)


def read_rates(env, host, ways, rounds, want):
    """Boots every way (disks, vhdboot.cfg or None) rounds times,
    interleaved, and prints the payload's read rate of the big file."""
    got = {k: [] for k in ways}
    for r in range(rounds):
        for name, (disks, cfg) in ways.items():
            if cfg:
                host.config(cfg)
            # Booted directly, the payload takes its options from \OPTIONS.TXT.
            b = T.boot(env, disks, snapshot=True, memory=1024)
            t0, t1 = b.time_of("PAYLOAD-BENCH-START"), b.time_of("PAYLOAD-BENCH-READ:")
            res = (b.value("PAYLOAD-BENCH") or "").lower()
            if t0 is None or t1 is None or res != want:
                lines = [l for l in b.lines if l.startswith("vhdboot:")]
                print(f"  round {r + 1}: {name}: FAILED ({res!r}) {lines}", flush=True)
                continue
            rate = BIG_MIB * PASSES / (t1 - t0)
            got[name].append(rate)
            print(f"  round {r + 1}: {name}: {t1 - t0:.2f}s, {rate:.1f} MiB/s", flush=True)
    print(f"\nReading a {BIG_MIB} MiB file {PASSES} times in the guest (payload, 1 MiB "
          "reads), medians:")
    print("| way | MiB/s |")
    print("|---|---|")
    for name, rates in got.items():
        print(f"| {name} | {statistics.median(rates):.1f} |" if rates else f"| {name} | - |")


def big_image(env):
    """The 256 MiB inner disk holding BIG_MIB MiB to read, as a dynamic VHD."""
    big = T.pattern(BIG_MIB * T.MIB, 2)
    raw, _ = T.inner_disk(env, "big.raw", "BENCH-BIG", b"x", size=256 * T.MIB,
                          extra={"/BIG.BIN": big,
                                 "/OPTIONS.TXT": f"bench=\\BIG.BIN passes={PASSES}\n".encode()})
    dyn = env.path("big.vhd")
    T.convert(env, raw, dyn, "vhd", "dynamic")
    return raw, dyn, f"bytes={len(big)} crc32={T.crc32(big):08x}"


def hostfs_throughput(env, rounds):
    """The same image read from FAT32, ext4 and NTFS host partitions."""
    _, dyn, want = big_image(env)
    host = T.HostDisk(env, name="fshost.img", esp_mib=300,
                      more=[(300, "8300", "ext4"), (300, "0700", "NTFS")])
    host.esp.put(dyn, "/VHD/big.vhd")
    (e_start, e_size, _), (n_start, n_size, _) = host.layout[1:3]
    ext = T.Ext4Volume(env, "bext4", e_size)
    ext.add(dyn, "/VHD/big.vhd", dense=True)
    ext.build()
    ext.place(host.path, e_start)
    ntfs = T.NtfsVolume(env, "bntfs", n_size, start=n_start)
    ntfs.mount()
    try:
        ntfs.add(dyn, "/VHD/big.vhd")
    finally:
        ntfs.umount()
    ntfs.place(host.path, n_start)
    args = f"args=bench=\\BIG.BIN passes={PASSES}\n"
    fb = T.fallback_disk(env)        # a failed loader ends the boot at once
    ways = {f"loader, dynamic VHD on {fs}": ([host.path, fb], f"partition={part}\n"
                                            f"image=\\VHD\\big.vhd\nmode=ro\n{args}")
            for fs, part in (("FAT32", 1), ("ext4", 2), ("NTFS", 3))}
    read_rates(env, host, ways, rounds, want)


def mapping_cost(env, rounds):
    """Loader start -> "starting" line for a 16 GiB dynamic VHDX whose file
    holds MAP_GIB GiB of blocks, on ext4 contiguous (mkfs.ext4 -d) and
    fragmented (debugfs write into 128 KiB gaps), prepared; a small image
    as the baseline; ro and rw (rw also checks that every byte of the file
    is written data and finds the reserve). One boot per round (disk in
    snapshot mode): the fallback payload runs the loader once per image
    and mode (args=return); the time is from its PAYLOAD-CHAIN line to the
    loader's "starting" line."""
    data = T.pattern(T.MIB, 5)
    raw, _ = T.inner_disk(env, "m16.raw", "BENCH-MAP", data, size=16 << 30)
    big = env.path("m16.vhdx")
    T.convert(env, raw, big, "vhdx", "dynamic", block="2M")
    os.unlink(raw)
    cmds = []
    for b in range(MAP_GIB * 512):             # every 4th block from 1 GiB on
        cmds += ["-c", f"write -P 0x61 {(1 << 30) + b * 8 * T.MIB} 2M"]
    T.run(["qemu-io", "-t", "unsafe", "-f", "vhdx", *cmds, big])
    env.vhdtool_run("boot-prepare", big)
    small = env.path("small.vhdx")
    raw, _ = T.inner_disk(env, "small.raw", "BENCH-MAP", data)
    T.convert(env, raw, small, "vhdx", "dynamic", block="2M")
    env.vhdtool_run("boot-prepare", small)
    size = os.path.getsize(big)
    gap = 128 * 1024
    part_mib = (3 * size + (1 << 30)) >> 20
    host = T.HostDisk(env, name="maphost.img", esp_mib=100, more=[(part_mib, "8300", "ext4")])
    start, psize, _ = host.layout[1]
    ext = T.Ext4Volume(env, "mext4", psize)
    ext.add(small, "/small.vhdx", dense=True)
    ext.add(big, "/contiguous.vhdx", dense=True)
    fillers = [f"/fill/{i // 1000}/{i:06d}" for i in range(2 * size // gap + 16)]
    for f in fillers:
        ext.add_bytes(b"\x77" * gap, f)
    ext.build()
    ext.remove(*fillers[::2])
    ext.write(big, "/fragmented.vhdx", dense=True)
    counts = {p: len(ext.extents(p)) for p in ("/small.vhdx", "/contiguous.vhdx",
                                                 "/fragmented.vhdx")}
    print(f"  file {size >> 20} MiB; extents: {counts}", flush=True)
    ext.place(host.path, start)
    names = [(n, m) for m in ("ro", "rw")
             for n in ("small.vhdx", "contiguous.vhdx", "fragmented.vhdx")]
    chain = [f"partition=2 image=\\{n} mode={m} args=return" for n, m in names]
    host.no_config()
    fb = T.fallback_disk(env, chain=chain)
    got = {n: [] for n in names}
    for r in range(rounds):
        b = T.boot(env, [host.path, fb], timeout=900, snapshot=True)
        runs = T.chain_runs(b)
        for i, n in enumerate(names):
            t0 = b.time_of(f"PAYLOAD-CHAIN {i}:")
            t1 = next((t for line, t in zip(b.lines, b.times)
                       if f"mode {n[1]}" in line and "; starting" in line
                       and line in (runs[i][1] if i < len(runs) else [])), None)
            if t0 is None or t1 is None:
                print(f"  round {r + 1}: {n}: FAILED "
                      f"{[l for l in b.lines if l.startswith('vhdboot:')]}", flush=True)
                continue
            got[n].append(t1 - t0)
            print(f"  round {r + 1}: {n[0]} {n[1]}: {t1 - t0:.3f}s", flush=True)
    print(f"\nLoader start -> starting the boot program, 16 GiB dynamic VHDX with "
          f"{MAP_GIB} GiB of blocks on ext4, medians:")
    print("| image | mode | extents | seconds |")
    print("|---|---|---|---|")
    for (n, m), t in got.items():
        ext_n = counts["/" + n]
        print(f"| {n} | {m} | {ext_n} | {statistics.median(t):.3f} |" if t
              else f"| {n} | {m} | {ext_n} | - |")


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    parts = sys.argv[2:] or ["boot", "read"]
    env = T.Env()
    try:
        print(f"load average: {os.getloadavg()}")
        if "boot" in parts:
            boot_times(env, rounds)
        if "reserve" in parts:
            reserve_times(env, rounds)
        if "read" in parts:
            throughput(env, rounds)
        if "hostfs" in parts:
            hostfs_throughput(env, rounds)
        if "mapcost" in parts:
            mapping_cost(env, rounds)
        print(f"load average: {os.getloadavg()}")
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
