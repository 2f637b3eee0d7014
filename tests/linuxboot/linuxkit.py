# SPDX-License-Identifier: BSD-3-Clause
"""The Linux boot kit: a Debian cloud kernel, an initramfs with
vhdboot-attach, nbdkit + the project's plugin, nbd-client and dmsetup, and
a busybox root inside a GPT disk image, booted through vhdboot.efi under
OVMF (TCG) by the harness of tests/efi (efitest.py).

Packages come from the Debian archive (apt-get download) into a cache in
the build tree (LINUXBOOT_CACHE) and are unpacked with dpkg-deb -x; with
the archive unreachable and nothing cached the test is skipped (exit 77).
nbdkit, dmsetup and their libraries are the host's (the plugin is built
against the host's nbdkit). Nothing here needs root.

Environment (besides efitest's): VHDBOOT_ATTACH, NBD_PLUGIN,
LINUXBOOT_CACHE, LINUXBOOT_PLUGIN_PATH (where vhdboot-attach looks for the
plugin: the initramfs puts it there).
"""
import glob
import gzip
import lzma
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "efi"))
import efitest as E  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = E.MIB
PACKAGES = ["busybox-static", "nbd-client", "libnl-genl-3-200", "systemd-boot-efi"]
MODULES = ["virtio_pci", "virtio_blk", "nbd", "dm_mod", "fat", "vfat", "exfat", "nls_cp437",
           "nls_iso8859_1", "nls_utf8", "nls_ascii", "efivarfs"]
NBDKIT = "/usr/bin/nbdkit"
NBDKIT_FILTERS = "/usr/lib/x86_64-linux-gnu/nbdkit/filters"
NBDKIT_PLUGINS = "/usr/lib/x86_64-linux-gnu/nbdkit/plugins"


def kernel_package():
    """The versioned image package the metapackage points at."""
    out = E.run(["apt-cache", "depends", "linux-image-cloud-amd64"])
    m = re.search(r"Depends: (linux-image-[0-9][^\s]*-cloud-amd64)", out)
    if not m:
        raise E.Skip("apt-cache knows no linux-image-cloud-amd64 (no Debian archive configured)")
    return m.group(1)


