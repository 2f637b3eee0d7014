#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdboot.efi boots images kept on ext4, NTFS and ext3 host partitions (issue 13).

One host disk, built without root: partition 1 the FAT32 ESP with the
loader, 2 ext4 (mkfs.ext4 -d, then debugfs), 3 NTFS (mkntfs, filled
through ntfs-3g/FUSE; skipped with the reason when FUSE cannot mount), 4
ext3. Boot option 0 is a case that must fail; the firmware then starts the
fallback payload, which runs the loader once per case from its CHAIN.TXT
(as in test_failures.py), so one TCG boot covers every case:
  - ext4 and NTFS: a dynamic VHDX and a differencing VHD chain (parent and
    children in their own directory), each ro (the payload's write fails
    as write protected), cow (the write succeeds inside the machine) and
    rw after `vhdtool boot-prepare` (the VHDX twice: the second run takes
    its blocks from what is left of the reserve, the file keeps its size):
    marker, TPL and data CRC; ro and cow
    leave the file byte for byte unchanged; after rw the file, read back
    from the volume, passes vhdtool check and qemu-img check/convert (a
    differencing VHD, which qemu cannot read: the interop tests'
    vhd_oracle.py) and holds the files the payload wrote; the parent is
    unchanged. The rw VHDX is a fragmented file (debugfs' extent list,
    ntfsinfo's run count), so its writes go through many extents; the ro
    and cow files on ext4 keep the holes mkfs.ext4 -d leaves for zero
    blocks. The ro VHDX's hand-off record names the partition and the
    file system kind and maps every byte of the file.
  - ext3 (block maps with indirect blocks): a dynamic VHDX, ro and rw.
  - ext4: a file whose holes were made unwritten extents (debugfs
    fallocate) over blocks still holding old bytes: ro reads zeros there,
    rw is refused (no written data there).
  - NTFS: a file whose valid data length (set in its MFT record here)
    ends before old bytes: ro boots, rw is refused.
  - a long name in a nested directory; a directory with 500 entries
    (hashed on ext4: debugfs shows the index flag; an index allocation on
    NTFS).
  - one clear line and an error status back to the caller for: image
    missing, a path through a file, a compressed and a sparse file
    (NTFS); rw of an unprepared image on ext4 as boot option 0, so that the
    firmware goes on to the next one (and with fallback=cow: boots in cow
    and says so).
  - ext4, only with EFI_HOSTFS_LARGE=1 (it writes 4 GiB into the host
    partition, and holds about 13 GiB in TMPDIR at its peak): a 6 GiB
    dynamic VHDX whose file is over 4 GiB (2048 blocks written by qemu-io in
    the inner disk's free space), prepared and booted rw: the payload's new
    blocks land past the 4 GiB mark of the file (its BAT, read here, shows
    where). rw needs every byte of such a file written data, so it cannot
    be made cheaply sparse.
Afterwards the partitions are copied out of the disk and must check clean
(e2fsck -fn, ntfsfix -n). Each case line shows the seconds its run took
inside the boot.
"""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402
from test_writes import check_image, reserve_record, same_bytes, written_bin  # noqa: E402

MARKER = "WRITE-BASE"          # the marker check_image expects by default
CHILD = "HOSTFS-CHILD"
LARGE = "HOSTFS-LARGE"
LONG_NAME = "a long image name, " + "with many words in it " * 8 + "end.vhdx"
NESTED = "/one/two/three/four"
ENTRIES = 500
EXT4_PART, NTFS_PART, EXT3_PART = 2, 3, 4
FS_EXT3, FS_EXT4, FS_NTFS = 3, 4, 7   # the hand-off record's file system kinds (efi-handoff.md)


def win(path):
    return path.replace("/", "\\")


def opts(part, path, mode=None, args="return"):
    mode = f" mode={mode}" if mode else ""
    return f'partition={part} "image={win(path)}"{mode} "args={args}"'


def prepare(env, path):
    """vhdtool boot-prepare (the default reserve); the error text, or None."""
    try:
        env.vhdtool_run("boot-prepare", path)
        return None
    except RuntimeError as e:
        return "vhdtool boot-prepare: " + str(e).strip().splitlines()[-1]


class Images:
    """The images every file system gets, made once on the host."""

    def __init__(self, env):
        self.data0 = T.pattern(2 * T.MIB + 4321, 130)     # more than one 2 MiB block
        raw0, _ = T.inner_disk(env, "base.raw", MARKER, self.data0)
        self.data1 = T.pattern(2 * T.MIB + 999, 131)
        raw1 = env.path("child.raw")
        T.run(["cp", raw0, raw1])
        fat = T.Fat(raw1, T.MIB)
        fat.put_bytes(env, (CHILD + "\n").encode(), "/MARKER.TXT")
        fat.put_bytes(env, self.data1, "/DATA.BIN")
        self.dyn = env.path("dyn.vhdx")
        T.convert(env, raw0, self.dyn, "vhdx", "dynamic", block="2M")
        chain = env.path("chain")
        os.makedirs(chain)
        self.base = os.path.join(chain, "base.vhd")
        T.convert(env, raw0, self.base, "vhd", "dynamic")
        self.child = {}
        for mode in ("ro", "cow", "rw"):
            self.child[mode] = os.path.join(chain, f"child-{mode}.vhd")
            T.differencing(env, self.base, self.child[mode], raw0, raw1)
        # Prepared here for ext4 (then copied in with every block written);
        # on NTFS they are prepared on the mounted volume.
        self.dyn_rw = env.path("dyn-rw.vhdx")
        shutil.copyfile(self.dyn, self.dyn_rw)
        self.child_rw = os.path.join(chain, "child-rw-prepared.vhd")
        shutil.copyfile(self.child["rw"], self.child_rw)
        self.prep_error = prepare(env, self.dyn_rw) or prepare(env, self.child_rw)


def large_image(env):
    """A 6 GiB dynamic VHDX whose file ends past 4 GiB, prepared: the inner
    disk (FAT32 over the whole 6 GiB) plus 2048 written blocks in its free
    space [2 GiB, 6 GiB).
    Returns (path, data, byte ranges that must be written on the volume,
    prepare error)."""
    if not shutil.which("qemu-io"):
        raise T.Skip("qemu-io not found")
    data = T.pattern(T.MIB + 77, 132)
    raw, _ = T.inner_disk(env, "large.raw", LARGE, data, size=6 << 30)
    path = env.path("large.vhdx")
    T.convert(env, raw, path, "vhdx", "dynamic", block="2M")
    os.unlink(raw)
    first_pad = 2 << 30
    cmds = []
    for off in range(first_pad, 6 << 30, 2 * T.MIB):
        cmds += ["-c", f"write -P 0x50 {off} 2M"]
    T.run(["qemu-io", "-t", "unsafe", "-f", "vhdx", *cmds, path])
    # Everything before the first padding block (headers, log, BAT, the
    # inner disk's blocks) is written on the volume, as is the reserve.
    blocks = T.vhdx_block_offsets(path, 2 * T.MIB)
    head_end = min(o for b, o in blocks.items() if b * 2 * T.MIB >= first_pad)
    if os.path.getsize(path) <= 4 << 30 or max(o for b, o in blocks.items() if b < 1024) \
            >= 4 << 30:
        raise RuntimeError("the 6 GiB image does not end past 4 GiB with its first 2 GiB "
                           "below that mark")
    before = os.path.getsize(path)
    err = prepare(env, path)
    return path, data, [(0, head_end), (before, os.path.getsize(path))], err


def build_ext4(env, imgs, size, large):
    """The ext4 partition: files staged for mkfs.ext4 -d, then a directory
    indexed by e2fsck -D, then the fragmented rw image written with debugfs
    into the gaps left by removing every other filler file."""
    v = T.Ext4Volume(env, "ext4", size)
    v.add(imgs.dyn, "/images/dyn-ro.vhdx")
    v.add(imgs.dyn, "/images/dyn-cow.vhdx")
    v.add(imgs.dyn, "/images/dyn-noprep.vhdx", dense=True)   # written, but no reserve
    v.add(imgs.base, "/chain/base.vhd")
    v.add(imgs.child["ro"], "/chain/child-ro.vhd")
    v.add(imgs.child["cow"], "/chain/child-cow.vhd")
    v.add(imgs.child_rw, "/chain/child-rw.vhd", dense=True)
    v.add(imgs.dyn, f"{NESTED}/{LONG_NAME}")
    for i in range(ENTRIES):
        v.add_bytes(b"%d\n" % i, f"/many/entry-{i:04d}.txt")
    v.add(imgs.dyn, "/many/the image.vhdx")
    fillers = [f"/fill/f{i:04d}" for i in range(600)]
    for f in fillers:
        v.add_bytes(bytes([0x33]) * 65536, f)
    if large:
        path, _, ranges, _ = large
        v.add(path, "/large/six.vhdx", dense=True, ranges=ranges, move=True)
    v.build(index_dirs=True)
    v.remove(*fillers[::2])
    # Holes made unwritten extents in the gaps, whose blocks still hold the
    # removed fillers' bytes: they must read as zeros. Then the rw image
    # takes the rest of the gaps.
    v.write(imgs.dyn, "/images/dyn-unwritten.vhdx")
    v.fallocate("/images/dyn-unwritten.vhdx")
    v.write(imgs.dyn_rw, "/images/dyn-rw.vhdx", dense=True)
    unwritten = [(p, n) for _, p, n, u in v.extents("/images/dyn-unwritten.vhdx") if u]
    with open(v.image, "rb") as f:
        stale = 0
        for p, n in unwritten:
            f.seek(p * v.BLOCK)
            stale += f.read(n * v.BLOCK).count(0x33)
    if not stale:
        raise RuntimeError("/images/dyn-unwritten.vhdx on ext4 has no unwritten extent over "
                           f"old bytes: {unwritten}")
    # The written copies must read back as their sources (debugfs' own
    # reader): the fill pattern is gone.
    for src, dest in ((imgs.dyn_rw, "/images/dyn-rw.vhdx"), (imgs.child_rw, "/chain/child-rw.vhd")):
        out = env.path("ext4-dump.tmp")
        v.debugfs(f'dump "{dest}" {out}')
        if not same_bytes(out, src):
            raise RuntimeError(f"{dest} on ext4 does not read back as {src}")
        os.unlink(out)
    facts = []
    flags = T.run(["debugfs", "-R", "stat /many", v.image])
    if "Flags: 0x1000" not in flags and "Flags: 0x81000" not in flags:
        raise RuntimeError("/many on ext4 is not hashed (no index flag): "
                           + flags.splitlines()[1 if len(flags.splitlines()) > 1 else 0])
    n = len(v.extents("/images/dyn-rw.vhdx"))
    if n < 20:
        raise RuntimeError(f"/images/dyn-rw.vhdx on ext4 has {n} extents, not fragmented")
    facts.append(f"ext4: /many is hashed, the rw VHDX has {n} extents, "
                 f"{len(unwritten)} unwritten extents over {stale} old filler bytes")
    if large:
        n = len(v.extents("/large/six.vhdx"))
        facts.append(f"ext4: the 6 GiB VHDX's file has {n} extents")
    problems = v.fsck()
    if problems:
        raise RuntimeError("the ext4 volume as built: " + "; ".join(problems))
    return v, facts


def build_ext3(env, imgs, size):
    """An ext3 partition (no extents: the files have block maps with
    indirect and double indirect blocks)."""
    v = T.Ext4Volume(env, "ext3", size, mkfs="mkfs.ext3")
    v.add(imgs.dyn, "/images/dyn-ro.vhdx")
    v.add(imgs.dyn_rw, "/images/dyn-rw.vhdx", dense=True)
    v.build()
    if "does not use" not in v.debugfs('ex "/images/dyn-rw.vhdx"'):
        raise RuntimeError("/images/dyn-rw.vhdx on ext3 has extents")
    problems = v.fsck()
    if problems:
        raise RuntimeError("the ext3 volume as built: " + "; ".join(problems))
    return v


def build_ntfs(env, imgs, size, start):
    """The NTFS partition, filled through ntfs-3g; the rw images are
    prepared in place, as on a Windows or Linux host."""
    v = T.NtfsVolume(env, "ntfs", size, start=start)
    v.mount()
    try:
        v.add(imgs.dyn, "/images/dyn-ro.vhdx")
        v.add(imgs.dyn, "/images/dyn-cow.vhdx")
        v.add(imgs.base, "/chain/base.vhd")
        for mode in ("ro", "cow", "rw"):
            v.add(imgs.child[mode], f"/chain/child-{mode}.vhd")
        err = prepare(env, v.path("/chain/child-rw.vhd"))
        v.add(imgs.dyn, f"{NESTED}/{LONG_NAME}")
        os.makedirs(v.path("/many"))
        for i in range(ENTRIES):
            with open(v.path(f"/many/entry-{i:04d}.txt"), "wb") as f:
                f.write(b"%d\n" % i)
        v.add(imgs.dyn, "/many/the image.vhdx")
        os.makedirs(v.path("/packed"))
        T.run(["setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000800", v.path("/packed")])
        v.add(imgs.dyn, "/packed/image.vhdx")
        v.add(imgs.dyn, "/holes/image.vhdx", sparse=True)
        for path, bit, what in (("/packed/image.vhdx", 0x800, "compressed"),
                                ("/holes/image.vhdx", 0x200, "sparse")):
            if not v.attributes(path) & bit:
                raise RuntimeError(f"{path} on NTFS is not {what}: {v.attributes(path):#x}")
        # Old bytes past where the valid data length will end.
        vdl = env.path("vdl.src")
        shutil.copyfile(imgs.dyn, vdl)
        with open(vdl, "ab") as f:
            f.write(b"\x44" * T.MIB)
        v.add(vdl, "/images/vdl.vhdx")
        # Last, when little room is left: filling it to make gaps is cheap.
        v.add_fragmented(imgs.dyn, "/images/dyn-rw.vhdx")
        err = err or prepare(env, v.path("/images/dyn-rw.vhdx"))
        imgs.ntfs_rw_record = reserve_record(v.path("/images/dyn-rw.vhdx"))
    finally:
        v.umount()
    v.set_valid_length("vdl.vhdx", os.path.getsize(imgs.dyn))
    got = v.get("/images/vdl.vhdx", env.path("vdl.got"))
    with open(vdl, "r+b") as f:             # what the file now holds
        f.truncate(os.path.getsize(imgs.dyn))
        f.truncate(os.path.getsize(imgs.dyn) + T.MIB)
    if not same_bytes(got, vdl):
        raise RuntimeError("ntfscat does not read zeros past the valid data length of "
                           "/images/vdl.vhdx")
    imgs.vdl = vdl
    n = v.fragments("/images/dyn-rw.vhdx")
    if n < 4:
        raise RuntimeError(f"/images/dyn-rw.vhdx on NTFS has {n} fragments, not fragmented")
    if "$INDEX_ALLOCATION" not in v.info("/many"):
        raise RuntimeError("/many on NTFS has no index allocation (ntfsinfo)")
    facts = [f"NTFS: /many has an index allocation, the rw VHDX has {n} fragments"]
    problems = v.fsck()
    if problems:
        raise RuntimeError("the NTFS volume as built: " + "; ".join(problems))
    return v, facts, err


class Fs:
    """One host file system in the test: its partition, volume and the
    checks of its cases."""

    def __init__(self, env, name, host, part, kind, vol, prep_error):
        self.env, self.name, self.part, self.vol = env, name, part, vol
        self.disk, self.kind = host.path, kind
        start, _, guid = host.layout[part - 1]
        self.partition = (part, start, guid)
        self.prep_error = prep_error
        self.n = 0

    def get(self, path, parent=None):
        """The file (and its parent, beside it) as it is on the volume now."""
        self.n += 1
        d = self.env.path(f"{self.name}-get{self.n}")
        os.makedirs(d)
        if parent:
            self.vol.get(parent, os.path.join(d, os.path.basename(parent)))
        return self.vol.get(path, os.path.join(d, os.path.basename(path)))

    def unchanged(self, path, source):
        return [] if same_bytes(self.get(path), source) else [f"{path} changed on {self.name}"]

    def ro(self, path, marker, data, source, handoff=False):
        """handoff: also check the hand-off record the payload saw."""
        def check(run):
            problems = T.chain_payload(run, marker, data)
            w = run[4].value("PAYLOAD-WRITE") or ""
            if not w.startswith("failed") or "protect" not in w.lower():
                problems.append(f"payload write should fail as write protected: {w!r}")
            if handoff:
                problems += T.check_handoff(run[4], self.disk, self.partition, win(path),
                                            source, fs=self.kind)
            return problems + self.unchanged(path, source)
        return opts(self.part, path, "ro", "write return"), check

    def cow(self, path, marker, data, source):
        def check(run):
            problems = T.chain_payload(run, marker, data)
            if run[4].value("PAYLOAD-WRITE") != "ok":
                problems.append(f"payload write inside the machine: {run[4].value('PAYLOAD-WRITE')}")
            return problems + self.unchanged(path, source)
        return opts(self.part, path, "cow", "write return"), check

    def rw(self, path, marker, data, fmt, parent=None, span=None, prep_error=None,
           more=None):
        def check(run):
            problems = [e for e in (prep_error or self.prep_error,) if e]
            problems += T.chain_payload(run, marker, data)
            if run[4].value("PAYLOAD-WRITE") != "ok":
                problems.append(f"payload write: {run[4].value('PAYLOAD-WRITE')}")
            after = self.get(path, parent)
            parents = [os.path.join(os.path.dirname(after), os.path.basename(parent))] \
                if parent else None
            found, rc = check_image(self.env, after, data, written_bin(), fmt, marker, span,
                                    parents)
            problems += found + ([f"vhdtool check exit {rc} (want 0)"] if rc != 0 else [])
            problems += more(after) if more else []
            shutil.rmtree(os.path.dirname(after))
            return problems
        return opts(self.part, path, "rw", "write return"), check

    def rw_again(self, path, marker, data):
        """A second rw run on the image of an rw case: afterwards the file
        has the size boot-prepare gave it, and the reserve record's image
        end has moved up (blocks were taken from the reserve)."""
        def check(run):
            problems = T.chain_payload(run, marker, data)
            if run[4].value("PAYLOAD-WRITE") != "ok":
                problems.append(f"payload write: {run[4].value('PAYLOAD-WRITE')}")
            after = self.get(path)
            rec, size = reserve_record(after), os.path.getsize(after)
            before = self.rw_record
            if not rec or not before or rec[0] != size or size != before[0] \
                    or rec[1] <= before[1]:
                problems.append(f"reserve record (file size, image end) prepared {before}, "
                                f"now {rec and rec[:2]} in a file of {size} bytes")
            shutil.rmtree(os.path.dirname(after))
            return problems
        return opts(self.part, path, "rw", "write return"), check

    def fails(self, path, expect):
        return opts(self.part, path), lambda run: T.chain_failure(run, expect)


def cases_of(fs, imgs, hashed):
    """(name, chain line, check) for the cases every file system has."""
    d0, d1 = imgs.data0, imgs.data1
    out = [
        ("dynamic VHDX, ro (+ hand-off record)",
         *fs.ro("/images/dyn-ro.vhdx", MARKER, d0, imgs.dyn, handoff=True)),
        ("dynamic VHDX, cow", *fs.cow("/images/dyn-cow.vhdx", MARKER, d0, imgs.dyn)),
        ("dynamic VHDX, fragmented file, rw after boot-prepare",
         *fs.rw("/images/dyn-rw.vhdx", MARKER, d0, "vhdx")),
        ("dynamic VHDX, rw a second time: the file keeps its prepared size, new blocks "
         "came from the reserve",
         *fs.rw_again("/images/dyn-rw.vhdx", MARKER, d0)),
        ("differencing VHD chain, ro",
         *fs.ro("/chain/child-ro.vhd", CHILD, d1, imgs.child["ro"])),
        ("differencing VHD chain, cow",
         *fs.cow("/chain/child-cow.vhd", CHILD, d1, imgs.child["cow"])),
        ("differencing VHD chain, rw after boot-prepare",
         *fs.rw("/chain/child-rw.vhd", CHILD, d1, "vhd", parent="/chain/base.vhd",
                more=lambda after: fs.unchanged("/chain/base.vhd", imgs.base))),
        ("long name in a nested directory, ro",
         *fs.ro(f"{NESTED}/{LONG_NAME}", MARKER, d0, imgs.dyn)),
        (f"directory of {ENTRIES + 1} entries ({hashed}), ro",
         *fs.ro("/many/the image.vhdx", MARKER, d0, imgs.dyn)),
        ("image missing", *fs.fails("/images/missing.vhdx", "\\images\\missing.vhdx: not found")),
        ("path through a file",
         *fs.fails("/images/dyn-ro.vhdx/inner.vhdx", "is a file, not a directory")),
    ]
    return [(f"{fs.name}: {name}", line, check) for name, line, check in out]


def large_case(fs, large):
    path, data, _, err = large

    def past_4g(after):
        blocks = T.vhdx_block_offsets(after, 2 * T.MIB)
        moved = [b for b, o in blocks.items() if b < 1024 and o >= (4 << 30)]
        return [] if moved else ["no block of the inner disk's first 2 GiB lies past 4 GiB "
                                 "of the file (its BAT)"]
    line, check = fs.rw("/large/six.vhdx", LARGE, data, "vhdx", span=64 * T.MIB,
                        prep_error=err, more=past_4g)
    return [(f"{fs.name}: 6 GiB dynamic VHDX (file > 4 GiB), rw: new blocks past 4 GiB",
             line, check)]


def body(env, res):
    if not env.vhdx_supported():
        raise T.Skip("vhdtool cannot create VHDX images")
    imgs = Images(env)
    large = None
    if os.environ.get("EFI_HOSTFS_LARGE") == "1":
        try:
            large = large_image(env)
        except T.Skip as e:
            T.say(f"skip  the 6 GiB case: {e}")
    host = T.HostDisk(env, esp_mib=100, more=[(640 + (4608 if large else 0), "8300",
                                               "ext4 images"),
                                              (320, "0700", "NTFS images"),
                                              (100, "8300", "ext3 images")])
    (ext_start, ext_size, _), (ntfs_start, ntfs_size, _), (e3_start, e3_size, _) = \
        host.layout[1:4]
    ext, facts = build_ext4(env, imgs, ext_size, large)
    ext.place(host.path, ext_start)
    ext4 = Fs(env, "ext4", host, EXT4_PART, FS_EXT4, ext, imgs.prep_error)
    ext4.rw_record = reserve_record(imgs.dyn_rw)
    cases = cases_of(ext4, imgs, "hashed")
    cases.append(("ext4: unwritten extents read as zeros, ro",
                  *ext4.ro("/images/dyn-unwritten.vhdx", MARKER, imgs.data0, imgs.dyn,
                           handoff=True)))
    line, check = ext4.fails("/images/dyn-unwritten.vhdx", "no written data")
    cases.append(("ext4: rw of a file with unwritten extents", line.replace(
        '"args=return"', 'mode=rw "args=write return"'), check))
    line, check = ext4.cow("/images/dyn-noprep.vhdx", MARKER, imgs.data0, imgs.dyn)
    cases.append(("ext4: rw without a prepared reserve, fallback=cow: boots in cow, says so",
                  line.replace("mode=cow", "mode=rw fallback=cow"),
                  lambda run, cow=check: cow(run) + (
                      [] if any("fallback=cow" in l for l in run[1])
                      else [f"no fallback note: {run[1]}"])))
    if large:
        cases += large_case(ext4, large)
    e3vol = build_ext3(env, imgs, e3_size)
    e3vol.place(host.path, e3_start)
    ext3 = Fs(env, "ext3", host, EXT3_PART, FS_EXT3, e3vol, imgs.prep_error)
    cases += [
        ("ext3: dynamic VHDX (block map), ro (+ hand-off record)",
         *ext3.ro("/images/dyn-ro.vhdx", MARKER, imgs.data0, imgs.dyn, handoff=True)),
        ("ext3: dynamic VHDX (block map), rw after boot-prepare",
         *ext3.rw("/images/dyn-rw.vhdx", MARKER, imgs.data0, "vhdx")),
    ]
    ntfs = None
    try:
        nvol, more, err = build_ntfs(env, imgs, ntfs_size, ntfs_start)
        facts += more
        nvol.place(host.path, ntfs_start)
        ntfs = Fs(env, "NTFS", host, NTFS_PART, FS_NTFS, nvol, err)
        ntfs.rw_record = imgs.ntfs_rw_record
        cases += cases_of(ntfs, imgs, "index allocation")
        cases.append(("NTFS: compressed file",
                      *ntfs.fails("/packed/image.vhdx", "compressed")))
        cases.append(("NTFS: sparse file", *ntfs.fails("/holes/image.vhdx", "sparse")))
        # The hand-off record must give the range past the valid data length
        # no disk offset: the OS would read the old bytes there.
        cases.append(("NTFS: valid data length short of the file's end (old bytes past it), "
                      "ro", *ntfs.ro("/images/vdl.vhdx", MARKER, imgs.data0, imgs.vdl,
                                     handoff=True)))
        line, check = ntfs.fails("/images/vdl.vhdx",
                                 f"no written data on partition {NTFS_PART} (NTFS) "
                                 f"from byte {os.path.getsize(imgs.dyn)} on")
        cases.append(("NTFS: rw of a file with bytes past its valid data length",
                      line.replace('"args=return"', 'mode=rw "args=write return"'), check))
    except T.Skip as e:
        T.say(f"skip  the NTFS cases: {e}")
    for f in facts:
        T.say(f"# {f}")

    # Boot option 0: rw of an unprepared image on ext4, refused in one line;
    # the firmware then starts option 1, the payload that runs the cases.
    host.config(f"partition={EXT4_PART}\nimage=\\images\\dyn-noprep.vhdx\nmode=rw\n"
                "args=write\n")
    fb = T.fallback_disk(env, chain=[line for _, line, _ in cases])
    b = T.boot(env, [host.path, fb], timeout=900)
    T.say(f"# one boot for {len(cases) + 1} cases: {b.wall:.1f}s wall, {b.cpu:.1f}s cpu")
    ext.extract(host.path, ext_start)
    e3vol.extract(host.path, e3_start)
    if ntfs:
        ntfs.vol.extract(host.path, ntfs_start)
    first = T.loader_lines_before_payload(b)
    problems = [] if len(first) == 1 and "has no prepared reserve" in first[0] else [
        f"expected one 'has no prepared reserve' line, got {first}"]
    if b.value("PAYLOAD-MARKER") != "FALLBACK" or b.value("PAYLOAD-TPL") != "4":
        problems.append("the firmware did not go on to boot option 1 at TPL 4")
    problems += ext4.unchanged("/images/dyn-noprep.vhdx", imgs.dyn)
    res.check(f"ext4: rw without a prepared reserve, as boot option 0: back to the firmware "
              f"({first[0] if first else ''})", problems)
    runs = T.chain_runs(b)
    for i, (name, _, check) in enumerate(cases):
        if i >= len(runs):
            res.check(name, ["the payload never got to this case"], b)
            continue
        t0, t1 = b.time_of(f"PAYLOAD-CHAIN {i}:"), b.time_of(f"PAYLOAD-CHAIN-RESULT {i}:")
        problems = check(runs[i])
        said = runs[i][1][0] if len(runs[i][1]) == 1 else ""   # a failure's one line
        res.check(f"{name} ({t1 - t0:.1f}s){': ' + said if said else ''}", problems,
                  runs[i][4] if problems else None)
    res.check("ext4 checks clean afterwards (e2fsck -fn)", ext.fsck())
    res.check("ext3 checks clean afterwards (e2fsck -fn)", e3vol.fsck())
    if ntfs:
        res.check("NTFS checks clean afterwards (ntfsfix -n)", ntfs.vol.fsck())


if __name__ == "__main__":
    sys.exit(T.main(body))
