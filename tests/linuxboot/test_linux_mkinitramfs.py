#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The initramfs made by the real mkinitramfs with the project's hook and
local-top script (mkinitramfs_hook.sh makes and checks it), booted once
through vhdboot.efi: a dynamic VHD in rw, the root named by the PARTUUID
of a partition inside the image. This proves the hook and the boot script
for real, with initramfs-tools' own init, udev and module loading instead
of the kit's hand-made initramfs."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E


def body(env, results):
    s = L.Setup(env)   # the kit: packages cached and unpacked for the script
    initrd = env.path("mkinitramfs.img")
    p = subprocess.run(["sh", os.path.join(L.HERE, "mkinitramfs_hook.sh")],
                       env=dict(os.environ, LINUXBOOT_CACHE=s.kit.cache, OUT_INITRD=initrd),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout.strip().splitlines():
        E.say("#   " + line)
    if p.returncode == 77:
        raise E.Skip("mkinitramfs_hook.sh skipped")
    results.check("mkinitramfs with the hook", [f"exit {p.returncode}"] if p.returncode else [])
    if p.returncode:
        return
    uki = s.kit.uki(env.path("mk-linux.efi"), initrd, L.cmdline("/dev/vda2"))
    inner, guid = s.kit.inner_disk("mk-inner.raw", uki)
    # initramfs-tools resolves root= with blkid -t, which compares the
    # PARTUUID as a string: blkid's spelling, lower case (the kernel's own
    # root=PARTUUID= ignores case; the kit's initramfs relies on that).
    # rw: initramfs-tools mounts the root read-only unless told (a Debian
    # system remounts it from fstab; the busybox root does not).
    s.args = L.cmdline(f"PARTUUID={guid.lower()}", "rw")
    img = env.path("root.vhd")
    E.convert(env, inner, img, "vhd", "dynamic")
    host = s.host("mkinitramfs", [img])

    def check(b, problems, want):
        back, = s.fetch(host, ["root.vhd"], "back")
        L.read_back(env, s.kit, back, want, problems, "vpc")

    s.boot(results, "mkinitramfs-vhd-dynamic-rw", host, "root.vhd", "rw", "@nbdkit", check=check)
    os.unlink(host.path)
    s.report_times()


if __name__ == "__main__":
    sys.exit(E.main(body))
