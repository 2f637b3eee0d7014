#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark (not a test; run by hand): the busybox root of linuxkit.py
booted N times each (LINUXBOOT_REPEAT, default 3) from a raw partition,
from a dynamic VHD through vhdboot.efi + nbdkit (NBD path) and from a
fixed VHD through vhdboot.efi + device-mapper, in one run. Prints the
median time from QEMU start to the root's marker and the median
sequential write (fsync'd) and read (caches dropped) time of a
LINUXBOOT_BENCH_MIB (default 32) MiB file on the root, as ratios to the
raw partition. TCG: the figures are CPU-bound and only their ratios mean
anything.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E


def body(env, results):
    s = L.Setup(env)
    n = int(os.environ.get("LINUXBOOT_REPEAT", "3"))
    mib = int(os.environ.get("LINUXBOOT_BENCH_MIB", "32"))
    bench = f"vhdtest.bench={mib}"
    figures = {}

    def record(name, b, problems):
        t = b.time_of("LINUXBOOT-ROOT-MARKER")
        v = b.value("LINUXBOOT-BENCH") or ""
        f = dict(kv.split("=") for kv in v.split())
        if t is None or "write_s" not in f:
            problems.append("no marker or no bench line")
            return
        figures.setdefault(name, []).append((t, float(f["write_s"]), float(f["read_s"])))

    uki = s.kit.uki(env.path("linux-bench.efi"), s.initrd,
                    L.cmdline("/dev/vda2", f"vhdtest.direct=1 {bench}"))
    disk = env.path("direct.raw")
    E.run(["cp", "--sparse=always", s.inner, disk])
    start, _ = L.gpt_partition(disk, 1, 512)
    E.Fat(disk, start).put(uki, "/EFI/BOOT/BOOTX64.EFI")
    cases = [("raw-partition", None, None), ("nbd (dynamic VHD)", "dynamic", "@nbdkit"),
             ("device-mapper (fixed VHD)", "fixed", "none")]
    for name, kind, server in cases:
        host = None
        if kind:
            img = env.path("root.vhd")
            if os.path.exists(img):
                os.unlink(img)
            E.convert(env, s.inner, img, "vhd", kind)
            host = s.host(kind, [img])
        for i in range(n):
            if host:
                host.config(f"image=\\VHD\\root.vhd\nmode=rw\nargs={s.args} {bench}\n")
                b = E.boot(env, [host.path], timeout=900, memory=1024)
            else:
                b = E.boot(env, [disk], timeout=900, memory=1024)
            problems = []
            L.expect_root(b, problems, server)
            record(name, b, problems)
            results.check(f"{name} run {i + 1}", problems, b)
        if host:
            os.unlink(host.path)
    base = None
    for name, _, _ in cases:
        rows = figures.get(name)
        if not rows:
            continue
        med = [statistics.median(r[k] for r in rows) for k in range(3)]
        base = base or med
        E.say(f"# {name}: root marker {med[0]:.1f}s, write {mib} MiB {med[1]:.2f}s "
              f"({med[1] / base[1]:.2f}x raw), read {med[2]:.2f}s ({med[2] / base[2]:.2f}x raw)"
              f" [median of {len(rows)}]")


if __name__ == "__main__":
    sys.exit(E.main(body))
