#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Benchmark (not a test; run by hand): the busybox root of linuxkit.py
booted N times each (LINUXBOOT_REPEAT, default 3) from a raw partition,
from a dynamic VHD and a dynamic VHDX (32 MiB and 2 MiB blocks) through
vhdboot.efi + nbdkit (NBD path) and from a fixed VHD through vhdboot.efi +
device-mapper, in one run. Prints the median time from QEMU start to the
root's marker, the time of the root's first writes (8 MiB and a sync),
and the median sequential write (fsync'd) and read (caches dropped) time
of a LINUXBOOT_BENCH_MIB (default 32) MiB file on the root, as ratios to
the raw partition, with the root disk's read-ahead and request size. TCG:
the figures are CPU-bound and only their ratios mean anything.
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
    if os.environ.get("LINUXBOOT_BENCH_MAXKB"):   # the root disk's max request, KiB
        bench += f" vhdtest.maxkb={os.environ['LINUXBOOT_BENCH_MAXKB']}"
    figures = {}
    queues = {}

    def record(name, b, problems):
        t = b.time_of("LINUXBOOT-ROOT-MARKER")
        v = b.value("LINUXBOOT-BENCH") or ""
        f = dict(kv.split("=") for kv in v.split())
        if t is None or "write_s" not in f:
            problems.append("no marker or no bench line")
            return
        # From the marker to the end of the first writes (8 MiB and sync):
        # where the first allocations of a new root are paid.
        w = b.time_of("LINUXBOOT-WRITTEN")
        log = os.environ.get("LINUXBOOT_BENCH_LOG")
        if log:   # every serial line with its time, to see where a boot spends it
            with open(log, "a") as out:
                out.write(f"=== {name}\n")
                out.writelines(f"{tl:8.3f} {line}\n" for line, tl in zip(b.lines, b.times))
        first = w - t if w is not None else float("nan")
        # Attached to marker: mounting the root rw, its first writes with FUA.
        a = b.time_of("LINUXBOOT-ATTACHED")
        mount = t - a if a is not None else float("nan")
        figures.setdefault(name, []).append((t, float(f["write_s"]), float(f["read_s"]), first,
                                             mount))
        queues.setdefault(name, f"read-ahead {f.get('ra_kb', '?')} KiB, max request {f.get('max_kb', '?')} KiB")

    uki = s.kit.uki(env.path("linux-bench.efi"), s.initrd,
                    L.cmdline("/dev/vda2", f"vhdtest.direct=1 {bench}"))
    disk = env.path("direct.raw")
    E.run(["cp", "--sparse=always", s.inner, disk])
    start, _ = L.gpt_partition(disk, 1, 512)
    E.Fat(disk, start).put(uki, "/EFI/BOOT/BOOTX64.EFI")
    # The VHDX twice: on the host's FAT (no sparse files) a new block's
    # every byte is written when the file grows, so the block size is
    # what the first writes cost.
    cases = [("raw-partition", None, None, None, None),
             ("nbd (dynamic VHD)", "vhd", "dynamic", "@nbdkit", None),
             ("nbd (dynamic VHDX)", "vhdx", "dynamic", "@nbdkit", None),
             ("nbd (dynamic VHDX, 2 MiB blocks)", "vhdx", "dynamic", "@nbdkit", "2M"),
             ("device-mapper (fixed VHD)", "vhd", "fixed", "none", None)]
    for name, fmt, kind, server, block in cases:
        host = None
        if kind:
            img = env.path(f"root.{fmt}")
            if os.path.exists(img):
                os.unlink(img)
            E.convert(env, s.inner, img, fmt, kind, block)
            host = s.host(kind, [img])
        for i in range(n):
            if host:
                host.config(f"image=\\VHD\\root.{fmt}\nmode=rw\nargs={s.args} {bench}\n")
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
    for name, *_ in cases:
        rows = figures.get(name)
        if not rows:
            continue
        med = [statistics.median(r[k] for r in rows) for k in range(5)]
        base = base or med
        E.say(f"# {name}: root marker {med[0]:.1f}s, attach to marker {med[4]:.2f}s, "
              f"first 8 MiB + sync {med[3]:.2f}s, "
              f"write {mib} MiB {med[1]:.2f}s ({med[1] / base[1]:.2f}x raw), "
              f"read {med[2]:.2f}s ({med[2] / base[2]:.2f}x raw) [median of {len(rows)}; "
              f"{queues.get(name)}]")


if __name__ == "__main__":
    sys.exit(E.main(body))
