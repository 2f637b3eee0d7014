# SPDX-License-Identifier: BSD-3-Clause
"""Shared harness of the UEFI loader tests.

Builds disks without root (sgdisk, mtools, mkfs.exfat + exfatput.py, a
small GPT writer for 4096-byte sectors, mkfs.ext2/3/4 -d + debugfs, mkntfs
+ ntfs-3g through FUSE), converts them with vhdtool, boots
qemu-system-x86_64 with OVMF (TCG, serial console, one machine at a time)
and reads the payload's serial lines. Every test script prints one line
per case and ends with "N passed, M failed"; it exits 77 when qemu-system
or OVMF is missing, 1 when a case failed.

Environment: VHDBOOT_EFI, PAYLOAD_EFI (built images), VHDTOOL, TMPDIR,
EFI_KEEP=1 keeps the work directory, EFI_VERBOSE=1 prints serial logs of
failed cases.
"""
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
BASIC_DATA_TYPE = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
VHDBOOT_GUID = "0B00F805-61BE-4224-AC21-89E3561F90FD"
MIB = 1 << 20

OVMF_CODE_CANDIDATES = ["/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd",
                        "/usr/share/ovmf/OVMF.fd", "/usr/share/edk2/ovmf/OVMF_CODE.fd"]
OVMF_VARS_CANDIDATES = ["/usr/share/OVMF/OVMF_VARS_4M.fd", "/usr/share/OVMF/OVMF_VARS.fd",
                        "/usr/share/edk2/ovmf/OVMF_VARS.fd"]


class Skip(Exception):
    pass


def say(msg):
    print(msg, flush=True)


def run(cmd, **kw):
    """Run a command; raise with its output when it fails."""
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n"
                           f"{p.stdout.decode(errors='replace')}")
    return p.stdout.decode(errors="replace")


def need(prog):
    path = shutil.which(prog) or (os.path.exists(f"/usr/sbin/{prog}") and f"/usr/sbin/{prog}")
    if not path:
        raise RuntimeError(f"{prog} not found (install it: see scripts/install-deps.sh)")
    return path


