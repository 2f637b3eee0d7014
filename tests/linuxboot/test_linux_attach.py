#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdtool attach/detach (issue 16) with a kernel that has the NBD driver:
the Debian cloud kernel booted directly under QEMU (TCG) with an
initramfs whose /init (attach_init.sh) runs vhdtool, nbdkit, the plugin
and nbd-client on images kept on an ext4 host disk.

In the guest: a dynamic VHDX holding an MBR with one partition is
attached rw; the partition's device is there when attach returns; a
pattern is written with dd past the partition, ext4 made in it and a file
written there; a second rw attach is refused with one line; detach; the image is
checked there. A differencing VHDX attached in cow mode reads back what
was written to it, and both its files keep their bytes. With nbd-client
gone, attach says so in one line.

On the host, from the image taken back out of the ext4 disk with debugfs:
vhdtool check and qemu-img check exit 0, vhdtool read gives the pattern at
60 MiB, and debugfs finds the file in the partition's ext4 with the
pattern's content.
"""
import os
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402
from test_linux_trim import boot_direct, host_disk  # noqa: E402

E = L.E
MIB = E.MIB
SIZE = 64 * MIB
PART_START, PART_SIZE = 1 * MIB, 48 * MIB


def body(env, results):
    kit = L.Kit(env)
    for prog in ("/usr/sbin/mke2fs", "qemu-img"):
        E.need(os.path.basename(prog))
    initrd = kit.initramfs(env.path("attach-initrd.gz"),
                           init=os.path.join(L.HERE, "attach_init.sh"),
                           extra=[("/usr/sbin/mke2fs", "/sbin/mke2fs"),
                                  (env.vhdtool, "/sbin/vhdtool")])
    w = env.path("attach")
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(w)
    pattern = os.path.join(w, "pattern.bin")
    with open(pattern, "wb") as f:
        f.write(E.pattern(4 * MIB, 16))
    disk = os.path.join(w, "disk.vhdx")
    env.vhdtool_run("create", "-f", "vhdx", "-s", SIZE, "-b", MIB, disk)
    mbr = bytearray(512)   # one Linux partition: sectors 2048.. (PART_START, PART_SIZE)
    mbr[446 + 4] = 0x83
    mbr[446 + 8:446 + 16] = struct.pack("<II", PART_START // 512, PART_SIZE // 512)
    mbr[510:512] = b"\x55\xaa"
    subprocess.run([env.vhdtool, "write", disk], input=bytes(mbr), check=True)
    raw = os.path.join(w, "base.raw")
    with open(raw, "wb") as f:
        f.write(E.pattern(8 * MIB, 23))
        f.truncate(SIZE)
    base = os.path.join(w, "base.vhdx")
    E.convert(env, raw, base, "vhdx", "dynamic")
    child = os.path.join(w, "child.vhdx")
    env.vhdtool_run("snapshot", base, child)
    host = host_disk(env, "attach-host", [pattern, disk, base, child])

    b = boot_direct(env, kit, initrd, host, "", timeout=300)
    problems = [] if b.rc != "timeout" else ["timed out"]
    problems += [l for l in b.lines if "ATTACH-FAILED" in l]
    if not b.has("ATTACH-DONE"):
        problems.append("the guest run did not finish")
    def expect(name, key, good, extra=()):
        """One check on the value of the guest's "KEY: value" line."""
        v = b.value(key) or ""
        results.check(name, [] if good(v) else [f"{key} {v!r}", *extra], b)

    expect("attach rw prints /dev/nbd0", "ATTACH-DEV", lambda v: v == "/dev/nbd0", problems)
    expect("the partition's device is there when attach returns", "ATTACH-PART",
           lambda v: v == "yes")
    expect("attach --list shows device, mode, image", "ATTACH-LIST",
           lambda v: v == "/dev/nbd0 rw /host/disk.vhdx")
    expect("a second rw attach is refused with one line naming the device", "ATTACH-AGAIN",
           lambda v: v.startswith("1 ") and "already attached read-write as /dev/nbd0" in v)
    expect("detach exits 0", "ATTACH-DETACH", lambda v: v.startswith("0"))
    expect("detach forgets the attachment", "ATTACH-LIST-AFTER", lambda v: v == "0")
    expect("vhdtool check in the guest after detach", "ATTACH-CHECK",
           lambda v: v.startswith("0 "))
    expect("cow: the device reads back what was written", "ATTACH-COW-READ",
           lambda v: v == "0")
    expect("cow: the differencing image and its parent keep their bytes", "ATTACH-COW-SAME",
           lambda v: v == "yes")
    expect("without nbd-client: exit 1, one line saying so", "ATTACH-NO-CLIENT",
           lambda v: v.startswith("1 1 ") and "nbd-client not found" in v)

    # The image out of the host disk: checked and read on the host.
    back = os.path.join(w, "back.vhdx")
    E.run(["debugfs", "-R", f"dump /disk.vhdx {back}", host])
    problems = []
    rc, out = L.run_rc([env.vhdtool, "check", back])
    if rc != 0:
        problems.append(f"vhdtool check exit {rc}: {out.strip()[:300]}")
    rc, out = L.run_rc(["qemu-img", "check", "-f", "vhdx", back])
    if rc != 0:
        problems.append(f"qemu-img check exit {rc}: {out.strip()[:300]}")
    got = os.path.join(w, "got.bin")
    with open(got, "wb") as f:
        subprocess.run([env.vhdtool, "read", "--offset", str(60 * MIB), "--length",
                        str(4 * MIB), back], stdout=f, check=True)
    if open(got, "rb").read() != open(pattern, "rb").read():
        problems.append("vhdtool read at 60 MiB differs from the pattern written with dd")
    img_raw = os.path.join(w, "back.raw")
    with open(img_raw, "wb") as f:
        subprocess.run([env.vhdtool, "read", back], stdout=f, check=True)
    part = os.path.join(w, "part.raw")
    with open(img_raw, "rb") as f, open(part, "wb") as o:
        f.seek(PART_START)
        o.write(f.read(PART_SIZE))
    inner = os.path.join(w, "file.out")
    E.run(["debugfs", "-R", f"dump /file {inner}", part])
    if not os.path.exists(inner) or open(inner, "rb").read() != open(pattern, "rb").read():
        problems.append("the file written in the guest's ext4 is missing or differs")
    results.check("on the host: checks clean, dd's pattern and the ext4 file read back",
                  problems, b)
    E.say(f"# guest run: {b.wall:.1f} s")


if __name__ == "__main__":
    sys.exit(E.main(body))
