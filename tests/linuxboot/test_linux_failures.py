#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The failure paths of vhdboot-attach in a real initramfs (linuxkit.py):
each boot must end with exactly one "vhdboot-attach: error:" line naming
the problem and a non-zero exit, which the initramfs-tools boot script
turns into initramfs-tools' panic (the shell; the test's stand-in prints
LINUXBOOT-FAILED and powers off), never a hang and never the root. The
no-record case runs vhdboot-attach itself: the boot script leaves boots
without vhdboot alone.

  no-record        the UKI booted directly, no vhdboot.image=
  no-partition     vhdboot.image= names a partition GUID no disk has
  image-missing    vhdboot.image= names a file the host partition lacks
  image-corrupt    a VHD whose dynamic header cookie is broken
  nbdkit-fails     the plugin file emptied: nbdkit cannot load it
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E


def expect_failure(b, words, problems, how="panic: vhdboot"):
    if b.rc == "timeout":
        problems.append("timed out (a hang)")
    errors = [l for l in b.lines if "vhdboot-attach: error:" in l]
    if len(errors) != 1:
        problems.append(f"{len(errors)} error lines: {' | '.join(errors)}")
    elif words not in errors[0]:
        problems.append(f"error line {errors[0]!r} does not say {words!r}")
    if not b.has("LINUXBOOT-FAILED: " + how):
        problems.append(f"no LINUXBOOT-FAILED: {how}")
    if b.has("LINUXBOOT-ROOT-MARKER"):
        problems.append("the root was reached")


def body(env, results):
    s = L.Setup(env)

    # No record: the UKI with a command line that asks for the attach,
    # booted straight from the inner disk.
    uki = s.kit.uki(env.path("linux-attach.efi"), s.initrd,
                    L.cmdline("/dev/vda2", "vhdtest.attach=direct"))
    disk = env.path("direct.raw")
    E.run(["cp", "--sparse=always", s.inner, disk])
    start, _ = L.gpt_partition(disk, 1, 512)
    E.Fat(disk, start).put(uki, "/EFI/BOOT/BOOTX64.EFI")
    b = E.boot(env, [disk], timeout=600, memory=1024)
    problems = []
    expect_failure(b, "no hand-off record", problems, how="vhdboot-attach exit 1")
    results.check("no-record", problems, b)
    os.unlink(disk)

    img = env.path("root.vhd")
    E.convert(env, s.inner, img, "vhd", "dynamic")
    bad = env.path("bad.vhd")
    E.run(["cp", img, bad])
    with open(bad, "r+b") as f:
        f.seek(512)   # the dynamic header follows the footer copy
        if f.read(8) != b"cxsparse":
            raise RuntimeError("bad.vhd: no dynamic header at 512")
        f.seek(512)
        f.write(b"xxsparse")
    host = s.host("failures", [img, bad])
    esp = host.esp_guid.lower()
    cases = [
        ("no-partition", f"vhdboot.image=PARTUUID={uuid.uuid4()}:/VHD/root.vhd", "not found"),
        ("image-missing", f"vhdboot.image=PARTUUID={esp}:/VHD/missing.vhd",
         "image /VHD/missing.vhd not found"),
        ("image-corrupt", f"vhdboot.image=PARTUUID={esp}:/VHD/bad.vhd", "cannot open the image"),
        ("nbdkit-fails", "vhdtest.break=plugin", "nbdkit failed to start"),
    ]
    for name, extra, words in cases:
        host.config(f"image=\\VHD\\root.vhd\nmode=cow\nargs={s.args} {extra}\n")
        b = E.boot(env, [host.path], timeout=600, memory=1024)
        problems = []
        expect_failure(b, words, problems)
        if name == "no-partition" and not b.has("host partition PARTUUID="):
            problems.append("the error does not name the partition")
        results.check(name, problems, b)
    os.unlink(host.path)


if __name__ == "__main__":
    sys.exit(E.main(body))
