#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""rw on a server-sized disk (issue 12): a 16 GiB dynamic VHDX on a 2 GiB
host ESP (far less free space than the virtual disk), booted rw twice
through vhdboot.efi and vhdboot-attach; each boot writes 256 MiB of random
data with its hash and syncs. Afterwards, on the host: both boots reached
the marker with no failed write, the second boot's data reads back
(debugfs on a sparse raw conversion), vhdtool check exits 0 (the unused
reserve is reported as reserve, not as a leak), and the image file grew by
about what the guest wrote, not by the virtual size. The time from QEMU's
start to the root marker of each boot is printed: the reserve must not
cost seconds of zero-writing; a third boot with reserve=0 gives the
comparison.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E
GIB = 1024 * L.MIB
VIRTUAL = 16 * GIB
HOST_ESP_MIB = 2048
WRITE_MIB = 256
# Few inodes (one per MiB) and a small journal: the inode tables stay
# small, so neither mkfs nor the guest's lazy init writes much of a 15 GiB
# file system. The image still starts at ~650 MiB: the block groups'
# metadata and superblock copies touch about 20 of its 32 MiB blocks, hence
# a 2 GiB host ESP (still far less than the 16 GiB virtual disk).
MKFS = ("-i", str(1 << 20), "-J", "size=16", "-E", "lazy_itable_init=0,lazy_journal_init=1")


def disk_usage(path):
    return os.stat(path).st_blocks * 512


def body(env, results):
    if not env.vhdx_supported():
        raise E.Skip("vhdtool cannot write VHDX")
    s = L.Setup(env)
    inner, guid = s.kit.inner_disk("big.raw", s.uki, size=VIRTUAL, mkfs_opts=MKFS)
    E.say(f"# inner disk: {VIRTUAL >> 30} GiB, {disk_usage(inner) >> 20} MiB on disk")
    s.args = L.cmdline(f"PARTUUID={guid}", f"vhdtest.bigmib={WRITE_MIB}")
    img = env.path("big.vhdx")
    E.convert(env, inner, img, "vhdx", "dynamic")
    os.unlink(inner)
    size0 = os.path.getsize(img)
    E.say(f"# big.vhdx before the first boot: {size0 / L.MIB:.1f} MiB")
    if size0 > HOST_ESP_MIB * L.MIB // 2:
        results.check("the image starts small", [f"big.vhdx is {size0} bytes"], None)
        return
    host = E.HostDisk(env, name="host-bigdisk.img", esp_mib=HOST_ESP_MIB)
    host.esp.put(img, "/VHD/big.vhdx")
    os.unlink(img)
    sizes = {}

    def check(run):
        def f(b, problems, want):
            back, = s.fetch(host, ["big.vhdx"], f"back{run}")
            sizes[run] = os.path.getsize(back)
            grew = sizes[run] - size0
            E.say(f"#   after boot {run}: big.vhdx {sizes[run] / L.MIB:.1f} MiB "
                  f"(+{grew / L.MIB:.1f} MiB since it was made)")
            rc, out = L.run_rc([env.vhdtool, "check", back])
            E.say("#   " + out.strip().replace("\n", "\n#   "))
            # The guest wrote WRITE_MIB per boot; ext4 may put the second
            # boot's file elsewhere, and the loader adds its reserve: room
            # for every boot's file and the default reserve (130 MiB here),
            # never the virtual size.
            limit = run * WRITE_MIB * L.MIB + 256 * L.MIB
            if grew > limit:
                problems.append(f"big.vhdx grew by {grew} bytes, more than {limit}")
            if grew < WRITE_MIB * L.MIB:
                problems.append(f"big.vhdx grew by only {grew} bytes: "
                                f"the {WRITE_MIB} MiB did not land in it")
            read_back_sparse(env, back, want, problems)
            os.unlink(back)
        return f

    # Boots 1 and 2 with the default reserve, 3 with none (the host's
    # libvhd grows the file for every new block): the times side by side.
    for run, name, settings in ((1, "bigdisk-rw", ""), (2, "bigdisk-rw", ""),
                                (3, "bigdisk-rw-reserve0", "reserve=0\n")):
        b = s.boot(results, name, host, "big.vhdx", "rw", "@nbdkit",
                   check=check(run), run=run, settings=settings)
        grew = next((l for l in b.lines if "grew by" in l), None)
        if grew:
            E.say("#   loader: " + grew.strip())
        t0, t1 = b.time_of("LINUXBOOT-ROOT-MARKER"), b.time_of("LINUXBOOT-WRITTEN")
        if t0 is not None and t1 is not None:
            E.say(f"#   boot {run}: {WRITE_MIB} MiB written and synced in {t1 - t0:.1f}s")
    s.report_times()
    os.unlink(host.path)


def read_back_sparse(env, image, want, problems):
    """vhdtool check exit 0, then the guest's files through debugfs on a
    raw conversion that stays sparse (16 GiB of mostly holes); the root
    partition is addressed with debugfs's ?offset= instead of a copy."""
    rc, out = L.run_rc([env.vhdtool, "check", image])
    if rc != 0:
        problems.append(f"vhdtool check exit {rc}: {out.strip()[:300]}")
    raw = env.path("readback.raw")
    if os.path.exists(raw):
        os.unlink(raw)
    env.vhdtool_run("convert", "-O", "raw", image, raw)
    used = disk_usage(raw)
    if used > 2 * GIB:
        problems.append(f"the raw conversion is not sparse ({used} bytes on disk)")
    start, _ = L.gpt_partition(raw, 2, 512)
    part = f"{raw}?offset={start}"
    rc, out = L.run_rc(["e2fsck", "-fn", part])
    if rc != 0:
        problems.append(f"e2fsck -fn exit {rc}: {out.strip()[-300:]}")
    rc, text = L.run_rc(["debugfs", "-R", "cat /written.txt", part])
    if "written by the guest" not in text:
        problems.append(f"/written.txt not read back: {text.strip()[:200]}")
    rc, stored = L.run_rc(["debugfs", "-R", "cat /big.sha256", part])
    big = env.path("big.bin")
    L.run_rc(["debugfs", "-R", f"dump /big.bin {big}", part])
    import hashlib
    got = None
    if os.path.exists(big):
        got = hashlib.sha256(open(big, "rb").read()).hexdigest()
        if os.path.getsize(big) != WRITE_MIB * L.MIB:
            problems.append(f"/big.bin is {os.path.getsize(big)} bytes, not {WRITE_MIB} MiB")
        os.unlink(big)
    if not want or got != want:
        problems.append(f"/big.bin hash {got}, the guest printed {want}")
    if want and want not in stored:
        problems.append("/big.sha256 does not hold the guest's hash")
    os.unlink(raw)


if __name__ == "__main__":
    sys.exit(E.main(body))
