#!/usr/bin/env python3
"""Boot a busybox Linux root from inside images through vhdboot.efi and
vhdboot-attach (OVMF, TCG, serial console), and check the images on the
host afterwards (linuxkit.py). Cases:

  raw-partition  the same disk booted directly (no vhdboot): the baseline
                 of the boot time
  vhd-dynamic-rw dynamic VHD, mode rw: nbdkit + the plugin + nbd-client
  vhd-fixed-rw   fixed VHD, mode rw: a device-mapper linear table

After each image boot: the root marker, the server named @nbdkit (a root
storage daemon) or none, vhdtool check, qemu-img compare against
vhdtool's raw copy, e2fsck -fn, the guest's file and 8 MiB hash read back
with debugfs, the host FAT not dirty. LINUXBOOT_REPEAT=N boots each case N
times and prints the median time to the root marker.
"""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E
MIB = E.MIB


def body(env, results):
    kit = L.Kit(env)
    initrd = kit.initramfs(env.path("initrd.gz"))
    # The built-in command line boots the inner disk directly; vhdboot.cfg's
    # args= replaces it for the boots through the loader.
    uki = kit.uki(env.path("linux.efi"), initrd, L.cmdline("/dev/vda2", "vhdtest.direct=1"))
    inner, root_guid = kit.inner_disk("inner.raw", uki)
    attach_cmdline = L.cmdline(f"PARTUUID={root_guid}")
    repeat = int(os.environ.get("LINUXBOOT_REPEAT", "1"))
    times = {}

    def image_case(name, fmt, kind, server, qemu_fmt):
        img = f"root.{fmt}"
        path = env.path(img)
        if os.path.exists(path):
            os.unlink(path)
        E.convert(env, inner, path, fmt, kind)
        host = E.HostDisk(env, name=f"host-{name}.img", esp_mib=400)
        host.esp.put(path, f"/VHD/{img}")
        host.config(f"image=\\VHD\\{img}\nmode=rw\nargs={attach_cmdline}\n")
        for i in range(repeat):
            b = E.boot(env, [host.path], timeout=900, memory=1024)
            problems = []
            want = L.expect_root(b, problems, server)
            t = b.time_of("LINUXBOOT-ROOT-MARKER")
            if t is not None:
                times.setdefault(name, []).append(t)
            if not problems:
                L.host_fat_clean(env, host, problems)
                out = L.get_file(env, host, img, env.path("back." + fmt))
                L.read_back(env, kit, out, want, problems, qemu_fmt)
                os.unlink(out)
            results.check(f"{name} boot {i + 1} (root marker at {t or 0:.1f}s)", problems, b)
        os.unlink(host.path)

    for i in range(repeat):
        disk = env.path("direct.raw")
        E.run(["cp", "--sparse=always", inner, disk])
        b = E.boot(env, [disk], timeout=900, memory=1024)
        problems = []
        L.expect_root(b, problems, "none")
        t = b.time_of("LINUXBOOT-ROOT-MARKER")
        if t is not None:
            times.setdefault("raw-partition", []).append(t)
        results.check(f"raw-partition boot {i + 1} (root marker at {t or 0:.1f}s)", problems, b)

    image_case("vhd-dynamic-rw", "vhd", "dynamic", "@nbdkit", "vpc")
    image_case("vhd-fixed-rw", "vhd", "fixed", "none", "vpc")
    for name, ts in times.items():
        E.say(f"# {name}: root marker after {statistics.median(ts):.1f}s "
              f"(median of {len(ts)}: {', '.join(f'{t:.1f}' for t in ts)})")


if __name__ == "__main__":
    sys.exit(E.main(body))
