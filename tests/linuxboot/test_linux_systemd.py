#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A Debian root with systemd as PID 1 in a dynamic VHDX, booted in rw
through vhdboot.efi and vhdboot-attach (linuxkit.py): the test of the
shutdown order of issue 12. The root is Debian 12's systemd and the
libraries it needs, unpacked from the archive (cached in the build tree;
no maintainer scripts, so no root needed), busybox as /bin/sh, and:

  vhdtest.service   after multi-user.target: prints the marker with the
                    name of the image server (@nbdkit, a root storage
                    daemon), writes a file and 8 MiB of random data with
                    its hash, then `systemctl poweroff`
  vhdboot.shutdown  the project's system-shutdown hook, with
                    /usr/sbin/vhdboot-attach

systemd must leave nbdkit alive through its killing spree, and after the
power-off the image must check clean (qemu-img check: an empty VHDX log),
hold the file and the hash, and the host FAT must not be dirty (the hook
released it).
"""
import glob
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E
MIB = E.MIB

# systemd's dependency closure in Debian 12 (apt-cache depends --recurse),
# without debconf, dpkg and the installer libraries that only maintainer
# scripts use; mount and base-files (os-release) besides.
ROOT_PACKAGES = """systemd libsystemd-shared libsystemd0 libc6 libgcc-s1 gcc-12-base libacl1
libapparmor1 libargon2-1 libaudit-common libaudit1 libblkid1 libcap-ng0 libcap2 libcrypt1
libcryptsetup12 libdevmapper1.02.1 libfdisk1 libffi8 libgcrypt20 libgpg-error0 libip4tc2
libjson-c5 libkmod2 liblz4-1 liblzma5 libmount1 libp11-kit0 libpam0g libpcre2-8-0 libseccomp2
libselinux1 libssl3 libudev1 libuuid1 libzstd1 mount libsmartcols1 base-files""".split()

SERVICE = """[Unit]
Description=vhdboot test: write a file, then power off
After=multi-user.target

[Service]
Type=oneshot
StandardOutput=journal+console
ExecStart=/bin/sh /usr/local/sbin/vhdtest
ExecStartPost=/bin/systemctl --no-block poweroff

