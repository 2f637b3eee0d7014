#!/usr/bin/env python3
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

    VHDBOOT_EFI=... PAYLOAD_EFI=... VHDTOOL=... bench_efi.py [ROUNDS] [boot] [reserve] [read]
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402

BIG_MIB = 192
PASSES = 8


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
    big = T.pattern(BIG_MIB * T.MIB, 2)
    raw, _ = T.inner_disk(env, "big.raw", "BENCH-BIG", b"x", size=256 * T.MIB,
                          extra={"/BIG.BIN": big,
                                 "/OPTIONS.TXT": f"bench=\\BIG.BIN passes={PASSES}\n".encode()})
    dyn = env.path("big.vhd")
    T.convert(env, raw, dyn, "vhd", "dynamic")
    host = T.HostDisk(env, name="bighost.img", esp_mib=300)
    host.esp.put(dyn, "/VHD/big.vhd")
    want = f"bytes={len(big)} crc32={T.crc32(big):08x}"
    ways = {
        "direct (raw inner disk, OVMF virtio-blk)": ([raw], None),
        "loader, dynamic VHD, mapped extents": ([host.path], "image=\\VHD\\big.vhd\n"
                                                f"mode=ro\nargs=bench=\\BIG.BIN passes={PASSES}\n"),
        "loader, dynamic VHD, in memory (backend=ram)": ([host.path], "image=\\VHD\\big.vhd\n"
                                                         "mode=ro\nbackend=ram\n"
                                                         f"args=bench=\\BIG.BIN passes={PASSES}\n"),
    }
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
                print(f"  round {r + 1}: {name}: FAILED ({res!r})", flush=True)
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
        print(f"load average: {os.getloadavg()}")
    finally:
        env.cleanup()


if __name__ == "__main__":
    main()
