#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdboot.efi boots the payload from VHD images (and a raw one).

One host disk (GPT: a FAT32 ESP with the loader and the images, and an
exFAT partition) and one boot per case; the case only changes
\\EFI\\BOOT\\vhdboot.cfg. Each boot must print the right marker, TPL 4, a
device path on the virtual disk and the right CRC of \\DATA.BIN (the
oracle: the bytes the test wrote). One case also checks the OS hand-off
record against the host disk's bytes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402


def build(env):
    data0 = T.pattern(5 * T.MIB + 4321, 10)        # > two 2 MiB VHD blocks
    raw0, fat0 = T.inner_disk(env, "base.raw", "VHD-BASE", data0)
    # The chain's layers: mid changes the marker and the first MiB of the
    # data file, top changes the marker again and adds a file.
    data1 = T.pattern(T.MIB, 11) + data0[T.MIB:]
    raw1 = env.path("mid.raw")
    raw2 = env.path("top.raw")
    T.run(["cp", raw0, raw1])
    mid = T.Fat(raw1, 1048576)
    mid.put_bytes(env, b"CHAIN-MID\n", "/MARKER.TXT")
    mid.put_bytes(env, data1, "/DATA.BIN")
    T.run(["cp", raw1, raw2])
    top = T.Fat(raw2, 1048576)
    top.put_bytes(env, b"CHAIN-TOP\n", "/MARKER.TXT")
    top.put_bytes(env, b"only in the top layer\n", "/CHILD.TXT")

    imgs = {}
    imgs["fixed"] = env.path("fixed.vhd")
    T.convert(env, raw0, imgs["fixed"], "vhd", "fixed")
    imgs["dyn"] = env.path("dyn.vhd")
    T.convert(env, raw0, imgs["dyn"], "vhd", "dynamic")
    imgs["shuf"] = env.path("shuf.vhd")
    T.shuffled_dynamic_vhd(env, raw0, imgs["shuf"])
    order = T.vhd_bat_order(imgs["shuf"])
    if order == sorted(order):
        raise RuntimeError("the shuffled VHD's blocks are in order")
    imgs["base"] = env.path("base.vhd")
    T.convert(env, raw0, imgs["base"], "vhd", "dynamic")
    imgs["mid"] = env.path("mid.vhd")
    T.differencing(env, imgs["base"], imgs["mid"], raw0, raw1)
    imgs["top"] = env.path("top.vhd")
    T.differencing(env, imgs["mid"], imgs["top"], raw1, raw2)
    # Oracle for the fixtures themselves: vhdtool reads each image back as
    # the raw disk it was made from.
    for name, raw in (("fixed", raw0), ("dyn", raw0), ("shuf", raw0), ("top", raw2)):
        back = env.path(f"{name}.back")
        env.vhdtool_run("convert", "-O", "raw", imgs[name], back)
        if open(back, "rb").read() != open(raw, "rb").read():
            raise RuntimeError(f"vhdtool reads {name} differently from its raw source")
        os.unlink(back)

    host = T.HostDisk(env, esp_mib=200, exfat_mib=48)
    for name in ("fixed", "dyn", "shuf", "base", "mid", "top"):
        host.esp.put(imgs[name], f"/VHD/{name}.vhd")
    host.esp.put(raw0, "/VHD/disk.raw")
    # A long file name, and a file in pieces: fill, punch holes, copy.
    for i in range(6):
        host.esp.put_bytes(env, bytes(3 * T.MIB), f"/VHD/FILL{i}.BIN")
    for i in (1, 3):
        host.esp.delete(f"/VHD/FILL{i}.BIN")
    host.reset_free_hint()   # so mtools fills the holes first
    long_name = "/VHD/A dynamic disk with a rather long file name.vhd"
    host.esp.put(imgs["dyn"], long_name)
    runs = T.run(["mshowfat", "-i", host.esp.spec, "::" + long_name])
    if runs.count("<") < 2:
        raise RuntimeError(f"the long-named image is not fragmented: {runs}")
    # exFAT: the same dynamic image, fragmented, under a long directory name.
    T.exfat_put(host.path, host.exfat_start, ["mkdir", "/Disk images"],
                ["put", imgs["dyn"], "/Disk images/Dynamic disk on exFAT.vhd",
                 "--fragments", "3"])
    return host, data0, data1, raw0


def body(env, res):
    host, data0, data1, raw0 = build(env)
    fb = T.fallback_disk(env)
    cases = [
        ("raw image", "image=\\VHD\\disk.raw\n", "VHD-BASE", data0),
        ("fixed VHD", "image=\\VHD\\fixed.vhd\n", "VHD-BASE", data0),
        ("dynamic VHD", "image=\\VHD\\dyn.vhd\n", "VHD-BASE", data0),
        ("dynamic VHD, blocks out of order", "image=/VHD/shuf.vhd\nmode=ro\n",
         "VHD-BASE", data0),
        ("differencing VHD chain (2 levels)", "image=\\VHD\\top.vhd\n", "CHAIN-TOP", data1),
        ("differencing chain read whole into memory (backend=ram)",
         "image=\\VHD\\top.vhd\nbackend=ram\n", "CHAIN-TOP", data1),
        ("long, fragmented file name on FAT32",
         "# comment line\r\nimage = \\VHD\\A dynamic disk with a rather long file name.vhd\r\n",
         "VHD-BASE", data0),
        ("dynamic VHD on exFAT (partition 2, fragmented)",
         "partition=2\nimage=\\Disk images\\Dynamic disk on exFAT.vhd\n", "VHD-BASE", data0),
    ]
    for name, cfg, marker, data in cases:
        host.config(cfg)
        b = T.boot(env, [host.path, fb], snapshot=True)
        problems = T.expect_payload(b, marker, data)
        if name == "dynamic VHD":
            problems += T.check_handoff(b, host.path, (1, host.esp_start, host.esp_guid),
                                        "\\VHD\\dyn.vhd", env.path("dyn.vhd"))
        if name.startswith("differencing") and b.value("PAYLOAD-HANDOFF 0") is not None:
            rec = T.parse_handoff(b.handoff())
            paths = [layer["path"] for layer in rec["layers"]]
            if paths != ["\\VHD\\top.vhd", "\\VHD\\mid.vhd", "\\VHD\\base.vhd"]:
                problems.append(f"hand-off layers {paths}")
        res.check(name, problems, b)


if __name__ == "__main__":
    sys.exit(T.main(body))
