#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdboot.efi's write modes, checked on the host after the machine is off.

The payload (args=write) creates \\WRITTEN.TXT and a 3 MiB \\WRITTEN.BIN on
its own volume, which in a dynamic image needs new blocks.
  rw   the image passes vhdtool check (exit 0: the unused reserve is named as
       reserve, not leaked space; vhdtool sees the image end where the
       record says, and cutting the file there leaves a clean image), both
       vhdtool and qemu-img read it back, and the written files are in it.
       A second rw boot reuses the reserve instead of growing the file
       again; check --repair gives the reserve back.
  cow  the write succeeds inside the machine; the image is byte-for-byte
       unchanged.
  ro   the write fails cleanly (write protected); the image is unchanged.
The oracles are the bytes the payload writes (computed here), the image
file before the boot, vhdtool and qemu-img.
"""
import json
import os
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402

MARKER = "WRITE-BASE"


def written_bin():
    return bytes((((i * 2654435761) >> 13) & 0xFF) for i in range(3 << 20))


def written_txt(marker):
    return f"written by the payload booted from {marker}\n".encode()


WRITTEN_TXT = written_txt(MARKER)


def check_image(env, image, data, wbin, fmt="vhd", marker=MARKER, span=None, parents=None):
    """Problems with an image file the payload (marker) wrote into; span:
    compare only the virtual disk's first span bytes (a large disk);
    parents: of a differencing VHD, which qemu cannot read: the spec reader
    of the interop tests (vhd_oracle.py) reads it through them instead."""
    problems = []
    p = subprocess.run([env.vhdtool, "check", image], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    report = p.stdout.decode(errors="replace").strip()
    if p.returncode not in (0, 3):
        problems.append(f"vhdtool check exit {p.returncode}: {report}")
    raw = image + ".raw"
    qfmt = "vpc" if fmt == "vhd" else "vhdx"
    if span:
        with open(raw, "wb") as f:
            subprocess.run([env.vhdtool, "read", "--length", str(span), image], stdout=f,
                           check=True)
            f.truncate(json.loads(env.vhdtool_run("info", "--json", image))["virtual-size"])
    else:
        env.vhdtool_run("convert", "-O", "raw", image, raw)
    if parents is not None:
        with open(raw + ".oracle", "wb") as f:
            subprocess.run([sys.executable, os.path.join(T.HERE, "..", "interop", "vhd_oracle.py"),
                            image, *parents], stdout=f, check=True)
        if not same_bytes(raw, raw + ".oracle"):
            problems.append("vhd_oracle.py reads the image differently from vhdtool")
        os.unlink(raw + ".oracle")
    elif shutil.which("qemu-img"):
        q = raw + ".qemu"
        if span:
            T.run(["qemu-img", "dd", "-f", qfmt, "-O", "raw", f"bs={T.MIB}",
                   f"count={span // T.MIB}", f"if={image}", f"of={q}"])
        else:
            T.run(["qemu-img", "convert", "-f", qfmt, "-O", "raw", image, q])
        a, b = open(raw, "rb").read(span or -1), open(q, "rb").read(span or -1)
        if a[:len(b)] != b[:len(a)]:
            problems.append("qemu-img reads the image differently from vhdtool")
        if fmt == "vhdx":
            c = subprocess.run(["qemu-img", "check", "-f", "vhdx", image],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if c.returncode not in (0, 3):
                problems.append(f"qemu-img check exit {c.returncode}: {c.stdout.decode()}")
        os.unlink(q)
    fat = T.Fat(raw, 1048576)
    try:
        if fat.get(env, "/WRITTEN.TXT") != written_txt(marker):
            problems.append("\\WRITTEN.TXT has the wrong content")
        if fat.get(env, "/WRITTEN.BIN") != wbin:
            problems.append("\\WRITTEN.BIN has the wrong content")
        if fat.get(env, "/DATA.BIN") != data:
            problems.append("\\DATA.BIN changed")
    except RuntimeError as e:
        problems.append(f"files missing from the image: {str(e).splitlines()[0]}")
    os.unlink(raw)
    return problems, p.returncode


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def reserve_record(image):
    """(physical, logical, tail) from a reserve record, or None."""
    with open(image, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        for tail in (512, 0):
            if size < tail + 1024:
                continue
            f.seek(size - tail - 512)
            rec = f.read(512)
            if rec[:8] == b"VHDBOOTR":
                return struct.unpack_from("<QQ", rec, 16) + (tail,)
    return None


def body(env, res):
    data = T.pattern(5 * T.MIB + 777, 20)
    raw, _ = T.inner_disk(env, "inner.raw", MARKER, data)
    dyn, fixed = env.path("dyn.vhd"), env.path("fixed.vhd")
    T.convert(env, raw, dyn, "vhd", "dynamic")
    T.convert(env, raw, fixed, "vhd", "fixed")
    host = T.HostDisk(env, esp_mib=160, exfat_mib=64)
    for name in ("rw-dyn", "cow", "ro"):
        host.esp.put(dyn, f"/VHD/{name}.vhd")
    host.esp.put(fixed, "/VHD/rw-fixed.vhd")
    T.exfat_put(host.path, host.exfat_start, ["put", fixed, "/fixed on exfat.vhd"],
                ["put", dyn, "/dynamic on exfat.vhd"])
    fb = T.fallback_disk(env)
    wbin = written_bin()
    original_dyn = open(dyn, "rb").read()

    # rw, dynamic: new blocks inside the reserve.
    host.config("image=\\VHD\\rw-dyn.vhd\nmode=rw\nargs=write\n")
    b = T.boot(env, [host.path, fb])
    problems = T.expect_payload(b, MARKER, data)
    if b.value("PAYLOAD-WRITE") != "ok":
        problems.append(f"payload write: {b.value('PAYLOAD-WRITE')}")
    if not b.has("grew by"):
        problems.append("the loader did not report growing the image for its reserve")
    img = env.path("rw-dyn.after")
    open(img, "wb").write(host.esp.get(env, "/VHD/rw-dyn.vhd"))
    more, rc = check_image(env, img, data, wbin)
    problems += more
    if rc != 0:
        problems.append(f"vhdtool check exit {rc} on the file with its reserve (want 0)")
    rec = reserve_record(img)
    size1 = os.path.getsize(img)
    if not rec or rec[0] != size1:
        problems.append(f"no valid reserve record at the end of the file ({rec})")
    else:
        cut = img + ".cut"
        with open(img, "rb") as src, open(cut, "wb") as dst:
            dst.write(src.read(rec[1]))
        c = subprocess.run([env.vhdtool, "check", cut], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if c.returncode != 0:
            problems.append(f"the image cut at the logical size is not clean: "
                            f"{c.stdout.decode().strip()}")
        info = json.loads(env.vhdtool_run("info", "--json", img))
        end = (info.get("reserve") or {}).get("image-end")
        if end != rec[1]:
            problems.append(f"vhdtool sees the image end at {end}, the record says {rec[1]}")
    res.check("rw, dynamic VHD: allocating writes land in the image", problems, b)

    # A second rw boot: the reserve is found again and reused.
    host.config("image=\\VHD\\rw-dyn.vhd\nmode=rw\nargs=write\n")
    b = T.boot(env, [host.path, fb])
    problems = T.expect_payload(b, MARKER, data)
    if b.value("PAYLOAD-WRITE") != "ok":
        problems.append(f"payload write: {b.value('PAYLOAD-WRITE')}")
    open(img, "wb").write(host.esp.get(env, "/VHD/rw-dyn.vhd"))
    if os.path.getsize(img) != size1:
        problems.append(f"the file grew again: {size1} -> {os.path.getsize(img)}")
    more, rc = check_image(env, img, data, wbin)
    problems += more + ([f"vhdtool check exit {rc} (want 0)"] if rc != 0 else [])
    res.check("rw, dynamic VHD again: the reserve is reused", problems, b)

    # Back on the host, `vhdtool check --repair` gives the unused reserve
    # back, leaving a clean image with the same content.
    problems = []
    c = subprocess.run([env.vhdtool, "check", "--repair", img], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if c.returncode != 0 or b"repaired" not in c.stdout:
        problems.append(f"check --repair exit {c.returncode}: {c.stdout.decode().strip()}")
    more, rc = check_image(env, img, data, wbin)
    problems += more + ([f"vhdtool check exit {rc} after the repair"] if rc != 0 else [])
    if os.path.getsize(img) >= size1:
        problems.append(f"the repair gave nothing back: {size1} -> {os.path.getsize(img)}")
    res.check("rw, dynamic VHD: check --repair gives the unused reserve back", problems)

    # rw, fixed: writes go straight into the file's clusters.
    host.config("image=\\VHD\\rw-fixed.vhd\nargs=write\n")   # rw is the default for fixed
    b = T.boot(env, [host.path, fb])
    problems = T.expect_payload(b, MARKER, data)
    if b.value("PAYLOAD-WRITE") != "ok":
        problems.append(f"payload write: {b.value('PAYLOAD-WRITE')}")
    img = env.path("rw-fixed.after")
    open(img, "wb").write(host.esp.get(env, "/VHD/rw-fixed.vhd"))
    if os.path.getsize(img) != os.path.getsize(fixed):
        problems.append("a fixed image changed size")
    more, rc = check_image(env, img, data, wbin)
    if rc != 0:
        more.append(f"vhdtool check exit {rc} on a fixed image")
    problems += more
    res.check("rw (default), fixed VHD", problems, b)

    # rw, fixed, on exFAT: writes through the exFAT extents.
    host.config("partition=2\nimage=\\fixed on exfat.vhd\nmode=rw\nargs=write\n")
    b = T.boot(env, [host.path, fb])
    problems = T.expect_payload(b, MARKER, data)
    if b.value("PAYLOAD-WRITE") != "ok":
        problems.append(f"payload write: {b.value('PAYLOAD-WRITE')}")
    img = env.path("exfat-fixed.after")
    open(img, "wb").write(T.exfat_get(env, host.path, host.exfat_start, "/fixed on exfat.vhd"))
    more, rc = check_image(env, img, data, wbin)
    problems += more + ([f"vhdtool check exit {rc}"] if rc != 0 else [])
    res.check("rw, fixed VHD on exFAT", problems, b)

    # rw, dynamic, on exFAT: no way to grow the file, so a clear refusal.
    host.config("partition=2\nimage=\\dynamic on exfat.vhd\nmode=rw\nargs=write\n")
    b = T.boot(env, [host.path, fb])
    problems = []
    lines = [l for l in b.lines if l.startswith("vhdboot:")]
    if not any("reserve=0" in l for l in lines):
        problems.append(f"no clear refusal: {lines}")
    if b.value("PAYLOAD-MARKER") != "FALLBACK":
        problems.append("the firmware did not go on to the next boot option")
    after = T.exfat_get(env, host.path, host.exfat_start, "/dynamic on exfat.vhd")
    if after != original_dyn:
        problems.append("the image changed")
    res.check("rw, dynamic VHD on exFAT: refused (cannot grow), next boot option", problems, b)

    # cow: written inside the machine, gone afterwards.
    host.config("image=\\VHD\\cow.vhd\nargs=write\n")   # cow is the default for dynamic
    b = T.boot(env, [host.path, fb])
    problems = T.expect_payload(b, MARKER, data)
    if b.value("PAYLOAD-WRITE") != "ok":
        problems.append(f"payload write inside the machine: {b.value('PAYLOAD-WRITE')}")
    if host.esp.get(env, "/VHD/cow.vhd") != original_dyn:
        problems.append("the image file changed")
    res.check("cow (default), dynamic VHD: image byte-for-byte unchanged", problems, b)

    # ro: the write fails cleanly.
    host.config("image=\\VHD\\ro.vhd\nmode=ro\nargs=write\n")
    b = T.boot(env, [host.path, fb])
    problems = T.expect_payload(b, MARKER, data)
    w = b.value("PAYLOAD-WRITE") or ""
    if not w.startswith("failed") or "protect" not in w.lower():
        problems.append(f"payload write should fail as write protected: {w!r}")
    if host.esp.get(env, "/VHD/ro.vhd") != original_dyn:
        problems.append("the image file changed")
    res.check("ro, dynamic VHD: the write fails, image unchanged", problems, b)


if __name__ == "__main__":
    sys.exit(T.main(body))