[Install]
WantedBy=multi-user.target
"""

SCRIPT = r"""#!/bin/sh
pid=$(cat /run/vhdboot/nbdkit.pid)
name=$(tr '\0' ' ' < /proc/$pid/cmdline | cut -d' ' -f1)
echo "LINUXBOOT-ROOT-MARKER $(cut -d' ' -f1 /proc/uptime) init=$(cat /proc/1/comm) server=$name" > /dev/console
echo "written by the guest under systemd, boot $(cat /proc/sys/kernel/random/boot_id)" > /written.txt
dd if=/dev/urandom of=/big.bin bs=1M count=8 2> /dev/null
sha256sum /big.bin > /big.sha256
echo "LINUXBOOT-HASH: $(cut -d' ' -f1 /big.sha256)" > /dev/console
sync
"""


def make_tree(env, kit):
    debs = kit.download("debs-systemd", ROOT_PACKAGES)
    t = env.path("systemd-root")
    shutil.rmtree(t, ignore_errors=True)
    os.makedirs(t)
    for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
        E.run(["dpkg-deb", "-x", deb, t])
    # merged /usr, as every Debian 12 installation has it (so /lib/systemd,
    # where Debian's systemd looks for system-shutdown hooks, is
    # /usr/lib/systemd, where the project installs its hook)
    for d in ("bin", "sbin", "lib", "lib64"):
        top, usr = os.path.join(t, d), os.path.join(t, "usr", d)
        if os.path.isdir(top) and not os.path.islink(top):
            shutil.copytree(top, usr, symlinks=True, dirs_exist_ok=True)
            shutil.rmtree(top)
        os.makedirs(usr, exist_ok=True)
        os.symlink("usr/" + d, top)
    for d in ("proc", "sys", "dev", "run", "tmp", "root", "var/log", "etc/systemd/system",
              "etc/systemd/system/multi-user.target.wants", "usr/local/sbin",
              "usr/lib/systemd/system-shutdown", "usr/sbin", "sbin"):
        os.makedirs(os.path.join(t, d), exist_ok=True)
    shutil.copy2(kit.busybox, t + "/bin/busybox")
    for a in ("sh", "cat", "cut", "tr", "dd", "sha256sum", "sync", "sleep"):
        if not os.path.lexists(f"{t}/bin/{a}"):
            os.symlink("busybox", f"{t}/bin/{a}")
    if not os.path.lexists(t + "/sbin/init"):
        os.symlink("/lib/systemd/systemd", t + "/sbin/init")
    with open(t + "/etc/passwd", "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(t + "/etc/group", "w") as f:
        f.write("root:x:0:\nsystemd-journal:x:101:\n")
    open(t + "/etc/fstab", "w").close()
    open(t + "/etc/machine-id", "w").close()
    os.symlink("/lib/systemd/system/multi-user.target", t + "/etc/systemd/system/default.target")
    # No udev in this root (it is another package): a getty on the serial
    # console would wait 90 s for its device unit.
    for unit in ("serial-getty@.service", "getty@.service"):
        os.symlink("/dev/null", t + "/etc/systemd/system/" + unit)
    with open(t + "/etc/systemd/system/vhdtest.service", "w") as f:
        f.write(SERVICE)
    os.symlink("../vhdtest.service", t + "/etc/systemd/system/multi-user.target.wants/vhdtest.service")
    with open(t + "/usr/local/sbin/vhdtest", "w") as f:
        f.write(SCRIPT)
    kit._copy_bin(t, kit.attach, "/usr/sbin/vhdboot-attach")
    hook = os.environ.get("VHDBOOT_SHUTDOWN_HOOK", "")
    if not os.path.exists(hook):
        raise RuntimeError(f"VHDBOOT_SHUTDOWN_HOOK does not name a built file ({hook!r})")
    shutil.copy2(hook, t + "/usr/lib/systemd/system-shutdown/vhdboot.shutdown")
    os.chmod(t + "/usr/lib/systemd/system-shutdown/vhdboot.shutdown", 0o755)
    return t


def poweroff_check(env, s, host, image, also=()):
    """The host-side check after a systemd boot of the VHDX image that
    powered off: PID 1 was systemd, the shutdown hook detached, the image
    reads back clean with the file; also: (console text, problem) pairs
    that must be on the console as well."""
    def check(b, problems, want):
        for text, problem in (("init=systemd", "PID 1 was not systemd"),
                              ("vhdboot-attach: detached /dev/nbd0",
                               "the shutdown hook did not report the detach"), *also):
            if not b.has(text):
                problems.append(problem)
        back, = s.fetch(host, [image], "back")
        L.read_back(env, s.kit, back, want, problems, "vhdx")
    return check


def body(env, results):
    if not env.vhdx_supported():
        raise E.Skip("vhdtool cannot write VHDX")
    s = L.Setup(env)
    tree = make_tree(env, s.kit)
    inner, root_guid = s.kit.inner_disk("inner-systemd.raw", s.uki, size=320 * MIB, tree=tree)
    shutil.rmtree(tree)
    img = env.path("debian.vhdx")
    E.convert(env, inner, img, "vhdx", "dynamic")
    os.unlink(inner)
    s.args = L.cmdline(f"PARTUUID={root_guid}")
    host = s.host("systemd", [img])

    s.boot(results, "systemd-vhdx-rw", host, "debian.vhdx", "rw", "@nbdkit",
           check=poweroff_check(env, s, host, "debian.vhdx"), done="reboot: Power down")
    s.report_times()


if __name__ == "__main__":
    sys.exit(E.main(body))
