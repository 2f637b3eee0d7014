#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdboot.efi boots the payload from VHDX images.

Fixed, dynamic, a 2-level differencing chain, one with 4096-byte logical
sectors (the virtual disk's BlockIo must then have 4096-byte blocks; the
inner disk is partitioned and formatted with 4096-byte sectors), and rw on
a dynamic VHDX (allocating writes; afterwards vhdtool check, qemu-img check
and both readers must agree and hold the payload's files). Skipped with a
message while the VHDX driver cannot create images.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402
from test_writes import WRITTEN_TXT, written_bin  # noqa: E402


def body(env, res):
    if not env.vhdx_supported():
        raise T.Skip("vhdtool cannot create VHDX images yet (the VHDX driver has not landed)")
    data0 = T.pattern(5 * T.MIB + 999, 40)      # > two 2 MiB blocks
    raw0, _ = T.inner_disk(env, "base.raw", "WRITE-BASE", data0)
    data1 = data0[:2 * T.MIB] + T.pattern(T.MIB, 41) + data0[3 * T.MIB:]
    raw1, raw2 = env.path("mid.raw"), env.path("top.raw")
    T.run(["cp", raw0, raw1])
    mid = T.Fat(raw1, 1048576)
    mid.put_bytes(env, b"VHDX-MID\n", "/MARKER.TXT")
    mid.put_bytes(env, data1, "/DATA.BIN")
    T.run(["cp", raw1, raw2])
    T.Fat(raw2, 1048576).put_bytes(env, b"VHDX-TOP\n", "/MARKER.TXT")
    data4k = T.pattern(5 * T.MIB + 3, 42)
    raw4k, _ = T.inner_disk(env, "4k.raw", "VHDX-4K", data4k, sector=4096)

    imgs = {n: env.path(n + ".vhdx") for n in ("fixed", "dyn", "base", "mid", "top", "4k", "rw")}
    T.convert(env, raw0, imgs["fixed"], "vhdx", "fixed")
    T.convert(env, raw0, imgs["dyn"], "vhdx", "dynamic", block="2M")
    T.convert(env, raw0, imgs["rw"], "vhdx", "dynamic", block="2M")
    T.convert(env, raw0, imgs["base"], "vhdx", "dynamic", block="2M")
    T.differencing(env, imgs["base"], imgs["mid"], raw0, raw1, ("-f", "vhdx", "-b", "2M"))
    T.differencing(env, imgs["mid"], imgs["top"], raw1, raw2, ("-f", "vhdx", "-b", "2M"))
    T.convert(env, raw4k, imgs["4k"], "vhdx", "dynamic", block="2M", sector=4096)
    for name, raw in (("fixed", raw0), ("dyn", raw0), ("top", raw2), ("4k", raw4k)):
        back = env.path(f"{name}.back")
        env.vhdtool_run("convert", "-O", "raw", imgs[name], back)
        if open(back, "rb").read() != open(raw, "rb").read():
            raise RuntimeError(f"vhdtool reads {name}.vhdx differently from its raw source")
        os.unlink(back)

    host = T.HostDisk(env, esp_mib=200)
    for name, path in imgs.items():
        host.esp.put(path, f"/VHD/{name}.vhdx")
    fb = T.fallback_disk(env)

    cases = [
        ("fixed VHDX", "fixed", "WRITE-BASE", data0, "512"),
        ("dynamic VHDX", "dyn", "WRITE-BASE", data0, "512"),
        ("differencing VHDX chain (2 levels)", "top", "VHDX-TOP", data1, "512"),
        ("dynamic VHDX with 4096-byte logical sectors", "4k", "VHDX-4K", data4k, "4096"),
    ]
    for name, img, marker, data, bs in cases:
        host.config(f"image=\\VHD\\{img}.vhdx\n")
        b = T.boot(env, [host.path, fb], snapshot=True)
        problems = T.expect_payload(b, marker, data)
        if b.value("PAYLOAD-BLOCK-SIZE") != bs:
            problems.append(f"block size {b.value('PAYLOAD-BLOCK-SIZE')}, expected {bs}")
        res.check(name, problems, b)

    # rw with allocation.
    host.config("image=\\VHD\\rw.vhdx\nmode=rw\nargs=write\n")
    b = T.boot(env, [host.path, fb])
    problems = T.expect_payload(b, "WRITE-BASE", data0)
    if b.value("PAYLOAD-WRITE") != "ok":
        problems.append(f"payload write: {b.value('PAYLOAD-WRITE')}")
    after = env.path("rw.after.vhdx")
    open(after, "wb").write(host.esp.get(env, "/VHD/rw.vhdx"))
    c = subprocess.run([env.vhdtool, "check", after], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if c.returncode not in (0, 3):
        problems.append(f"vhdtool check exit {c.returncode}: {c.stdout.decode().strip()}")
    back = env.path("rw.after.raw")
    env.vhdtool_run("convert", "-O", "raw", after, back)
    if shutil.which("qemu-img"):
        # Read-only, as a host tool would look at it after the machine is
        # off: a log left to replay makes qemu-img refuse the image.
        q = subprocess.run(["qemu-img", "check", "-f", "vhdx", after], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if q.returncode not in (0, 3):
            out = q.stdout.decode().strip().splitlines()
            problems.append(f"qemu-img check exit {q.returncode}: {out[0] if out else ''}")
        else:
            qraw = env.path("rw.after.qemu")
            T.run(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", after, qraw])
            if open(qraw, "rb").read() != open(back, "rb").read():
                problems.append("qemu-img reads the image differently from vhdtool")
    fat = T.Fat(back, 1048576)
    try:
        if fat.get(env, "/WRITTEN.TXT") != WRITTEN_TXT:
            problems.append("\\WRITTEN.TXT has the wrong content")
        if fat.get(env, "/WRITTEN.BIN") != written_bin():
            problems.append("\\WRITTEN.BIN has the wrong content")
    except RuntimeError as e:
        problems.append(f"files missing: {str(e).splitlines()[0]}")
    res.check("rw, dynamic VHDX: allocating writes land in the image", problems, b)


if __name__ == "__main__":
    sys.exit(T.main(body))