class Kit:
    def __init__(self, env):
        self.env = env
        self.cache = os.path.abspath(os.environ.get("LINUXBOOT_CACHE") or env.path("cache"))
        self.attach = os.environ.get("VHDBOOT_ATTACH", "")
        self.plugin = os.environ.get("NBD_PLUGIN", "")
        self.plugin_dest = os.environ.get(
            "LINUXBOOT_PLUGIN_PATH",
            "/usr/lib/x86_64-linux-gnu/nbdkit/plugins/nbdkit-vhd-plugin.so")
        for what, path in (("VHDBOOT_ATTACH", self.attach), ("NBD_PLUGIN", self.plugin)):
            if not path or not os.path.exists(path):
                raise RuntimeError(f"{what} does not name a built file ({path!r})")
        for prog in ("dpkg-deb", "objcopy", "mkfs.ext4", "debugfs", "e2fsck", "fsck.fat"):
            E.need(prog)
        for path in (NBDKIT, "/usr/sbin/dmsetup"):
            if not os.path.exists(path):
                raise E.Skip(f"{path} not installed (scripts/install-deps.sh)")
        os.makedirs(self.cache, exist_ok=True)
        self.fetch()

    # ---- packages ----------------------------------------------------------

    def download(self, subdir, names):
        """The .deb files of names (exact package names) in the cache's
        subdir, downloaded when missing; Skip when the archive cannot be
        reached."""
        debs = os.path.join(self.cache, subdir)
        os.makedirs(debs, exist_ok=True)
        have = {f.split("_")[0] for f in os.listdir(debs) if f.endswith(".deb")}
        missing = [n for n in names if n not in have]
        if missing:
            p = subprocess.run(["apt-get", "download", *missing], cwd=debs,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if p.returncode != 0:
                raise E.Skip("the Debian archive is unreachable and the package cache "
                             f"({debs}) lacks {' '.join(missing)}: "
                             + p.stdout.decode(errors="replace").strip().splitlines()[-1])
        return debs

    def fetch(self):
        debs = os.path.join(self.cache, "debs")
        have = os.listdir(debs) if os.path.isdir(debs) else []
        kernel = next((f.split("_")[0] for f in have if f.startswith("linux-image-")), None)
        debs = self.download("debs", PACKAGES + [kernel or kernel_package()])
        self.roots = {}
        for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
            name = os.path.basename(deb).split("_")[0]
            dest = os.path.join(self.cache, "unpacked", name)
            stamp = dest + ".done"
            if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(deb):
                shutil.rmtree(dest, ignore_errors=True)
                os.makedirs(dest)
                E.run(["dpkg-deb", "-x", deb, dest])
                open(stamp, "w").close()
            key = "linux-image" if name.startswith("linux-image") else name
            self.roots[key] = dest
        k = self.roots["linux-image"]
        self.vmlinuz = glob.glob(os.path.join(k, "boot", "vmlinuz-*"))[0]
        self.modroot = glob.glob(os.path.join(k, "lib", "modules", "*"))[0]
        self.busybox = os.path.join(self.roots["busybox-static"], "bin", "busybox")
        self.stub = os.path.join(self.roots["systemd-boot-efi"],
                                 "usr/lib/systemd/boot/efi/linuxx64.efi.stub")
        self.nbd_client = os.path.join(self.roots["nbd-client"], "sbin/nbd-client")
        self.libpath = os.path.join(self.roots["libnl-genl-3-200"], "lib/x86_64-linux-gnu")

    # ---- initramfs ------------------------------------------------------------

    def _copy_bin(self, w, src, dest):
        """A program and the shared libraries it needs (the host's, or the
        unpacked packages')."""
        os.makedirs(os.path.dirname(w + dest), exist_ok=True)
        shutil.copy2(src, w + dest)
        out = subprocess.run(["ldd", src], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, LD_LIBRARY_PATH=self.libpath)).stdout
        for m in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", out):
            lib = m.group(1)
            dest = lib
            if lib.startswith(self.libpath):   # an unpacked package's library
                dest = "/lib/x86_64-linux-gnu/" + os.path.basename(lib)
            if not os.path.exists(w + dest):
                os.makedirs(os.path.dirname(w + dest), exist_ok=True)
                shutil.copy(os.path.realpath(lib), w + dest)   # ld.so must stay executable

    def _modules(self, w):
        """The modules of MODULES and what they depend on, in load order.
        The dependencies come from each module's .modinfo "depends=" (no
        depmod needed); xz-compressed modules are unpacked for busybox's
        insmod."""
        byname, deps = {}, {}
        for k in glob.glob(os.path.join(self.modroot, "kernel", "**", "*.ko*"), recursive=True):
            name = re.sub(r"\.ko(\.\w+)?$", "", os.path.basename(k)).replace("-", "_")
            byname[name] = k
            data = open(k, "rb").read()
            if k.endswith(".xz"):
                data = lzma.decompress(data)
            m = re.search(rb"\0depends=([^\0]*)\0", data)
            deps[k] = [d.replace("-", "_") for d in m.group(1).decode().split(",") if d] if m else []
        deps = {k: [byname[d] for d in v if d in byname] for k, v in deps.items()}
        order, seen = [], set()

        def visit(k):
            if k in seen:
                return
            seen.add(k)
            for d in deps[k]:
                visit(d)
            order.append(k)

        for n in MODULES:
            if n in byname:
                visit(byname[n])
        listing = []
        for k in order:
            src = k
            rel = re.sub(r"\.ko\.\w+$", ".ko", os.path.relpath(k, self.modroot))
            dest = os.path.join(w, "lib/modules", rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if src.endswith(".xz"):
                with lzma.open(src) as s, open(dest, "wb") as d:
                    shutil.copyfileobj(s, d)
            elif src.endswith(".ko"):
                shutil.copyfile(src, dest)
            else:
                raise RuntimeError(f"module {k}: compression not handled")
            listing.append("/lib/modules/" + rel)
        with open(os.path.join(w, "etc/modules.load"), "w") as f:
            f.write("".join(m + "\n" for m in listing))

    def initramfs(self, out, init=None, extra=()):
        """init: the /init script (init.sh when None); extra: (host
        program, path in the initramfs) pairs copied with their
        libraries."""
        w = self.env.path("initramfs.d")
        shutil.rmtree(w, ignore_errors=True)
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run",
                  "tmp", "lib", "lib64", "var/tmp"):
            os.makedirs(os.path.join(w, d), exist_ok=True)
        shutil.copy2(self.busybox, w + "/bin/busybox")
        applets = E.run([self.busybox, "--list"]).split()
        for a in applets:
            if not os.path.exists(f"{w}/bin/{a}"):
                os.symlink("busybox", f"{w}/bin/{a}")
        shutil.copy2(init or os.path.join(HERE, "init.sh"), w + "/init")
        os.chmod(w + "/init", 0o755)
        self._copy_bin(w, self.attach, "/sbin/vhdboot-attach")
        os.makedirs(w + "/scripts/local-top")
        shutil.copy2(os.path.join(HERE, "..", "..", "tools", "vhdboot-attach", "initramfs-tools",
                                  "local-top"), w + "/scripts/local-top/vhdboot")
        shutil.copy2(os.path.join(HERE, "functions.sh"), w + "/scripts/functions")
        self._copy_bin(w, NBDKIT, NBDKIT)
        self._copy_bin(w, os.path.join(NBDKIT_FILTERS, "nbdkit-cow-filter.so"),
                       NBDKIT_FILTERS + "/nbdkit-cow-filter.so")
        self._copy_bin(w, self.plugin, self.plugin_dest)
        self._copy_bin(w, self.nbd_client, "/sbin/nbd-client")
        self._copy_bin(w, "/usr/sbin/dmsetup", "/sbin/dmsetup")
        for src, dest in extra:
            self._copy_bin(w, src, dest)
        self._modules(w)
        listing = E.run(["sh", "-c", "find . | LC_ALL=C sort"], cwd=w).encode()
        p = subprocess.run([self.busybox, "cpio", "-o", "-H", "newc"], cwd=w, input=listing,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        with gzip.open(out, "wb", compresslevel=6) as f:
            f.write(p.stdout)
        return out

    def uki(self, out, initrd, cmdline):
        """kernel + initramfs + built-in command line as one EFI program
        (systemd-stub); vhdboot.cfg's args= replaces the command line."""
        cl = self.env.path("uki-cmdline.txt")
        osrel = self.env.path("uki-osrel.txt")
        with open(cl, "w") as f:
            f.write(cmdline)
        with open(osrel, "w") as f:
            f.write('ID=vhdtest\nPRETTY_NAME="vhdboot Linux test"\n')
        E.run(["objcopy",
               "--add-section", f".osrel={osrel}", "--change-section-vma", ".osrel=0x20000",
               "--add-section", f".cmdline={cl}", "--change-section-vma", ".cmdline=0x30000",
               "--add-section", f".linux={self.vmlinuz}",
               "--change-section-vma", ".linux=0x2000000",
               "--add-section", f".initrd={initrd}", "--change-section-vma", ".initrd=0x3000000",
               self.stub, out])
        return out

    # ---- the disk inside the image ---------------------------------------------

    def rootfs(self, out, size, tree=None, mkfs_opts=()):
        """An ext4 image of size bytes: the busybox root, or tree (a
        directory made by the caller) when given; mkfs_opts are added to
        mkfs.ext4's options."""
        with open(out, "wb") as f:
            f.truncate(size)
        if tree:
            E.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "VROOT", *mkfs_opts, "-d", tree, out])
            return out
        r = self.env.path("rootfs.d")
        shutil.rmtree(r, ignore_errors=True)
        for d in ("bin", "sbin", "etc", "dev", "proc", "sys", "run", "tmp"):
            os.makedirs(os.path.join(r, d))
        shutil.copy2(self.busybox, r + "/bin/busybox")
        for a in E.run([self.busybox, "--list"]).split():
            if not os.path.exists(f"{r}/bin/{a}"):
                os.symlink("busybox", f"{r}/bin/{a}")
        shutil.copy2(os.path.join(HERE, "rootinit.sh"), r + "/sbin/init")
        self._copy_bin(r, self.attach, "/sbin/vhdboot-attach")   # for --detach
        os.chmod(r + "/sbin/init", 0o755)
        with open(r + "/etc/rootmarker", "w") as f:
            f.write("busybox root of the vhdboot Linux test\n")
        # 4096-byte blocks: a smaller block than the disk's sector (4096 in
        # the 4Kn case) cannot be mounted.
        E.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "VROOT", *mkfs_opts, "-d", r, out])
        return out

    def inner_disk(self, name, uki, size=112 * MIB, esp_mib=48, sector=512, tree=None,
                   mkfs_opts=()):
        """GPT: p1 a FAT ESP with the UKI as \\EFI\\BOOT\\BOOTX64.EFI, p2 an
        ext4 busybox root. Returns (path, root partition GUID). The copy of
        the root into the disk keeps holes, so that a large, mostly empty
        disk costs only what mkfs wrote."""
        path = self.env.path(name)
        if sector == 512:
            layout = E.sgdisk_disk(path, size, [(esp_mib, "ef00", "INNERESP"),
                                                (None, "8300", "VROOT")])
            (s1, l1, _), (s2, l2, g2) = layout
        else:
            first = MIB // sector
            esp_last = first + esp_mib * MIB // sector - 1
            guids = E.write_gpt(path, size, sector, [
                (first, esp_last, E.ESP_TYPE, "INNERESP"),
                (esp_last + 1, None, "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "VROOT")])
            s1, l1 = gpt_partition(path, 1, sector)
            s2, l2 = gpt_partition(path, 2, sector)
            g2 = str(guids[1]).upper()
        fat = E.format_fat(path, s1, l1, sector=sector, label="INNERESP")
        fat.mkdir("/EFI", "/EFI/BOOT")
        fat.put(uki, "/EFI/BOOT/BOOTX64.EFI")
        part = self.rootfs(self.env.path("root.ext4"), l2, tree, mkfs_opts)
        copy_data(part, path, s2)
        os.unlink(part)
        return path, g2


def copy_data(src_path, dst_path, at):
    """src's data regions (SEEK_DATA/SEEK_HOLE) into dst from byte at:
    the holes of src stay holes in dst."""
    with open(src_path, "rb") as src, open(dst_path, "r+b") as dst:
        fd, end = src.fileno(), os.fstat(src.fileno()).st_size
        pos = 0
        while pos < end:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:   # ENXIO: nothing but a hole up to the end
                break
            stop = os.lseek(fd, pos, os.SEEK_HOLE)
            src.seek(pos)
            dst.seek(at + pos)
            left = stop - pos
            while left:
                chunk = src.read(min(left, 4 * MIB))
                dst.write(chunk)
                left -= len(chunk)
            pos = stop


def cmdline(root, extra=""):
    # no_timer_check: under TCG on a loaded machine the kernel's check of
    # the IO-APIC timer can fail and panic ("IO-APIC + timer doesn't work"),
    # seen once in 12 boots.
    return (f"console=ttyS0,115200 panic=-1 loglevel=4 no_timer_check root={root} "
            f"{extra}").strip()


# ---- host-side checks after a boot ----------------------------------------------

def get_file(env, host, name, out):
    E.run(["mcopy", "-o", "-i", host.esp.spec, "::/VHD/" + name, out])
    return out


def run_rc(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)
    return p.returncode, p.stdout.decode(errors="replace")


def gpt_partition(path, number, sector):
    """(first byte, length) of a GPT partition, any sector size (sgdisk
    reads only 512-byte-sector files)."""
    import struct
    with open(path, "rb") as f:
        f.seek(sector)
        hdr = f.read(92)
        if hdr[:8] != b"EFI PART":
            raise RuntimeError(f"{path}: no GPT with {sector}-byte sectors")
        entries_lba, count, size = struct.unpack_from("<QII", hdr, 72)
        f.seek(entries_lba * sector + (number - 1) * size)
        first, last = struct.unpack_from("<QQ", f.read(size), 32)
    return first * sector, (last - first + 1) * sector


def read_back(env, kit, image, expect_hash, problems, fmt_qemu=None, sector=512,
              written=True):
    """The image on the host: vhdtool check, qemu-img where it reads the
    format, the guest's files and hash through debugfs on a raw copy of
    the root partition, e2fsck clean."""
    rc, out = run_rc([env.vhdtool, "check", image])
    # Clean means 0: the loader's rw reserve is reported as reserve, not
    # as leaked space (docs/efi-handoff.md).
    if rc != 0:
        problems.append(f"vhdtool check exit {rc}: {out.strip()[:300]}")
    E.say(f"#   {os.path.basename(image)}: vhdtool check exit {rc}")
    raw = env.path("readback.raw")
    if os.path.exists(raw):
        os.unlink(raw)
    env.vhdtool_run("convert", "-O", "raw", image, raw)
    if fmt_qemu:
        if fmt_qemu == "vhdx":
            rc, out = run_rc(["qemu-img", "check", "-f", "vhdx", image])
            if rc != 0:
                problems.append(f"qemu-img check exit {rc}: {out.strip()[:300]}")
        rc, out = run_rc(["qemu-img", "compare", "-f", fmt_qemu, "-F", "raw", image, raw])
        if rc != 0:
            problems.append(f"qemu-img compare with vhdtool's raw copy: exit {rc}: {out.strip()[:200]}")
    start, left = gpt_partition(raw, 2, sector)
    part = env.path("readback.ext4")
    with open(raw, "rb") as src, open(part, "wb") as dst:
        src.seek(start)
        while left:
            chunk = src.read(min(left, 4 * MIB))
            if not chunk:
                break
            dst.write(chunk)
            left -= len(chunk)
    os.unlink(raw)
    rc, out = run_rc(["e2fsck", "-fn", part])
    if rc != 0:
        problems.append(f"e2fsck -fn exit {rc}: {out.strip()[-300:]}")
    rc, text = run_rc(["debugfs", "-R", "cat /written.txt", part])
    if written and "written by the guest" not in text:
        problems.append(f"/written.txt not read back: {text.strip()[:200]}")
    if not written and "written by the guest" in text:
        problems.append("/written.txt is in the image after a boot that should not write it")
    rc, stored = run_rc(["debugfs", "-R", "cat /big.sha256", part])
    big = env.path("big.bin")
    run_rc(["debugfs", "-R", f"dump /big.bin {big}", part])
    import hashlib
    got = hashlib.sha256(open(big, "rb").read()).hexdigest() if os.path.exists(big) else None
    if expect_hash and got != expect_hash:
        problems.append(f"/big.bin hash {got}, the guest printed {expect_hash}")
    if expect_hash and expect_hash not in stored:
        problems.append("/big.sha256 does not hold the guest's hash")
    for p in (part, big):
        if os.path.exists(p):
            os.unlink(p)


def host_fat_clean(env, host, problems):
    """fsck.fat -n on a copy of the host ESP: not left dirty."""
    part = env.path("hostesp.fat")
    with open(host.path, "rb") as src, open(part, "wb") as dst:
        src.seek(host.esp_start)
        left = host.esp_size
        while left:
            chunk = src.read(min(left, 4 * MIB))
            dst.write(chunk)
            left -= len(chunk)
    rc, out = run_rc(["fsck.fat", "-n", part])
    os.unlink(part)
    if rc != 0 or "dirty" in out.lower():
        problems.append(f"host FAT not clean (fsck.fat -n exit {rc}): {out.strip()[-200:]}")


def expect_root(b, problems, server, done="LINUXBOOT-ROOT-DONE"):
    """The boot reached the root marker and finished; server: '@nbdkit'
    for the NBD path, 'none' for device-mapper, None to skip."""
    if b.rc == "timeout":
        problems.append("timed out")
    marker = next((l for l in b.lines if "LINUXBOOT-ROOT-MARKER" in l), None)
    if not marker:
        fails = [l for l in b.lines if "error" in l.lower() or "FAILED" in l]
        problems.append("no root marker" + (": " + " | ".join(fails[:3]) if fails else ""))
        return None
    if server and f"server={server}" not in marker:
        problems.append(f"server: {marker}")
    if not b.has(done):
        problems.append(f"the boot did not finish ({done!r} missing)")
    queue = b.value("LINUXBOOT-QUEUE")
    if server == "@nbdkit" and queue:
        kb = dict(kv.split("=", 1) for kv in queue.split()).get("max_kb", "")
        if not kb.isdigit() or int(kb) < 1024:
            problems.append(f"the NBD root takes requests of at most {kb or '?'} KiB "
                            "(vhdboot-attach raises the kernel's 128 KiB to 1280)")
    warns = [l for l in b.lines if "LINUXBOOT-WARN" in l]
    if warns:
        problems.append(" | ".join(warns))
    h = b.value("LINUXBOOT-HASH")
    return h.split()[0] if h else None


# ---- one test script's setting and cases ------------------------------------------

class Setup:
    """What every case of a script shares: the kit, the initramfs, a UKI
    whose built-in command line boots the inner disk directly (vhdboot.cfg's
    args= replaces it), the inner disk."""

    def __init__(self, env, sector=512):
        self.env = env
        self.kit = Kit(env)
        self.initrd = self.kit.initramfs(env.path("initrd.gz"))
        self.uki = self.kit.uki(env.path("linux.efi"), self.initrd,
                                cmdline("/dev/vda2", "vhdtest.direct=1"))
        self.sector = sector
        self.inner, self.root_guid = self.kit.inner_disk("inner.raw", self.uki, sector=sector)
        self.args = cmdline(f"PARTUUID={self.root_guid}")
        self.times = {}

    def host(self, name, images):
        """A host disk with images (paths) under \\VHD\\."""
        host = E.HostDisk(self.env, name=f"host-{name}.img", esp_mib=400)
        for path in images:
            host.esp.put(path, "/VHD/" + os.path.basename(path))
        return host

    def boot(self, results, name, host, top, mode, server, extra="", check=None, run=None,
             done="LINUXBOOT-ROOT-DONE", settings=""):
        """Boot host with \\VHD\\top in mode; check(boot, problems, hash)
        looks at the host afterwards; run numbers repeated boots of one case
        (their times go together); settings are more vhdboot.cfg lines.
        Returns the Boot."""
        host.config(f"image=\\VHD\\{top}\nmode={mode}\nargs={self.args} {extra}\n{settings}")
        b = E.boot(self.env, [host.path], timeout=900, memory=1024)
        problems = []
        want = expect_root(b, problems, server, done)
        t = b.time_of("LINUXBOOT-ROOT-MARKER")
        if t is not None:
            self.times.setdefault(name, []).append(t)
        if not problems:
            host_fat_clean(self.env, host, problems)
            if check:
                check(b, problems, want)
        label = f"{name} boot {run}" if run else name
        results.check(f"{label} (root marker at {t or 0:.1f}s)", problems, b)
        return b

    def fetch(self, host, names, subdir):
        """Copies of host:\\VHD\\names in a directory of their own (a chain
        stays together)."""
        d = self.env.path(subdir)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return [get_file(self.env, host, n, os.path.join(d, n)) for n in names]

    def report_times(self):
        import statistics
        for name, ts in self.times.items():
            E.say(f"# {name}: root marker after {statistics.median(ts):.1f}s "
                  f"(median of {len(ts)}: {', '.join(f'{t:.1f}' for t in ts)})")
