#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Boot a busybox Linux root from inside VHD images through vhdboot.efi and
vhdboot-attach (OVMF, TCG, serial console), and check the images on the
host afterwards (linuxkit.py). Cases:

  raw-partition  the same disk booted directly (no vhdboot): the baseline
                 of the boot time
  vhd-dynamic-rw dynamic VHD, mode rw: nbdkit + the plugin + nbd-client
  vhd-fixed-rw   fixed VHD, mode rw: a device-mapper linear table
  vhd-fixed-cmdline  the same, but vhdboot.image=UUID=<FAT serial>:<path>
                 on the kernel command line replaces the record: the host
                 partition found by its file system UUID, the extents by
                 FIBMAP (vfat has no FIEMAP)

After each image boot: the root marker, the server named @nbdkit (a root
storage daemon) or none, vhdtool check, qemu-img compare against
vhdtool's raw copy, e2fsck -fn, the guest's file and 8 MiB hash read back
with debugfs, the host FAT not dirty. After the rw boot of the dynamic
image, the shutdown (vhdboot-attach --detach) has given the image written
room for the next firmware boot again: a reserve with at least the
default rule's free bytes (docs/efi-loader.md, reserve=auto), though the
boot allocated blocks from the one the loader made. LINUXBOOT_REPEAT=N boots each case N
times and prints the median time to the root marker.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E


def default_reserve(info):
    """reserve=auto as docs/efi-loader.md states it: 4 blocks or 64 MiB,
    whichever is larger, at most the blocks still unallocated; each block
    with its VHD sector bitmap, plus a sector (plus 2 MiB for VHDX)."""
    bs = info["block-size"]
    blocks = min(max(4, (64 << 20) // bs), max(0, info["total-blocks"] - info["allocated-blocks"]))
    extra = (2 << 20) if info["format"] == "vhdx" else 0
    return blocks * (bs + (bs // 4096 + 511) // 512 * 512) + 512 + extra


def reserve_prepared(env, b, image, problems):
    info = json.loads(E.run([env.vhdtool, "info", "--json", image]))
    want = default_reserve(info)
    free = (info.get("reserve") or {}).get("free", 0)
    if free < want:
        problems.append(f"after the shutdown the reserve has {free} bytes free, "
                        f"the default rule asks {want}")
    if not b.has("prepared for the next rw boot"):
        problems.append("the detach did not report preparing the image")


def body(env, results):
    s = L.Setup(env)
    repeat = int(os.environ.get("LINUXBOOT_REPEAT", "1"))

    for i in range(repeat):
        disk = env.path("direct.raw")
        E.run(["cp", "--sparse=always", s.inner, disk])
        b = E.boot(env, [disk], timeout=900, memory=1024)
        problems = []
        L.expect_root(b, problems, "none")
        t = b.time_of("LINUXBOOT-ROOT-MARKER")
        if t is not None:
            s.times.setdefault("raw-partition", []).append(t)
        results.check(f"raw-partition boot {i + 1} (root marker at {t or 0:.1f}s)", problems, b)
        os.unlink(disk)

    for name, kind, server in (("vhd-dynamic-rw", "dynamic", "@nbdkit"),
                               ("vhd-fixed-rw", "fixed", "none"),
                               ("vhd-fixed-cmdline", "fixed", "none")):
        img = env.path("root.vhd")
        if os.path.exists(img):
            os.unlink(img)
        E.convert(env, s.inner, img, "vhd", kind)
        host = s.host(name, [img])

        extra = ""
        if name == "vhd-fixed-cmdline":
            with open(host.path, "rb") as f:
                f.seek(host.esp_start + 67)   # FAT32 volume serial number
                serial = int.from_bytes(f.read(4), "little")
            extra = f"vhdboot.image=UUID={serial >> 16:04X}-{serial & 0xFFFF:04X}:/VHD/root.vhd"

        def check(b, problems, want):
            if extra and not b.has("vhdboot-attach: host partition /dev/vda1"):
                problems.append("the host partition was not found by its UUID")
            back, = s.fetch(host, ["root.vhd"], "back")
            L.read_back(env, s.kit, back, want, problems, "vpc")
            if kind == "dynamic":
                reserve_prepared(env, b, back, problems)

        for i in range(repeat if not extra else 1):
            s.boot(results, name, host, "root.vhd", "rw", server, extra, check=check, run=i + 1)
        os.unlink(host.path)
    s.report_times()


if __name__ == "__main__":
    sys.exit(E.main(body))
