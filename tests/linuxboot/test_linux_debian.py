#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A real Debian 12 root (mmdebstrap --variant=minbase from the configured
archive, systemd, udev, the cloud kernel, initramfs-tools) in a dynamic
VHDX, booted in rw through vhdboot.efi with the initramfs Debian's own
update-initramfs made with the project's hook: the issue 12 test of the
shutdown order on a real system. A unit (test_linux_systemd's vhdtest)
writes /written.txt after multi-user.target, then `systemctl poweroff`;
afterwards the VHDX checks clean (vhdtool, qemu-img: an empty log), holds
the file, e2fsck is clean and the host FAT is not dirty.

The root is cached as a tarball in LINUXBOOT_CACHE keyed by everything
that goes into it (packages, the built attach program, plugin, hooks);
without the archive and without a cache the test is skipped (77).
"""
import glob
import hashlib
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402
import test_linux_systemd as S  # noqa: E402

E = L.E
MIB = E.MIB
SRC = os.path.join(L.HERE, "..", "..", "tools", "vhdboot-attach", "initramfs-tools")
INCLUDE = ("systemd-sysv,udev,linux-image-cloud-amd64,initramfs-tools,nbdkit,nbd-client,"
           "dmsetup,e2fsprogs,kmod")
# where the configured hook looks for vhdboot-attach
SBINDIR = os.environ.get("SBINDIR", "/usr/local/sbin")

CUSTOMIZE = r"""set -e
r=$1
install -D -m 755 "$ATTACH" "$r$SBINDIR/vhdboot-attach"
install -D -m 644 "$PLUGIN" "$r$PLUGIN_PATH"
install -D -m 755 "$HOOK" "$r/usr/share/initramfs-tools/hooks/vhdboot"
install -D -m 755 "$LOCAL_TOP" "$r/usr/share/initramfs-tools/scripts/local-top/vhdboot"
install -D -m 755 "$SHUTDOWN" "$r/usr/lib/systemd/system-shutdown/vhdboot.shutdown"
install -D -m 644 "$SERVICE" "$r/etc/systemd/system/vhdtest.service"
install -D -m 755 "$SCRIPT" "$r/usr/local/sbin/vhdtest"
mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
ln -sf ../vhdtest.service "$r/etc/systemd/system/multi-user.target.wants/vhdtest.service"
echo vhdtest > "$r/etc/hostname"
chroot "$r" update-initramfs -u -k all
"""


def make_root(env, kit):
    """The cached root tarball, made by mmdebstrap when missing."""
    hook = os.environ.get("VHDBOOT_HOOK", "")
    shutdown = os.environ.get("VHDBOOT_SHUTDOWN_HOOK", "")
    for what, p in (("VHDBOOT_HOOK", hook), ("VHDBOOT_SHUTDOWN_HOOK", shutdown)):
        if not os.path.exists(p):
            raise RuntimeError(f"{what} does not name a built file ({p!r})")
    files = {"ATTACH": kit.attach, "PLUGIN": kit.plugin, "HOOK": hook,
             "LOCAL_TOP": os.path.join(SRC, "local-top"), "SHUTDOWN": shutdown}
    service, script = env.path("vhdtest.service"), env.path("vhdtest.sh")
    with open(service, "w") as f:
        f.write(S.SERVICE)
    with open(script, "w") as f:
        f.write(S.SCRIPT)
    files.update(SERVICE=service, SCRIPT=script)
    key = hashlib.sha256((INCLUDE + CUSTOMIZE + kit.plugin_dest + SBINDIR).encode())
    for name in sorted(files):
        key.update(open(files[name], "rb").read())
    tarball = os.path.join(kit.cache, f"debian-root-{key.hexdigest()[:16]}.tar")
    if os.path.exists(tarball):
        E.say(f"# Debian root from the cache: {tarball}")
        return tarball
    E.need("mmdebstrap")
    if os.getuid() != 0:
        raise E.Skip("mmdebstrap's root mode (chroot for update-initramfs) needs root")
    for old in glob.glob(os.path.join(kit.cache, "debian-root-*.tar")):
        os.unlink(old)
    hookfile = env.path("customize.sh")
    with open(hookfile, "w") as f:
        f.write(CUSTOMIZE)
    tmp = tarball[:-len(".tar")] + ".part.tar"   # mmdebstrap picks the format by the name
    p = subprocess.run(
        ["mmdebstrap", "--mode=root", "--variant=minbase", "--include=" + INCLUDE,
         "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
         "--dpkgopt=path-exclude=/usr/share/locale/*",
         f"--customize-hook=sh {hookfile} \"$1\"", "bookworm", tmp],
        env=dict(os.environ, SBINDIR=SBINDIR, PLUGIN_PATH=kit.plugin_dest, **files),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        if os.path.exists(tmp):
            os.unlink(tmp)
        tail = p.stdout.strip().splitlines()[-15:]
        for line in tail:
            E.say("#   " + line)
        if any("Failed to fetch" in l or "Could not resolve" in l or "Temporary failure" in l
               for l in p.stdout.splitlines()):
            raise E.Skip("the Debian archive is unreachable and no Debian root is cached")
        raise RuntimeError(f"mmdebstrap exit {p.returncode}")
    os.rename(tmp, tarball)
    return tarball


def body(env, results):
    if not env.vhdx_supported():
        raise E.Skip("vhdtool cannot write VHDX")
    s = L.Setup(env)
    tarball = make_root(env, s.kit)
    tree = env.path("debian-root")
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    E.run(["tar", "-xf", tarball, "-C", tree, "--numeric-owner"])
    # The UKI: the root's own kernel and the initramfs update-initramfs made.
    s.kit.vmlinuz = sorted(glob.glob(tree + "/boot/vmlinuz-*"))[-1]
    initrd = sorted(glob.glob(tree + "/boot/initrd.img-*"))[-1]
    uki = s.kit.uki(env.path("debian.efi"), initrd, L.cmdline("/dev/vda2"))
    inner, guid = s.kit.inner_disk("inner-debian.raw", uki, size=1536 * MIB, tree=tree)
    shutil.rmtree(tree)
    img = env.path("debian.vhdx")
    E.convert(env, inner, img, "vhdx", "dynamic")
    os.unlink(inner)
    # blkid spells the PARTUUID in lower case (initramfs-tools compares strings)
    s.args = L.cmdline(f"PARTUUID={guid.lower()}", "rw")
    host = E.HostDisk(env, name="host-debian.img", esp_mib=os.path.getsize(img) // MIB + 300)
    host.esp.put(img, "/VHD/debian.vhdx")
    os.unlink(img)

    check = S.poweroff_check(env, s, host, "debian.vhdx", also=(
        ("Running /scripts/local-top", "initramfs-tools' init did not run its local-top scripts"),
        ("Reached target multi-user.target", "systemd did not reach multi-user.target")))
    s.boot(results, "debian-vhdx-rw", host, "debian.vhdx", "rw", "@nbdkit", check=check,
           done="reboot: Power down")
    s.report_times()


if __name__ == "__main__":
    sys.exit(E.main(body))