class Env:
    """Tools and paths, found once per test script."""

    def __init__(self):
        self.qemu = shutil.which("qemu-system-x86_64")
        self.code = next((p for p in OVMF_CODE_CANDIDATES if os.path.exists(p)), None)
        self.vars = next((p for p in OVMF_VARS_CANDIDATES if os.path.exists(p)), None)
        if not self.qemu:
            raise Skip("qemu-system-x86_64 not found")
        if not self.code or not self.vars:
            raise Skip("OVMF firmware not found")
        self.loader = os.environ.get("VHDBOOT_EFI", "")
        self.payload = os.environ.get("PAYLOAD_EFI", "")
        self.vhdtool = os.environ.get("VHDTOOL", "")
        for what, path in (("VHDBOOT_EFI", self.loader), ("PAYLOAD_EFI", self.payload),
                           ("VHDTOOL", self.vhdtool)):
            if not path or not os.path.exists(path):
                raise RuntimeError(f"{what} does not name a built file ({path!r})")
        for prog in ("sgdisk", "mformat", "mcopy", "mmd", "mdel", "mkfs.exfat"):
            need(prog)
        base = os.environ.get("TMPDIR") or None
        self.work = tempfile.mkdtemp(prefix="efi-", dir=base)

    def path(self, name):
        return os.path.join(self.work, name)

    def cleanup(self):
        if os.environ.get("EFI_KEEP"):
            say(f"# work directory kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def vhdtool_run(self, *args):
        return run([self.vhdtool, *map(str, args)])

    def vhdx_supported(self):
        probe = self.path("probe.vhdx")
        try:
            self.vhdtool_run("create", "-f", "vhdx", "-s", "8M", probe)
            self.vhdtool_run("info", probe)
            return True
        except RuntimeError:
            return False
        finally:
            if os.path.exists(probe):
                os.unlink(probe)


# ---- data -------------------------------------------------------------------

def pattern(size, seed):
    """Deterministic bytes (a cheap PRNG stream; random.Random is seeded)."""
    rnd = random.Random(seed)
    return rnd.randbytes(size)


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


# ---- GPT for any sector size -------------------------------------------------

def write_gpt(path, size, sector, parts):
    """A GPT disk of `size` bytes with `sector`-byte sectors; parts is a list
    of (first_lba, last_lba or None, type_guid, name). Used for 4096-byte
    sector disks, which sgdisk cannot make in a file."""
    lbas = size // sector
    entries = bytearray(128 * 128)
    part_guids = []
    for i, (first, last, ptype, name) in enumerate(parts):
        last = last if last is not None else lbas - 1 - 33 * 512 // sector - 1
        pg = uuid.uuid4()
        part_guids.append(pg)
        e = bytearray(128)
        e[0:16] = uuid.UUID(ptype).bytes_le
        e[16:32] = pg.bytes_le
        struct.pack_into("<QQQ", e, 32, first, last, 0)
        nm = name.encode("utf-16-le")[:72]
        e[56:56 + len(nm)] = nm
        entries[128 * i:128 * (i + 1)] = e
    entry_lbas = len(entries) // sector
    disk_guid = uuid.uuid4()

    def header(my, alt, entries_lba):
        h = bytearray(92)
        h[0:8] = b"EFI PART"
        struct.pack_into("<IIIIQQQQ", h, 8, 0x00010000, 92, 0, 0, my, alt,
                         2 + entry_lbas, lbas - 2 - entry_lbas)
        h[56:72] = disk_guid.bytes_le
        struct.pack_into("<QIII", h, 72, entries_lba, 128, 128, crc32(entries))
        struct.pack_into("<I", h, 16, crc32(h))
        return bytes(h) + bytes(sector - 92)

    mbr = bytearray(sector)
    mbr[446:462] = struct.pack("<BBBBBBBBII", 0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1,
                               min(lbas - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    with open(path, "r+b" if os.path.exists(path) else "w+b") as f:
        f.truncate(size)
        f.seek(0)
        f.write(mbr)
        f.write(header(1, lbas - 1, 2))
        f.write(entries)
        f.seek((lbas - 1 - entry_lbas) * sector)
        f.write(entries)
        f.write(header(lbas - 1, 1, lbas - 1 - entry_lbas))
    return part_guids


def sgdisk_disk(path, size, parts):
    """512-byte-sector GPT disk via sgdisk. parts: (size_mib or None, type, name).
    Returns [(start_byte, size_bytes, partition_guid)]."""
    with open(path, "wb") as f:
        f.truncate(size)
    args = ["sgdisk", "-o", "-a", "2048"]
    for i, (mib, ptype, name) in enumerate(parts, 1):
        end = f"+{mib}M" if mib else "0"
        args += ["-n", f"{i}:0:{end}", "-t", f"{i}:{ptype}", "-c", f"{i}:{name}"]
    run(args + [path])
    out = []
    for i in range(1, len(parts) + 1):
        info = run(["sgdisk", "-i", str(i), path])
        first = int(re.search(r"First sector: (\d+)", info).group(1))
        last = int(re.search(r"Last sector: (\d+)", info).group(1))
        guid = re.search(r"Partition unique GUID: ([0-9A-F-]+)", info).group(1)
        out.append((first * 512, (last - first + 1) * 512, guid))
    return out


# ---- FAT and exFAT contents --------------------------------------------------

class Fat:
    """A FAT file system inside an image file at a byte offset (mtools)."""

    def __init__(self, image, offset):
        self.spec = f"{image}@@{offset}"

    def mkdir(self, *dirs):
        for d in dirs:
            run(["mmd", "-D", "s", "-i", self.spec, "::" + d.replace("\\", "/")])

    def put(self, src, dest):
        run(["mcopy", "-o", "-i", self.spec, src, "::" + dest.replace("\\", "/")])

    def put_bytes(self, env, data, dest):
        tmp = env.path("put.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        self.put(tmp, dest)

    def get(self, env, src):
        tmp = env.path("get.tmp")
        if os.path.exists(tmp):
            os.unlink(tmp)
        run(["mcopy", "-o", "-i", self.spec, "::" + src.replace("\\", "/"), tmp])
        with open(tmp, "rb") as f:
            return f.read()

    def delete(self, path):
        run(["mdel", "-i", self.spec, "::" + path.replace("\\", "/")])

    def exists(self, path):
        p = subprocess.run(["mdir", "-i", self.spec, "::" + path.replace("\\", "/")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
        return p.returncode == 0


def format_fat(image, offset, size, sector=512, fat32=False, label="ESP"):
    args = ["mformat", "-i", f"{image}@@{offset}", "-T", str(size // sector),
            "-H", str(offset // sector), "-v", label]
    if sector != 512:
        args += ["-S", str(sector.bit_length() - 8)]
    if fat32:
        args += ["-F"]
    run(args + ["::"])
    return Fat(image, offset)


def format_exfat(env, image, offset, size, label="IMAGES"):
    """mkfs.exfat on a separate file, copied into place."""
    part = env.path("exfat.part")
    with open(part, "wb") as f:
        f.truncate(size)
    run([need("mkfs.exfat"), "-L", label, part])
    with open(part, "rb") as src, open(image, "r+b") as dst:
        dst.seek(offset)
        shutil.copyfileobj(src, dst)
    os.unlink(part)


def exfat_put(image, offset, *commands):
    """exfatput.py commands (lists), joined with '+' into one run."""
    words = []
    for c in commands:
        if words:
            words.append("+")
        words += list(c)
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    run([py, os.path.join(HERE, "exfatput.py"), f"{image}@{offset}", *words])


def exfat_get(env, image, offset, path):
    tmp = env.path("exget.tmp")
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    run([py, os.path.join(HERE, "exfatput.py"), f"{image}@{offset}", "get", path, tmp])
    with open(tmp, "rb") as f:
        return f.read()


# ---- ext4 and NTFS host partitions -------------------------------------------

def sparse_copy(src, src_off, dst, dst_off, length):
    """Copy length bytes between files, leaving the destination untouched
    where the source has holes or all-zero MiBs (the destination must read
    as zeros there already: a new disk or partition file)."""
    zero = bytes(MIB)
    with open(src, "rb") as fi, open(dst, "r+b" if os.path.exists(dst) else "w+b") as fo:
        fd = fi.fileno()
        pos, end = src_off, src_off + length
        while pos < end:
            try:
                pos = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:          # no data after pos
                break
            if pos >= end:
                break
            hole = min(os.lseek(fd, pos, os.SEEK_HOLE), end)
            fi.seek(pos)
            while pos < hole:
                chunk = fi.read(min(MIB, hole - pos))
                if chunk != zero[:len(chunk)]:
                    fo.seek(dst_off + pos - src_off)
                    fo.write(chunk)
                pos += len(chunk)
        fo.seek(0, 2)
        if fo.tell() < dst_off + length:
            fo.truncate(dst_off + length)


class PartitionImage:
    """A file system built in a file of its own, copied into a host disk at
    a partition's offset before the boot and back out afterwards."""

    def place(self, disk, start):
        """Copies the file system into the disk and drops this copy (the
        disk holds it until extract)."""
        sparse_copy(self.image, 0, disk, start, self.size)
        os.unlink(self.image)

    def extract(self, disk, start):
        if os.path.exists(self.image):
            os.unlink(self.image)
        sparse_copy(disk, start, self.image, 0, self.size)


DENSE_FILL = b"\xa5"


class Ext4Volume(PartitionImage):
    """ext4 (or ext2/ext3: mkfs names mkfs.ext2/3) without root: mkfs -d
    from a staging directory, debugfs for later changes and for reading
    files back.

    Both skip all-zero blocks when they copy a file in (the file gets holes
    there). A file the loader is to write into must have its blocks really
    written, as `vhdtool boot-prepare` leaves it on a mounted file system:
    for such a file ("dense") the zero blocks are copied in as a fill
    pattern and overwritten with zeros in the partition image afterwards,
    through the block map debugfs reports."""

    BLOCK = 4096

    def __init__(self, env, name, size, mkfs="mkfs.ext4"):
        self.env, self.size, self.mkfs = env, size, mkfs
        self.image = env.path(name + ".part")
        self.stage = env.path(name + ".stage")
        os.makedirs(self.stage)
        self.pending = {}          # path -> logical block numbers to zero

    def staged(self, dest):
        path = os.path.join(self.stage, dest.strip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def _fill_zero_blocks(self, path, ranges):
        """Replace the all-zero blocks of path inside ranges ((start, end)
        byte pairs; None: the whole file) with the fill pattern; returns
        their block numbers."""
        size = os.path.getsize(path)
        bs = self.BLOCK
        found = []
        with open(path, "r+b") as f:
            for start, end in ranges or [(0, size)]:
                b = start // bs
                while b * bs < min(end, size):
                    f.seek(b * bs)
                    blk = f.read(bs)
                    if not blk.strip(b"\0"):
                        f.seek(b * bs)
                        f.write(DENSE_FILL * len(blk))
                        found.append(b)
                    b += 1
        return found

    def add(self, src, dest, dense=False, ranges=None, move=False):
        """Stage src as dest ('/dir/name'); dense: every block of it (or of
        ranges) written."""
        path = self.staged(dest)
        if move:
            os.rename(src, path)
        else:
            run(["cp", "--sparse=always", src, path])
        if dense:
            self.pending[dest] = self._fill_zero_blocks(path, ranges)

    def add_bytes(self, data, dest):
        with open(self.staged(dest), "wb") as f:
            f.write(data)

    def mkdir(self, dest):
        os.makedirs(os.path.join(self.stage, dest.strip("/")), exist_ok=True)

    def debugfs(self, *cmds, write=False):
        script = self.env.path("debugfs.cmds")
        with open(script, "w") as f:
            f.write("\n".join(cmds) + "\n")
        return run([need("debugfs")] + (["-w"] if write else []) + ["-f", script, self.image])

    def build(self, index_dirs=False):
        """mkfs.ext4 -d; index_dirs: e2fsck -D then indexes (hashes) every
        directory large enough, as the kernel would have."""
        with open(self.image, "wb") as f:
            f.truncate(self.size)
        run([need(self.mkfs), "-q", "-F", "-b", str(self.BLOCK), "-L", "IMAGES",
             "-d", self.stage, self.image])
        if index_dirs:
            p = subprocess.run([need("e2fsck"), "-fyD", self.image], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            if p.returncode not in (0, 1):
                raise RuntimeError(f"e2fsck -fyD failed ({p.returncode}): {p.stdout.decode()}")
        self._zero_pending()
        shutil.rmtree(self.stage)

    def write(self, src, dest, dense=False):
        """Copy src in after the build (debugfs write: it takes the first
        free blocks, so gaps left by removed files make it fragmented)."""
        tmp = self.env.path("ext4-write.tmp")
        run(["cp", "--sparse=always", src, tmp])
        if dense:
            self.pending[dest] = self._fill_zero_blocks(tmp, None)
        d, name = dest.rsplit("/", 1)
        self.debugfs(f'cd "{d or "/"}"', f'write {tmp} "{name}"', write=True)
        os.unlink(tmp)
        self._zero_pending()

    def fallocate(self, path):
        """Turns the file's holes into unwritten (uninitialised) extents,
        as fallocate(2) would: their blocks keep whatever they held."""
        size = int(re.search(r"Size: (\d+)", self.debugfs(f'stat "{path}"')).group(1))
        last = (size + self.BLOCK - 1) // self.BLOCK - 1
        self.debugfs(f'fallocate "{path}" 0 {last}', write=True)

    def remove(self, *paths):
        self.debugfs(*(f'rm "{p}"' for p in paths), write=True)

    def extents(self, path):
        """[(logical block, physical block, blocks, unwritten)] of the leaves
        (of the block map's data ranges for a file without extents)."""
        out = self.debugfs(f'ex "{path}"')
        if "does not use" in out:
            blocks = self.debugfs(f'stat "{path}"').split("BLOCKS:", 1)[-1]
            return [(int(a), int(p), int(b or a) - int(a) + 1, False) for a, b, p in
                    re.findall(r"\((\d+)(?:-(\d+))?\):(\d+)", blocks)]
        rows = []
        for line in out.splitlines():
            m = re.match(r"\s*(\d+)/\s*(\d+)\s+\d+/\s*\d+\s+(\d+)\s*-\s*(\d+)\s+(\d+)"
                         r"(?:\s*-\s*(\d+))?\s+(\d+)\s*(.*)$", line)
            if m and m.group(1) == m.group(2):
                rows.append((int(m.group(3)), int(m.group(5)), int(m.group(7)),
                             "Uninit" in m.group(8)))
        if not rows and "Level" not in out:
            raise RuntimeError(f"debugfs ex {path}: {out.strip()}")
        return rows

    def _zero_pending(self):
        bs = self.BLOCK
        with open(self.image, "r+b") as img:
            for dest, blocks in self.pending.items():
                where = {}
                for logical, phys, n, _ in self.extents(dest):
                    for i in range(n):
                        where[logical + i] = phys + i
                for b in blocks:
                    if b not in where:
                        raise RuntimeError(f"{dest}: block {b} has no place on the volume")
                    img.seek(where[b] * bs)
                    img.write(bytes(bs))
        self.pending = {}

    def get(self, path, out):
        """The file's bytes from its extents (holes and unwritten extents
        stay holes in out, which is sparse like the file)."""
        size = int(re.search(r"Size: (\d+)", self.debugfs(f'stat "{path}"')).group(1))
        with open(out, "wb") as f:
            f.truncate(size)
        bs = self.BLOCK
        with open(self.image, "rb") as img, open(out, "r+b") as f:
            for logical, phys, n, unwritten in self.extents(path):
                if unwritten:
                    continue
                img.seek(phys * bs)
                length = min(n * bs, size - logical * bs)
                f.seek(logical * bs)
                while length > 0:
                    chunk = img.read(min(length, 16 * MIB))
                    f.write(chunk)
                    length -= len(chunk)
        return out

    def fsck(self):
        """Problems e2fsck -fn finds (none: an empty list)."""
        p = subprocess.run([need("e2fsck"), "-fn", self.image], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        return [] if p.returncode == 0 else [
            f"e2fsck -fn exit {p.returncode}: " + " | ".join(p.stdout.decode().splitlines()[-6:])]


class NtfsVolume(PartitionImage):
    """NTFS made by mkntfs and filled through ntfs-3g (FUSE; needs
    /dev/fuse), read back with ntfscat and checked with ntfsfix -n."""

    def __init__(self, env, name, size, start=0):
        for prog in ("mkntfs", "ntfs-3g", "ntfscat", "ntfsinfo", "ntfsfix"):
            need(prog)
        if not os.path.exists("/dev/fuse"):
            raise Skip("no /dev/fuse: ntfs-3g cannot mount")
        self.env, self.size = env, size
        self.image = env.path(name + ".part")
        self.mnt = env.path(name + ".mnt")
        os.makedirs(self.mnt)
        with open(self.image, "wb") as f:
            f.truncate(size)
        run([need("mkntfs"), "-F", "-f", "-q", "-c", "4096", "-s", "512", "-p",
             str(start // 512), "-H", "255", "-S", "63", "-L", "IMAGES", self.image])

    def mount(self):
        """ntfs-3g in the foreground, so that umount can wait until it has
        written everything back and exited."""
        self.log = open(self.image + ".ntfs-3g.log", "w+b")
        self.fuse = subprocess.Popen([need("ntfs-3g"), "-o", "no_detach", self.image, self.mnt],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.ismount(self.mnt):
                return self.mnt
            if self.fuse.poll() is not None:
                break
            time.sleep(0.05)
        if self.fuse.poll() is None:
            self.fuse.kill()
        self.fuse.wait()
        raise Skip(f"ntfs-3g cannot mount here: {self._log()}")

    def _log(self):
        self.log.seek(0)
        return " | ".join(self.log.read().decode(errors="replace").splitlines()[-3:])

    def umount(self):
        run(["umount", self.mnt])
        if self.fuse.wait(timeout=60) != 0:
            raise RuntimeError(f"ntfs-3g exit {self.fuse.returncode}: {self._log()}")

    def path(self, dest):
        return os.path.join(self.mnt, dest.strip("/"))

    def add(self, src, dest, sparse=False):
        """While mounted: copy every byte (a sparse NTFS file is refused by
        the loader), or with sparse=True leave holes for zeros."""
        os.makedirs(os.path.dirname(self.path(dest)), exist_ok=True)
        run(["cp", f"--sparse={'always' if sparse else 'never'}", src, self.path(dest)])

    def attributes(self, dest):
        """While mounted: the file's NTFS attribute bits (0x800 compressed,
        0x200 sparse)."""
        out = run(["getfattr", "-e", "hex", "-n", "system.ntfs_attrib_be", self.path(dest)])
        return int(out.split("=")[-1].strip(), 16)

    def add_fragmented(self, src, dest, piece=64 * 1024):
        """While mounted: fill the free space with small files, delete every
        other one, copy src (ntfs-3g then takes the gaps), delete the rest."""
        fill_dir = self.path("/fill.tmp")
        os.makedirs(fill_dir)
        chunk = bytes([0x5a]) * piece
        names = []
        try:
            while True:
                name = os.path.join(fill_dir, f"f{len(names):05d}")
                names.append(name)
                with open(name, "wb") as f:
                    f.write(chunk)
        except OSError:
            pass
        for name in names[::2]:
            if os.path.exists(name):
                os.unlink(name)
        self.add(src, dest)
        shutil.rmtree(fill_dir)

    def info(self, path):
        return run([need("ntfsinfo"), "-v", "-F", path, self.image])

    def set_valid_length(self, name, length):
        """While unmounted: sets the initialized size (valid data length) of
        the unnamed $DATA of the file called name, as Windows leaves a file
        whose end was set but not written. Its MFT record (1 KiB, on a 1 KiB
        boundary) is the one whose $FILE_NAME is name; update sequence
        fixups are undone and redone around the change."""
        want = name.encode("utf-16-le")
        with open(self.image, "r+b") as f:
            vol = f.read()
            pos = vol.find(want)
            while pos >= 0:
                at = pos // 1024 * 1024
                if vol[at:at + 4] == b"FILE" and self._set_vdl(f, vol, at, want, length):
                    return
                pos = vol.find(want, pos + 1)
        raise RuntimeError(f"no MFT record of a file named {name} with a non-resident $DATA")

    @staticmethod
    def _set_vdl(f, vol, at, want, length):
        rec = bytearray(vol[at:at + 1024])
        usa, count = struct.unpack_from("<HH", rec, 4)
        usn = rec[usa:usa + 2]
        for i in range(1, count):
            if rec[i * 512 - 2:i * 512] != usn:
                return False
            rec[i * 512 - 2:i * 512] = rec[usa + 2 * i:usa + 2 * i + 2]
        off, named, data = struct.unpack_from("<H", rec, 0x14)[0], False, None
        while off + 0x18 <= len(rec):
            kind, alen, nonres = struct.unpack_from("<IIB", rec, off)
            if kind == 0xFFFFFFFF or alen == 0:
                break
            if kind == 0x30 and not nonres:
                value = off + struct.unpack_from("<H", rec, off + 0x14)[0]
                nlen = rec[value + 0x40]
                named |= bytes(rec[value + 0x42:value + 0x42 + 2 * nlen]) == want
            if kind == 0x80 and nonres and rec[off + 9] == 0:
                data = off
            off += alen
        if not named or data is None:
            return False
        if length > struct.unpack_from("<Q", rec, data + 0x30)[0]:
            raise ValueError("valid data length past the data size")
        struct.pack_into("<Q", rec, data + 0x38, length)
        for i in range(1, count):
            rec[usa + 2 * i:usa + 2 * i + 2] = rec[i * 512 - 2:i * 512]
            rec[i * 512 - 2:i * 512] = usn
        f.seek(at)
        f.write(rec)
        return True

    def fragments(self, path):
        out = self.info(path)
        m = re.search(r"Total runs: (\d+) \(fragments: (\d+)\)", out)
        return int(m.group(2)) if m else 0

    def get(self, path, out):
        with open(out, "wb") as f:
            p = subprocess.run([need("ntfscat"), self.image, path], stdout=f,
                               stderr=subprocess.PIPE)
        if p.returncode != 0:
            raise RuntimeError(f"ntfscat {path}: {p.stderr.decode().strip()}")
        return out

    def fsck(self):
        p = subprocess.run([need("ntfsfix"), "-n", self.image], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        text = p.stdout.decode()
        return [] if p.returncode == 0 and "successfully" in text else [
            f"ntfsfix -n exit {p.returncode}: " + " | ".join(text.splitlines()[-4:])]


# ---- the disks of the tests ----------------------------------------------------

def inner_disk(env, name, marker, data, size=24 * MIB, sector=512, extra=None,
               payload=None):
    """A GPT disk whose first partition is a FAT ESP holding the payload as
    \\EFI\\BOOT\\BOOTX64.EFI, \\MARKER.TXT and \\DATA.BIN."""
    path = env.path(name)
    if sector == 512:
        (start, length, _), = sgdisk_disk(path, size, [(None, "ef00", "INNERESP")])
    else:
        first = MIB // sector
        write_gpt(path, size, sector, [(first, None, ESP_TYPE, "INNERESP")])
        start = first * sector
        length = size - start - 34 * 512 - MIB // 2
        length -= length % sector
    fat = format_fat(path, start, length, sector=sector, label="INNER")
    fat.mkdir("/EFI", "/EFI/BOOT")
    fat.put(payload or env.payload, "/EFI/BOOT/BOOTX64.EFI")
    fat.put_bytes(env, marker.encode() + b"\n", "/MARKER.TXT")
    fat.put_bytes(env, data, "/DATA.BIN")
    for dest, content in (extra or {}).items():
        fat.put_bytes(env, content, dest)
    return path, fat


class HostDisk:
    """The disk qemu boots: GPT, partition 1 a FAT32 ESP holding the loader
    as \\EFI\\BOOT\\BOOTX64.EFI, vhdboot.cfg and images; optionally
    partition 2 exFAT."""

    def __init__(self, env, name="host.img", esp_mib=160, exfat_mib=0, total_mib=None,
                 more=()):
        """more: further partitions (size_mib, sgdisk type, name) after the
        ESP (and exFAT); their (start, size, guid) are in self.layout."""
        self.env = env
        self.path = env.path(name)
        parts = [(esp_mib, "ef00", "EFI System")]
        if exfat_mib:
            parts.append((exfat_mib, "0700", "Images"))
        parts += list(more)
        total = total_mib or (sum(p[0] for p in parts) + 4)
        layout = sgdisk_disk(self.path, total * MIB, parts)
        self.layout = layout
        self.esp_start, self.esp_size, self.esp_guid = layout[0]
        self.esp = format_fat(self.path, self.esp_start, self.esp_size, fat32=True)
        self.esp.mkdir("/EFI", "/EFI/BOOT", "/VHD")
        self.esp.put(env.loader, "/EFI/BOOT/BOOTX64.EFI")
        self.esp.put(env.loader, "/vhdboot.efi")   # for the payload's CHAIN.TXT runs
        self.exfat = None
        if exfat_mib:
            self.exfat_start, self.exfat_size, self.exfat_guid = layout[1]
            format_exfat(env, self.path, self.exfat_start, self.exfat_size)
            self.exfat = True

    def reset_free_hint(self):
        """Point the FAT32 FSInfo "next free cluster" hint back at the start
        of the volume: mtools then allocates from the first free cluster, so
        holes left by deleted files get used (to make fragmented files)."""
        with open(self.path, "r+b") as f:
            f.seek(self.esp_start + 512 + 492)
            f.write(struct.pack("<I", 2))

    def config(self, text):
        self.esp.put_bytes(self.env, text.encode(), "/EFI/BOOT/vhdboot.cfg")

    def no_config(self):
        if self.esp.exists("/EFI/BOOT/vhdboot.cfg"):
            self.esp.delete("/EFI/BOOT/vhdboot.cfg")


def fallback_disk(env, chain=None):
    """A second boot option: the payload with marker FALLBACK. A loader that
    fails must return to the firmware, which then boots this. chain: lines
    of load options; the payload then runs \\vhdboot.efi (from the host
    ESP) once per line and prints each run's status (see payload.c)."""
    extra = {"/CHAIN.TXT": "".join(l + "\n" for l in chain).encode()} if chain else None
    path, _ = inner_disk(env, "fallback.img", "FALLBACK", b"fallback\n", size=8 * MIB,
                         extra=extra)
    return path


def chain_runs(b):
    """Per CHAIN.TXT line: (options, loader lines, status, tpl, Boot of the
    lines in between, e.g. those of an inner payload started by that run)."""
    runs, cur = [], None
    for line in b.lines:
        m = re.search(r"PAYLOAD-CHAIN (\d+): (.*)", line)
        if m:
            cur = [m.group(2), [], None, None, []]
            continue
        m = re.search(r"PAYLOAD-CHAIN-RESULT (\d+): status=([0-9a-fA-F]+) tpl=(\d+)", line)
        if m and cur is not None:
            cur[2], cur[3] = int(m.group(2), 16), int(m.group(3))
            cur[4] = Boot(cur[4], [0.0] * len(cur[4]), b.rc, b.wall, b.cpu)
            runs.append(tuple(cur))
            cur = None
            continue
        if cur is not None:
            cur[4].append(line)
            if line.startswith("vhdboot:"):
                cur[1].append(line)
    return runs


def loader_lines_before_payload(b):
    """The "vhdboot:" lines before the first payload started (those of a
    loader that ran as a boot option)."""
    out = []
    for line in b.lines:
        if "PAYLOAD-MARKER" in line:
            break
        if line.startswith("vhdboot:"):
            out.append(line)
    return out


def chain_failure(run, expect):
    """Problems with a chain run (chain_runs) that must fail cleanly: one
    "vhdboot:" line saying expect, an error status, TPL 4 afterwards."""
    _, said, status, tpl, _ = run
    problems = []
    if len(said) != 1:
        problems.append(f"expected one vhdboot line, got {said}")
    elif expect not in said[0]:
        problems.append(f"{said[0]!r} does not say {expect!r}")
    if not status or not status >> 63:
        problems.append(f"returned status {status:#x}, not an error")
    if tpl != 4:
        problems.append(f"TPL {tpl} after the loader returned")
    return problems


def chain_payload(run, marker, data):
    """Problems with a chain run that must start the inner payload (with
    args=return) and get its success back at TPL 4."""
    _, said, status, tpl, inner = run
    problems = expect_payload(inner, marker, data)
    if status != 0:
        problems.append(f"returned status {status:#x}")
    if tpl != 4:
        problems.append(f"TPL {tpl} after the loader returned")
    if (len(said) < 2 or "starting" not in said[-2] or "returned: success" not in said[-1]):
        problems.append(f"loader lines {said}")
    return problems


# ---- VHD/VHDX images -------------------------------------------------------------

def convert(env, raw, out, fmt, kind, block=None, sector=None):
    args = ["convert", "-f", "raw", "-O", fmt, "-t", kind]
    if block:
        args += ["-b", block]
    if sector:
        args += ["--sector-size", str(sector)]
    env.vhdtool_run(*args, raw, out)


def changed_runs(old, new, granule=4096):
    """(offset, bytes) runs where new differs from old, granule-aligned."""
    runs = []
    i = 0
    while i < len(new):
        if new[i:i + granule] != old[i:i + granule]:
            j = i
            while j < len(new) and new[j:j + granule] != old[j:j + granule]:
                j += granule
            runs.append((i, new[i:j]))
            i = j
        else:
            i += granule
    return runs


def write_at(env, image, offset, data):
    p = subprocess.run([env.vhdtool, "write", "--offset", str(offset), image], input=data,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError(f"vhdtool write {image} at {offset}: {p.stdout.decode()}")


def differencing(env, parent, child, old_raw, new_raw, fmt_args=()):
    """child = a differencing image over parent holding new_raw - old_raw.
    Created in the parent's directory with a relative parent path, as one
    would on the host volume."""
    cwd = os.path.dirname(parent)
    run([env.vhdtool, "create", *fmt_args, "-p", os.path.basename(parent),
         os.path.basename(child)], cwd=cwd)
    with open(old_raw, "rb") as f:
        old = f.read()
    with open(new_raw, "rb") as f:
        new = f.read()
    for off, chunk in changed_runs(old, new):
        write_at(env, child, off, chunk)


def shuffled_dynamic_vhd(env, raw, out, seed=7, block=2 * MIB):
    """A dynamic VHD whose blocks are stored in shuffled order: created
    empty, then the non-zero blocks written in a random order (each
    allocation appends)."""
    with open(raw, "rb") as f:
        data = f.read()
    env.vhdtool_run("create", "-f", "vhd", "-t", "dynamic", "-s", str(len(data)), out)
    blocks = [b for b in range(0, len(data), block) if data[b:b + block].strip(b"\0")]
    random.Random(seed).shuffle(blocks)
    for b in blocks:
        write_at(env, out, b, data[b:b + block])
    return blocks


def vhd_bat_order(path):
    """Block numbers of a dynamic VHD in file order (test-side check that a
    BAT is really out of order)."""
    with open(path, "rb") as f:
        f.seek(-512, 2)
        footer = f.read(512)
        hdr_off = struct.unpack(">Q", footer[16:24])[0]
        f.seek(hdr_off)
        hdr = f.read(1024)
        bat_off = struct.unpack(">Q", hdr[16:24])[0]
        entries = struct.unpack(">I", hdr[28:32])[0]
        f.seek(bat_off)
        bat = struct.unpack(f">{entries}I", f.read(4 * entries))
    used = [(sec, blk) for blk, sec in enumerate(bat) if sec != 0xFFFFFFFF]
    return [blk for sec, blk in sorted(used)]


def vhdx_block_offsets(path, block_size, sector=512):
    """{payload block: file offset} of a VHDX's present blocks, read from
    its region table and BAT here (test-side, independent of libvhd)."""
    bat_guid = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
    with open(path, "rb") as f:
        f.seek(192 << 10)
        table = f.read(64 << 10)
        if table[:4] != b"regi":
            raise ValueError(f"{path}: no region table")
        count = struct.unpack_from("<I", table, 8)[0]
        for i in range(min(count, 2047)):
            guid, off, length = struct.unpack_from("<16sQI", table, 16 + 32 * i)
            if guid == bat_guid:
                break
        else:
            raise ValueError(f"{path}: no BAT region")
        f.seek(off)
        bat = f.read(length)
    ratio = (1 << 23) * sector // block_size
    out = {}
    for i in range(len(bat) // 8):
        if i % (ratio + 1) == ratio:
            continue                      # a sector bitmap entry
        e = struct.unpack_from("<Q", bat, 8 * i)[0]
        if e & 7 in (6, 7):
            out[i - i // (ratio + 1)] = e & 0xFFFFFFFFFFF00000
    return out


# ---- the OS hand-off record (docs/efi-handoff.md) --------------------------------

def parse_handoff(blob):
    """Decode and check a hand-off record; raises ValueError."""
    if len(blob) < 112 or blob[:8] != b"VHDBHOFF":
        raise ValueError(f"no record ({len(blob)} bytes)")
    version, hsize, total, crc = struct.unpack_from("<HHII", blob, 8)
    if version != 1 or hsize != 112 or total != len(blob):
        raise ValueError(f"version {version}, header {hsize}, length {total} of {len(blob)}")
    zeroed = blob[:16] + b"\0\0\0\0" + blob[20:]
    if crc32(zeroed) != crc:
        raise ValueError("CRC mismatch")
    mode, layers, bsize, vsize = struct.unpack_from("<IIIQ", blob, 20)
    rec = {
        "mode": ["ro", "cow", "rw"][mode], "block_size": bsize, "virtual_size": vsize,
        "disk_guid": str(uuid.UUID(bytes_le=blob[40:56])).upper(),
        "partition_number": struct.unpack_from("<I", blob, 56)[0],
        "disk_block_size": struct.unpack_from("<I", blob, 60)[0],
        "partition_start": struct.unpack_from("<Q", blob, 64)[0],
        "partition_size": struct.unpack_from("<Q", blob, 72)[0],
        "partition_guid": str(uuid.UUID(bytes_le=blob[80:96])).upper(),
        "table": blob[96], "fs": blob[97], "layers": [],
    }
    off = hsize
    for _ in range(layers):
        size, fmt, kind, plen, logical, phys, count, flags, lvsize = struct.unpack_from(
            "<IBBHQQIIQ", blob, off)
        path = blob[off + 40:off + 40 + plen].decode()
        ext_at = off + 40 + (plen + 7) // 8 * 8
        extents = [struct.unpack_from("<QQQ", blob, ext_at + 24 * i) for i in range(count)]
        if ext_at + 24 * count != off + size:
            raise ValueError(f"layer {path}: size {size} does not match its contents")
        rec["layers"].append({"path": path, "format": fmt, "type": kind, "size": logical,
                              "physical_size": phys, "in_memory": bool(flags & 1),
                              "virtual_size": lvsize, "extents": extents})
        off += size
    if off != total:
        raise ValueError(f"layers end at {off}, record at {total}")
    return rec


NO_DISK_OFFSET = (1 << 64) - 1     # a hole or unwritten extent: reads as zeros


def check_handoff(b, disk, partition, image_path, local_image, fs=None):
    """Problems with the hand-off record of boot b: it must name partition
    (number, start byte, GUID) of disk, the file system kind fs (when
    given; docs/efi-handoff.md), and map every byte of the image file
    (local_image holds its content) to the right place on the disk, or to
    no place where the file reads as zeros."""
    try:
        rec = parse_handoff(b.handoff())
    except ValueError as e:
        return [f"hand-off record: {e}"]
    problems = []
    got = (rec["partition_number"], rec["partition_start"], rec["partition_guid"].upper())
    want = (partition[0], partition[1], partition[2].upper())
    if got != want:
        problems.append(f"hand-off names partition {got}, expected {want}")
    if fs is not None and rec["fs"] != fs:
        problems.append(f"hand-off file system kind {rec['fs']}, expected {fs}")
    layer = rec["layers"][0]
    if layer["path"] != image_path:
        problems.append(f"hand-off path {layer['path']!r}, expected {image_path!r}")
    with open(local_image, "rb") as f:
        content = f.read()
    covered = 0
    with open(disk, "rb") as d:
        for foff, doff, length in layer["extents"]:
            n = min(length, len(content) - foff)
            if n <= 0:
                continue
            if doff == NO_DISK_OFFSET:
                ok = not content[foff:foff + n].strip(b"\0")
            else:
                d.seek(doff)
                ok = d.read(n) == content[foff:foff + n]
            if not ok:
                problems.append(f"extent (file offset {foff}, disk offset {doff:#x}, {length} "
                                f"bytes) does not hold the file's bytes")
                break
            covered += n
    if covered != len(content):
        problems.append(f"extents cover {covered} of {len(content)} bytes")
    return problems


# ---- qemu --------------------------------------------------------------------------

class Boot:
    """One qemu run: serial lines with arrival times, exit status, wall time."""

    def __init__(self, lines, times, rc, wall, cpu):
        self.lines, self.times, self.rc, self.wall, self.cpu = lines, times, rc, wall, cpu
        self.text = "\n".join(lines)

    def value(self, key):
        """The text after 'KEY: ' on the first line that has it."""
        for line in self.lines:
            i = line.find(key + ":")
            if i >= 0:
                return line[i + len(key) + 1:].strip()
        return None

    def has(self, text):
        return any(text in line for line in self.lines)

    def time_of(self, text):
        for line, t in zip(self.lines, self.times):
            if text in line:
                return t
        return None

    def handoff(self):
        chunks = {}
        for line in self.lines:
            m = re.search(r"PAYLOAD-HANDOFF (\d+): ([0-9a-fA-F]+)", line)
            if m:
                chunks.setdefault(int(m.group(1)), []).append(bytes.fromhex(m.group(2)))
        return b"".join(b"".join(chunks[k]) for k in sorted(chunks))


ANSI = re.compile(r"\x1b\[[0-9;=?]*[A-Za-z]")


def boot(env, disks, timeout=240, snapshot=False, memory=512):
    """Boot OVMF with disks (paths; the first is bootindex 0) and return a
    Boot. The vars store is copied per run (OVMF writes it on every boot)."""
    vars_copy = env.path("vars.fd")
    shutil.copyfile(env.vars, vars_copy)
    cmd = [env.qemu, "-machine", "q35,accel=tcg", "-m", str(memory), "-smp", "1",
           "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
           "-no-reboot", "-serial", "stdio", "-monitor", "none", "-parallel", "none",
           "-net", "none",
           "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={env.code}",
           "-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}",
           "-boot", "strict=on"]
    if snapshot:
        cmd.append("-snapshot")
    for i, d in enumerate(disks):
        cmd += ["-drive", f"if=none,id=d{i},format=raw,file={d}",
                "-device", f"virtio-blk-pci,drive=d{i},bootindex={i}"]
    lines, times = [], []
    start = time.monotonic()
    ru0 = os.times()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)

    def reader():
        buf = b""
        while True:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                lines.append(ANSI.sub("", line.decode(errors="replace")).replace("\r", ""))
                times.append(time.monotonic() - start)
        if buf:
            lines.append(ANSI.sub("", buf.decode(errors="replace")).replace("\r", ""))
            times.append(time.monotonic() - start)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        rc = "timeout"
    t.join(5)
    ru1 = os.times()
    cpu = (ru1.children_user - ru0.children_user) + (ru1.children_system - ru0.children_system)
    return Boot(lines, times, rc, time.monotonic() - start, cpu)


# ---- reporting -------------------------------------------------------------------

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, problems, boot_result=None):
        if problems:
            self.failed += 1
            say(f"FAIL {name}: " + "; ".join(problems))
            if boot_result is not None and os.environ.get("EFI_VERBOSE"):
                for line in boot_result.lines:
                    say(f"    | {line}")
        else:
            self.passed += 1
            extra = (f" ({boot_result.wall:.1f}s wall, {boot_result.cpu:.1f}s cpu)"
                     if boot_result is not None else "")
            say(f"ok   {name}{extra}")

    def finish(self):
        say(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


def expect_payload(b, marker, data, tpl="4", device_prefix="VenHw(" + VHDBOOT_GUID):
    """Problems with a boot that should have started the payload from the
    virtual disk."""
    problems = []
    if b.rc == "timeout":
        problems.append("timed out")
    got = b.value("PAYLOAD-MARKER")
    if got != marker:
        problems.append(f"marker {got!r}, expected {marker!r}")
    if b.value("PAYLOAD-TPL") != tpl:
        problems.append(f"TPL {b.value('PAYLOAD-TPL')!r}, expected {tpl}")
    dev = b.value("PAYLOAD-DEVICE") or ""
    if device_prefix and not dev.upper().startswith(device_prefix.upper()):
        problems.append(f"device {dev!r} is not on the virtual disk")
    want = f"size={len(data)} crc32={crc32(data):08x}"
    if (b.value("PAYLOAD-DATA") or "").lower() != want:
        problems.append(f"data {b.value('PAYLOAD-DATA')!r}, expected {want}")
    if not b.has("PAYLOAD-DONE"):
        problems.append("the payload did not finish")
    errors = [l for l in b.lines if l.startswith("vhdboot:") and "error" in l]
    if errors:
        problems.append("loader errors: " + " | ".join(errors))
    return problems


def main(body):
    """Run a test script body(env, results) with the exit conventions."""
    try:
        env = Env()
    except Skip as e:
        say(f"SKIP: {e}")
        say("0 passed, 0 failed")
        return 77
    results = Results()
    try:
        body(env, results)
    except Skip as e:
        say(f"SKIP: {e}")
        say(f"{results.passed} passed, {results.failed} failed")
        env.cleanup()
        return 77 if results.passed + results.failed == 0 else results.finish()
    except Exception as e:  # a broken fixture is a failure, never a pass
        results.failed += 1
        say(f"FAIL (harness): {e}")
    env.cleanup()
    return results.finish()
