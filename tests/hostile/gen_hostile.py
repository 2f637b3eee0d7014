#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the hostile-image catalogue (issue 11) into a directory.

    python3 gen_hostile.py --vhdtool PATH OUT [--small]

OUT/images/CASE/...   one directory per case (parents "beside" an image
                      are those in its own directory)
OUT/outside/...       files outside every case directory: the secret that
                      must never be readable through an image, and parents
                      that a confining policy must refuse
OUT/manifest.json     what the harnesses run and expect, per case:

  name      case name (also its directory)
  file      the image, absolute path
  issue     which item of issue 11 (or "earlier") the case covers
  opts      extra vhdtool options for every command (e.g. --parent-dir)
  expect    command -> allowed exit statuses; "*" is the default.
            Commands: info info-json check check-json read map convert-raw
            convert-vhd convert-vhdx write compact resize snapshot (and
            measure, compare: those of convert-vhdx, convert-raw unless named)
  must      substrings (case-insensitive) the one error line of a failing
            command must contain, besides the file's base name ("a|b":
            either)
  names     other base names the error line may name instead (the image
            of a loop or chain where the fault was found)
  secrets   byte strings (hex) that must never appear in any output
  secret_expected  the control cases: the marker must appear (proves the
            case is built right, so its confined twin means something)
  rss_mb    bound on the maximum resident set size of any run
  out_max   bound on stdout bytes of a run (check, info, map)
  read_len  vhdtool read --length (null: the whole disk)
  skip      commands not run for this case (too slow if accepted)
  only      run just these commands (convert-raw-forced: convert -f raw)
  heavy     skipped under VHD_TEST_SMALL=1 (sanitizer pass)
  twin      another case whose messages must be identical once the
            case directories and twin_subst are normalised (messages do
            not tell whether a host path exists)
  lib       {"policy": [...], "expect": "refuse"|"open"|"any"} for hostile_lib
  nbd       {"params": [...], "expect": "refuse"|"serve"|"any"}
  log_unchanged  the read-write commands must leave the file's bytes as
            they were (VHDX log replay that is refused)
  max_growth bytes a read-write command may add to a copy of the file

Images are written here from the format specifications (VHD by hand;
VHDX bases are made by vhdtool and then damaged), sparse where they claim
huge sizes, so the catalogue costs little disk. Nothing here is committed
as a binary.
"""
import argparse, json, os, shutil, struct, subprocess, sys, uuid

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cli'))
from vhdx_damage import with_crc   # CRC-32C over a structure, field at +4

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
TS = 0x2A5B1C00   # a fixed VHD timestamp (seconds since 2000)

# --- VHD (Microsoft Virtual Hard Disk Image Format Specification) ---------

def vhd_checksum(buf, off):
    s = sum(buf[:off]) + sum(buf[off + 4:])
    return (~s) & 0xFFFFFFFF

def chs(size):
    ts = min(size // 512, 65535 * 16 * 255)
    if ts >= 65535 * 16 * 63:
        spt, hds = 255, 16
        cth = ts // spt
    else:
        spt = 17
        cth = ts // spt
        hds = max((cth + 1023) // 1024, 4)
        if cth >= hds * 1024 or hds > 16:
            spt, hds = 31, 16
            cth = ts // spt
        if cth >= hds * 1024:
            spt, hds = 63, 16
            cth = ts // spt
    return min(cth // hds, 65535), hds, spt

def vhd_footer(size, dtype, data_offset, uid):
    f = bytearray(512)
    f[0:8] = b'conectix'
    struct.pack_into('>IIQI', f, 8, 2, 0x00010000, data_offset, TS)
    f[28:32] = b'win '
    struct.pack_into('>I', f, 32, 0x000A0000)
    f[36:40] = b'Wi2k'
    struct.pack_into('>QQ', f, 40, size, size)
    struct.pack_into('>HBBI', f, 56, *chs(size), dtype)
    f[68:84] = uid
    struct.pack_into('>I', f, 64, vhd_checksum(f, 64))
    return bytes(f)

LOC = {'W2ku': 0x57326B75, 'W2ru': 0x57327275, 'Wi2k': 0x5769326B,
       'Wi2r': 0x57693272, 'MacX': 0x4D616358}

def loc_payload(code, text):
    if code in ('W2ku', 'W2ru'):
        return text.encode('utf-16-le')
    return text.encode('utf-8')

def write_at(f, off, data):
    f.seek(off)
    f.write(data)

def make_vhd(path, size, block_size=2 * MiB, dtype=3, blocks=None, parent_id=None,
             parent_name='', locators=(), entries=None, bat=None, bat_holes=False,
             uid=None, file_len=None):
    """A dynamic (3) or differencing (4) VHD. blocks: {index: data}, data
    written at the start of the block with every sector marked present.
    bat: {index: raw entry} overrides. bat_holes: leave the BAT unwritten
    (reads as zero entries, i.e. every block "at sector 0"), for the huge
    tables. file_len: cut (or extend) the file there afterwards."""
    blocks = blocks or {}
    uid = uid or uuid.uuid4().bytes
    if entries is None:
        entries = (size + block_size - 1) // block_size
    table = 1536
    table_bytes = (entries * 4 + 511) // 512 * 512
    pos = table + table_bytes
    locs, payloads = [], []
    for code, text in locators:
        p = loc_payload(code, text)
        space = (len(p) + 511) // 512 * 512 or 512
        locs.append((LOC[code], space, len(p), 0, pos))
        payloads.append((pos, p))
        pos += space
    bitmap = ((block_size // 512 + 7) // 8 + 511) // 512 * 512
    entry = {}
    for i in sorted(blocks):
        entry[i] = pos // 512
        pos += bitmap + block_size
    footer_at = pos
    with open(path, 'wb') as f:
        f.truncate(footer_at + 512)
        write_at(f, 0, vhd_footer(size, dtype, 512, uid))
        h = bytearray(1024)
        h[0:8] = b'cxsparse'
        struct.pack_into('>QQIII', h, 8, 0xFFFFFFFFFFFFFFFF, table, 0x00010000,
                         entries, block_size)
        h[40:56] = parent_id or bytes(16)
        struct.pack_into('>I', h, 56, TS)
        name = parent_name.encode('utf-16-be')[:512]
        h[64:64 + len(name)] = name
        for i, l in enumerate(locs):
            struct.pack_into('>IIIIQ', h, 576 + 24 * i, *l)
        struct.pack_into('>I', h, 36, vhd_checksum(h, 36))
        write_at(f, 512, h)
        if not bat_holes:
            t = bytearray(b'\xff' * table_bytes)
            for i, s in entry.items():
                struct.pack_into('>I', t, 4 * i, s)
            for i, v in (bat or {}).items():
                struct.pack_into('>I', t, 4 * i, v)
            write_at(f, table, t)
        else:
            for i, v in (bat or {}).items():
                write_at(f, table + 4 * i, struct.pack('>I', v))
        for off, p in payloads:
            write_at(f, off, p)
        for i, data in blocks.items():
            write_at(f, entry[i] * 512, b'\xff' * bitmap)
            write_at(f, entry[i] * 512 + bitmap, data)
        write_at(f, footer_at, vhd_footer(size, dtype, 512, uid))
        if file_len is not None:
            f.truncate(file_len)
    return uid

def vhd_uid(path):
    with open(path, 'rb') as f:
        f.seek(-512, 2)
        return f.read(512)[68:84]

def vhd_patch_header(path, fn):
    """Apply fn(header bytearray) to the dynamic header, fix its checksum."""
    with open(path, 'r+b') as f:
        f.seek(-512, 2)
        off = struct.unpack_from('>Q', f.read(512), 16)[0]
        f.seek(off)
        h = bytearray(f.read(1024))
        fn(h)
        struct.pack_into('>I', h, 36, vhd_checksum(h, 36))
        write_at(f, off, h)

# --- VHDX (MS-VHDX), on top of a base vhdtool makes ----------------------

GUID_BAT = bytes.fromhex('6677c22d23f600429d64115e9bfd4a08')
GUID_META = bytes.fromhex('06a27c8b90479a4bb8fe575f050f886e')
H1, H2, R1, R2 = 64 * KiB, 128 * KiB, 192 * KiB, 256 * KiB

def vhdx_layout(path):
    with open(path, 'rb') as f:
        hs = []
        for off in (H1, H2):
            f.seek(off)
            h = f.read(4096)
            ok = h[:4] == b'head' and with_crc(h) == h
            hs.append((struct.unpack_from('<Q', h, 8)[0] if ok else -1, off, h))
        seq, hoff, h = max(hs)
        f.seek(R1)
        r = f.read(64 * KiB)
        regions = {}
        for i in range(struct.unpack_from('<I', r, 8)[0]):
            e = r[16 + 32 * i:48 + 32 * i]
            regions[e[:16]] = struct.unpack_from('<QI', e, 16)
        f.seek(0, 2)
        size = f.tell()
    log_len, log_off = struct.unpack_from('<IQ', h, 68)
    return dict(seq=seq, hoff=hoff, header=h, log_off=log_off, log_len=log_len,
                bat=regions[GUID_BAT][0], meta=regions[GUID_META][0],
                meta_len=regions[GUID_META][1], size=size)

def vhdx_pending_log(path, target, data):
    """Leave one pending log entry (valid, current) that writes the 4 KiB
    `data` at file offset `target`, built from MS-VHDX section 2.3."""
    L = vhdx_layout(path)
    guid = uuid.uuid4().bytes
    size = L['size']
    last = max((size + MiB - 1) >> 20 << 20, size)
    e = bytearray(8192)
    seq = 1
    struct.pack_into('<4sIIIQI4x16sQQ', e, 0, b'loge', 0, 8192, 0, seq, 1, guid,
                     size, last)
    struct.pack_into('<4s4s8sQQ', e, 64, b'desc', data[4092:], data[:8], target, seq)
    struct.pack_into('<4sI', e, 4096, b'data', seq >> 32)
    e[4096 + 8:4096 + 4092] = data[8:4092]
    struct.pack_into('<I', e, 4096 + 4092, seq & 0xFFFFFFFF)
    with open(path, 'r+b') as f:
        write_at(f, L['log_off'], with_crc(e))
        nh = bytearray(L['header'])
        struct.pack_into('<Q', nh, 8, L['seq'] + 1)
        nh[48:64] = guid
        write_at(f, H2 if L['hoff'] == H1 else H1, with_crc(nh))

def vhdx_patch_regions(path, fn):
    with open(path, 'r+b') as f:
        for off in (R1, R2):
            f.seek(off)
            r = bytearray(f.read(64 * KiB))
            fn(r)
            write_at(f, off, with_crc(r))

def guid_text(g):
    a, b, c = struct.unpack_from('<IHH', g)
    return '{%08x-%04x-%04x-%s-%s}' % (a, b, c, g[8:10].hex(), g[10:].hex())

def vhdx_data_write_guid(path):
    return vhdx_layout(path)['header'][32:48]

def replace_all(buf, old, new):
    """Replace a name or GUID text in UTF-16LE, any case of hex digits."""
    n = 0
    for o, w in ((old, new), (old.upper(), new.upper())):
        a, b = o.encode('utf-16-le'), w.encode('utf-16-le')
        n += buf.count(a)
        buf = buf.replace(a, b)
    return buf, n

def vhdx_repoint(path, old_parent, new_parent):
    """Point a VHDX child made over old_parent at new_parent (same name
    length): locator paths and parent_linkage. Metadata has no CRC."""
    with open(path, 'rb') as f:
        buf = f.read()
    buf, n = replace_all(buf, os.path.basename(old_parent), os.path.basename(new_parent))
    buf, m = replace_all(buf, guid_text(vhdx_data_write_guid(old_parent)),
                         guid_text(vhdx_data_write_guid(new_parent)))
    assert n and m, (path, n, m)
    write_sparse(path, buf)

def copy_sparse(src, dst):
    with open(src, 'rb') as f:
        write_sparse(dst, f.read())

def write_sparse(path, buf):
    with open(path, 'wb') as f:
        f.truncate(len(buf))
        z = bytes(64 * KiB)
        for off in range(0, len(buf), 64 * KiB):
            chunk = buf[off:off + 64 * KiB]
            if chunk != z[:len(chunk)]:
                write_at(f, off, chunk)

# --- The catalogue ---------------------------------------------------------

class Catalogue:
    def __init__(self, out, vhdtool, small):
        self.out, self.vhdtool, self.small = out, vhdtool, small
        self.images = os.path.join(out, 'images')
        self.outside = os.path.join(out, 'outside')
        self.cases = []
        for d in (self.images, self.outside):
            os.makedirs(d, exist_ok=True)
        token = os.urandom(12).hex()
        self.marker = ('HOSTILE-SECRET-%s-' % token).encode()
        self.secret = os.path.join(self.outside, 'secret.bin')
        with open(self.secret, 'wb') as f:
            f.write(self.marker * (64 * KiB // len(self.marker) + 1))
        self.secrets = [self.marker.hex()]
        self.passwd = []
        try:
            with open('/etc/passwd', 'rb') as f:
                first = f.readline().rstrip(b'\n')
            if len(first) >= 8:
                self.passwd = [first[:32].hex()]
        except OSError:
            pass

    def dir(self, name):
        d = os.path.join(self.images, name)
        os.makedirs(d, exist_ok=True)
        return d

    def tool(self, *args):
        subprocess.run([self.vhdtool, *args], check=True, stdout=subprocess.DEVNULL)

    def add(self, name, file, issue, expect, must=(), **kw):
        c = dict(name=name, file=file, issue=issue, opts=[], expect=expect,
                 must=list(must), secrets=self.secrets + self.passwd,
                 secret_expected=False, rss_mb=64, out_max=MiB, read_len=None,
                 skip=[], heavy=False, twin=None, twin_subst=None,
                 lib={'policy': ['beside'], 'expect': 'any'},
                 nbd={'params': [], 'expect': 'any'}, log_unchanged=False,
                 max_growth=64 * MiB, only=None, names=[])
        c.update(kw)
        self.cases.append(c)

# Expectation profiles (exit statuses per command; "*" for the rest).
BROKEN = {'*': [1], 'check': [2], 'check-json': [2]}
FOREIGN = {'*': [1]}
# The image itself is sound but its parent is refused, missing, a loop or
# too deep: info shows the image alone (one warning line, exit 0); check
# could not check (1: a missing parent is not corruption, issue 11 item
# 13); everything that reads through the chain fails.
NO_PARENT = {'*': [1], 'info': [0], 'info-json': [0]}
# A loop or a chain past the depth limit: whether check calls that
# corruption of the chain (2) or could not check (1) is left open.
BAD_CHAIN = dict(NO_PARENT, check=[1, 2], **{'check-json': [1, 2]})
OPENS = {'*': [0], 'check': [0, 3], 'check-json': [0, 3]}

def parent_cases(c):
    """Item 1: host files through parent locators; policy confinement."""
    out = c.outside
    win_abs = lambda p: 'C:' + p.replace('/', '\\')
    raw_cases = [
        # name, locators, secret, twin locators (a path that does not exist)
        ('raw-abs-passwd', [('W2ku', 'C:\\etc\\passwd'), ('Wi2k', 'C:\\etc\\passwd')],
         [('W2ku', 'C:\\etc\\pa55wd'), ('Wi2k', 'C:\\etc\\pa55wd')]),
        ('raw-macx-passwd', [('MacX', 'file:///etc/passwd')],
         [('MacX', 'file:///etc/pa55wd')]),
        ('raw-rel-passwd', [('W2ru', '..\\' * 12 + 'etc\\passwd')],
         [('W2ru', '..\\' * 12 + 'etc\\pa55wd')]),
        ('raw-rel-secret', [('W2ru', '..\\..\\outside\\secret.bin')],
         [('W2ru', '..\\..\\outside\\pa55wd.bin')]),
        ('raw-abs-secret', [('W2ku', win_abs(c.secret)), ('MacX', 'file://' + c.secret)],
         [('W2ku', win_abs(c.secret).replace('secret', 'pa55wd')),
          ('MacX', 'file://' + c.secret.replace('secret', 'pa55wd'))]),
    ]
    for name, locs, twin_locs in raw_cases:
        for n, l, twin in ((name, locs, name + '-absent'), (name + '-absent', twin_locs, name)):
            f = os.path.join(c.dir(n), 'child.vhd')
            make_vhd(f, 1 * MiB, dtype=4, parent_id=bytes(16), parent_name='passwd',
                     locators=l)
            c.add(n, f, '1', NO_PARENT, ['parent'], twin=twin,
                  twin_subst=['pa55wd', 'passwd'] if 'passwd' in name else ['pa55wd', 'secret'],
                  lib={'policy': ['any'], 'expect': 'any'},
                  nbd={'params': [], 'expect': 'refuse'})
    # Raw parents explicitly allowed but confined: the traversal still fails.
    f = os.path.join(c.dir('raw-rel-secret-allowed-confined'), 'child.vhd')
    make_vhd(f, 1 * MiB, dtype=4, parent_id=bytes(16),
             locators=[('W2ru', '..\\..\\outside\\secret.bin')])
    d = os.path.dirname(f)
    c.add('raw-rel-secret-allowed-confined', f, '1', NO_PARENT, ['parent'],
          opts=['--raw-parent', '--parent-dir', d],
          lib={'policy': ['raw-parent', 'parent-dir=' + d], 'expect': 'refuse'},
          nbd={'params': ['raw-parent=true'], 'expect': 'refuse'})

    # A real VHD and VHDX parent outside the image's folder, its id
    # matching, holding the secret: followed by default (control, the
    # marker comes out), refused under --parent-dir / beside.
    pv = os.path.join(out, 'parent.vhd')
    puid = make_vhd(pv, 4 * MiB, blocks={0: c.marker * (4096 // len(c.marker))})
    pvx = os.path.join(out, 'parent.vhdx')
    c.tool('create', '-f', 'vhdx', '-s', '4M', '-b', '1M', pvx)
    subprocess.run([c.vhdtool, 'write', pvx], input=c.marker * 64, check=True)
    for fmt in ('vhd', 'vhdx'):
        for suffix, real in (('', True), ('-absent', False)):
            name = 'outside-parent-' + fmt + suffix
            d = c.dir(name)
            f = os.path.join(d, 'child.' + fmt)
            target = 'parent.' + fmt if real else 'parenx.' + fmt
            if fmt == 'vhd':
                make_vhd(f, 4 * MiB, dtype=4, parent_id=puid, parent_name='parent.vhd',
                         locators=[('W2ru', '..\\..\\outside\\' + target)])
            else:
                c.tool('snapshot', pvx, f)
                if not real:
                    with open(f, 'rb') as fh:
                        buf = fh.read()
                    buf, n = replace_all(buf, 'parent.vhdx', 'parenx.vhdx')
                    write_sparse(f, buf)
            c.add(name, f, '1', NO_PARENT, ['parent'], opts=['--parent-dir', d],
                  twin=('outside-parent-' + fmt + ('-absent' if real else '')),
                  twin_subst=['parenx', 'parent'],
                  lib={'policy': ['beside'], 'expect': 'refuse'},
                  nbd={'params': [], 'expect': 'refuse'})
            if real:
                c.add(name + '-control', f, '1 (control: parents=any)', OPENS,
                      secrets=[c.marker.hex()], secret_expected=True,
                      skip=['write', 'compact', 'resize'],
                      lib={'policy': ['any'], 'expect': 'open'},
                      nbd={'params': ['parents=any'], 'expect': 'serve'})
    # A symbolic link beside the child that leads outside.
    d = c.dir('symlink-parent')
    os.symlink(pv, os.path.join(d, 'parent.vhd'))
    f = os.path.join(d, 'child.vhd')
    make_vhd(f, 4 * MiB, dtype=4, parent_id=puid, locators=[('W2ru', 'parent.vhd')])
    c.add('symlink-parent', f, '1', NO_PARENT, ['parent'], opts=['--parent-dir', d],
          lib={'policy': ['beside'], 'expect': 'refuse'},
          nbd={'params': [], 'expect': 'refuse'})
    # A Windows absolute path is not a host path: only its name is tried
    # beside the child, so no option is needed to refuse it.
    d = c.dir('windows-absolute-only')
    f = os.path.join(d, 'child.vhd')
    make_vhd(f, 4 * MiB, dtype=4, parent_id=puid, parent_name='',
             locators=[('W2ku', win_abs(pv)), ('Wi2k', win_abs(pv))])
    c.add('windows-absolute-only', f, '1', NO_PARENT, ['parent'],
          lib={'policy': ['any'], 'expect': 'refuse'},
          nbd={'params': ['parents=any'], 'expect': 'refuse'})

def fifo_cases(c):
    """Item 2: FIFOs never block an open."""
    d = c.dir('fifo-parent')
    os.mkfifo(os.path.join(d, 'parent.vhd'))
    f = os.path.join(d, 'child.vhd')
    make_vhd(f, 4 * MiB, dtype=4, parent_id=uuid.uuid4().bytes, parent_name='parent.vhd',
             locators=[('W2ru', 'parent.vhd')])
    c.add('fifo-parent', f, '2', NO_PARENT, ['parent'],
          nbd={'params': [], 'expect': 'refuse'}, lib={'policy': ['beside'], 'expect': 'refuse'})
    d = c.dir('fifo-parent-raw')
    os.mkfifo(os.path.join(d, 'parent.raw'))
    f = os.path.join(d, 'child.vhd')
    make_vhd(f, 4 * MiB, dtype=4, parent_id=bytes(16), locators=[('W2ru', 'parent.raw')])
    c.add('fifo-parent-raw', f, '2', NO_PARENT, ['parent'], opts=['--raw-parent'],
          nbd={'params': ['raw-parent=true'], 'expect': 'refuse'},
          lib={'policy': ['beside', 'raw-parent'], 'expect': 'refuse'})
    d = c.dir('fifo-image')
    f = os.path.join(d, 'disk.vhd')
    os.mkfifo(f)
    c.add('fifo-image', f, '2', FOREIGN, [], skip=['write', 'compact', 'resize'],
          nbd={'params': [], 'expect': 'refuse'}, lib={'policy': ['beside'], 'expect': 'refuse'})
    # A VHDX child whose parent was replaced by a FIFO.
    d = c.dir('fifo-parent-vhdx')
    p = os.path.join(d, 'parent.vhdx')
    c.tool('create', '-f', 'vhdx', '-s', '4M', '-b', '1M', p)
    f = os.path.join(d, 'child.vhdx')
    c.tool('snapshot', p, f)
    os.unlink(p)
    os.mkfifo(p)
    c.add('fifo-parent-vhdx', f, '2', NO_PARENT, ['parent'],
          nbd={'params': [], 'expect': 'refuse'}, lib={'policy': ['beside'], 'expect': 'refuse'})

def log_cases(c):
    """Item 3: VHDX log entries over every region. Writes outside the data,
    BAT and metadata regions are refused by a read-write open, which then
    leaves the file as it was."""
    base = os.path.join(c.outside, 'log-base.vhdx')
    c.tool('create', '-f', 'vhdx', '-s', '8M', '-b', '1M', base)
    subprocess.run([c.vhdtool, 'write', base], input=b'\x5a' * 8192, check=True)
    L = vhdx_layout(base)
    junk = (b'HOSTILE-LOG-' * 342)[:4096]
    targets = [('header1', H1), ('header2', H2), ('region1', R1), ('region2', R2),
               ('identifier', 0), ('log', L['log_off']), ('header-gap', 512 * KiB),
               ('past-end', 1 << 40)]
    for tname, off in targets:
        name = 'log-over-' + tname
        f = os.path.join(c.dir(name), 'disk.vhdx')
        copy_sparse(base, f)
        vhdx_pending_log(f, off, junk)
        c.add(name, f, '3', {'*': [0, 1], 'check': [1, 2], 'check-json': [1, 2],
                             'write': [1], 'compact': [1], 'resize': [1]},
              ['log'], log_unchanged=True, lib={'policy': ['beside'], 'expect': 'any'},
              nbd={'params': [], 'expect': 'any'})
    # Inside the metadata region but not a valid table: the replayed
    # structures are validated before anything is written.
    name = 'log-metadata-garbage'
    f = os.path.join(c.dir(name), 'disk.vhdx')
    copy_sparse(base, f)
    vhdx_pending_log(f, L['meta'], junk)
    c.add(name, f, '3', {'*': [0, 1], 'check': [1, 2], 'check-json': [1, 2],
                         'write': [1], 'compact': [1], 'resize': [1]},
          ['metadata'], log_unchanged=True)
    # Control: a log entry over the BAT restoring what is there is valid.
    name = 'log-over-bat-valid'
    f = os.path.join(c.dir(name), 'disk.vhdx')
    copy_sparse(base, f)
    with open(f, 'rb') as fh:
        fh.seek(L['bat'])
        sector = fh.read(4096)
    vhdx_pending_log(f, L['bat'], sector)
    c.add(name, f, '3 (control)', {'*': [0], 'check': [0, 3], 'check-json': [0, 3]},
          lib={'policy': ['beside'], 'expect': 'open'}, nbd={'params': [], 'expect': 'serve'})

FOREIGN_FORMATS = [
    # case, qemu-img format and options, name the message must carry
    ('qed', ['-f', 'qed'], 'qed'),
    ('parallels', ['-f', 'parallels'], 'parallels'),
]

# Formats read as sources (issue 17): they read, and every command that
# writes one is refused ("read-only format").
READ_ONLY_FORMATS = [
    ('qcow2', ['-f', 'qcow2']),
    ('vmdk-sparse', ['-f', 'vmdk']),
    ('vmdk-descriptor', ['-f', 'vmdk', '-o', 'subformat=monolithicFlat']),
    ('vdi', ['-f', 'vdi']),
]
READ_ONLY = {'*': [0], 'write': [1], 'compact': [1], 'resize': [1]}

def foreign_header(kind):
    """A minimal header when qemu-img is absent (probing needs the magic)."""
    b = bytearray(MiB)
    if kind == 'qcow2':
        b[0:8] = b'QFI\xfb\0\0\0\3'
        struct.pack_into('>IQ', b, 20, 16, 4 * MiB)
    elif kind == 'vmdk-sparse':
        b[0:8] = b'KDMV\1\0\0\0'
    elif kind == 'vmdk-descriptor':
        return b'# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n' \
               b'createType="monolithicFlat"\nRW 8192 FLAT "disk-flat.vmdk" 0\n'
    elif kind == 'vdi':
        b[0:32] = b'<<< QEMU VM Virtual Disk Image >>>\n'[:32]
        struct.pack_into('<I', b, 64, 0xBEDA107F)
    elif kind == 'qed':
        b[0:4] = b'QED\0'
    elif kind == 'parallels':
        b[0:16] = b'WithoutFreeSpace'
    return bytes(b)

def foreign_cases(c):
    """Item 7: other formats are refused by name, never copied as raw."""
    have_qemu = shutil.which('qemu-img') is not None
    for kind, qopts in READ_ONLY_FORMATS:
        d = c.dir('readonly-' + kind)
        f = os.path.join(d, 'disk.' + kind.split('-')[0])
        if not have_qemu or subprocess.run(['qemu-img', 'create', '-q', *qopts, f, '4M'],
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL).returncode != 0:
            continue   # no hand-made stand-in: these must be real images
        c.add('readonly-' + kind, f, '17', READ_ONLY, ['read-only'],
              lib={'policy': ['beside'], 'expect': 'open'},
              nbd={'params': [], 'expect': 'serve'})
    for kind, qopts, word in FOREIGN_FORMATS:
        d = c.dir('foreign-' + kind)
        f = os.path.join(d, 'disk.' + kind.split('-')[0])
        made = False
        if have_qemu:
            made = subprocess.run(['qemu-img', 'create', '-q', *qopts, f, '4M'],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).returncode == 0
        if not made:
            with open(f, 'wb') as fh:
                fh.write(foreign_header(kind))
        c.add('foreign-' + kind, f, '7', FOREIGN, [word],
              lib={'policy': ['beside'], 'expect': 'refuse'},
              nbd={'params': [], 'expect': 'refuse'})
        c.add('foreign-' + kind + '-as-raw', f, '7 (control: -f raw)',
              {'*': [0]}, opts=[], only=['convert-raw-forced'])
    # Split VHD (Virtual PC on FAT): disk.vhd holds the start of a dynamic
    # VHD (footer copy, header, BAT) and disk.v01 the rest with the footer.
    d = c.dir('split-vhd')
    whole = os.path.join(c.outside, 'split-whole.vhd')
    make_vhd(whole, 4 * MiB, blocks={0: b'\x11' * 4096})
    with open(whole, 'rb') as fh:
        data = fh.read()
    cut = 4096
    f = os.path.join(d, 'disk.vhd')
    with open(f, 'wb') as fh:
        fh.write(data[:cut])
    with open(os.path.join(d, 'disk.v01'), 'wb') as fh:
        fh.write(data[cut:])
    # A copy (w-disk.vhd) has no .v01 beside it, so no read-write command
    # runs on one here.
    c.add('split-vhd', f, '7', FOREIGN, ['split'], skip=['write', 'compact', 'resize'],
          lib={'policy': ['beside'], 'expect': 'refuse'}, nbd={'params': [], 'expect': 'refuse'})
    # A split fixed VHD: the first piece is bare data, the footer ends the
    # last piece.
    d = c.dir('split-vhd-fixed')
    f = os.path.join(d, 'disk.vhd')
    with open(f, 'wb') as fh:
        fh.write(b'\x22' * MiB)
    with open(os.path.join(d, 'disk.v01'), 'wb') as fh:
        fh.write(b'\x22' * MiB + vhd_footer(2 * MiB, 2, 0xFFFFFFFFFFFFFFFF, uuid.uuid4().bytes))
    c.add('split-vhd-fixed', f, '7', FOREIGN, ['split'], skip=['write', 'compact', 'resize'],
          lib={'policy': ['beside'], 'expect': 'refuse'}, nbd={'params': [], 'expect': 'refuse'})

def resource_cases(c):
    """Items 8-10: memory and output stay bounded whatever the image claims."""
    # 8: a 16 MiB VHD whose 4 Mi BAT entries are all bad (zero: every block
    # "at sector 0", over the footer copy and each other).
    d = c.dir('bat-4mi-bad')
    f = os.path.join(d, 'disk.vhd')
    make_vhd(f, 2040 * GiB, entries=4 * MiB, bat_holes=True)
    c.add('bat-4mi-bad', f, '8', BROKEN, ['BAT'], read_len=MiB,
          skip=['convert-raw', 'convert-vhd', 'convert-vhdx', 'map'])
    # 8: a 2 GiB sparse file with the largest table it can hold.
    d = c.dir('sparse-2g-counts')
    f = os.path.join(d, 'disk.vhd')
    entries = (2 * GiB - 2048) // 4
    make_vhd(f, 2040 * GiB, entries=entries, bat_holes=True)
    c.add('sparse-2g-counts', f, '8', BROKEN, ['BAT'], read_len=MiB, heavy=True,
          skip=['convert-raw', 'convert-vhd', 'convert-vhdx', 'map', 'compact', 'resize'])
    # 9: a 2 GiB sparse VHD claiming a 2040 GiB disk of 4 KiB blocks (a
    # 2 GiB BAT): bounded memory at open, refused or served lazily.
    d = c.dir('bat-2g-4k-blocks')
    f = os.path.join(d, 'disk.vhd')
    make_vhd(f, 2040 * GiB, block_size=4 * KiB, bat_holes=True)
    c.add('bat-2g-4k-blocks', f, '9', {'*': [0, 1], 'check': [1, 2], 'check-json': [1, 2]},
          [], read_len=MiB, heavy=True,
          skip=['convert-raw', 'convert-vhd', 'convert-vhdx', 'map', 'compact', 'resize'])
    # 10: 2 GiB blocks; a small write must not grow the file by gigabytes.
    d = c.dir('block-2g')
    f = os.path.join(d, 'disk.vhd')
    make_vhd(f, 4 * GiB, block_size=2 * GiB)
    # Refusing a geometry no writer makes is not corruption: check may say
    # either that it could not check (1) or that the header is wrong (2).
    c.add('block-2g', f, '10', dict(BROKEN, check=[1, 2], **{'check-json': [1, 2]}),
          ['block'], max_growth=MiB, read_len=MiB)

    # Free block slots are listed at open (thin provisioning): a gap of
    # tens of GiB before a block of 512-byte blocks must not be listed slot
    # by slot (the fuzzer found a 2 GiB allocation doing that).
    d = c.dir('slot-gap')
    f = os.path.join(d, 'disk.vhd')
    far = 64 * GiB
    uid = make_vhd(f, MiB, block_size=512, bat={0: far // 512}, file_len=far + 1024)
    with open(f, 'r+b') as h:
        write_at(h, far + 1024, vhd_footer(MiB, 3, 512, uid))
    c.add('slot-gap', f, '9', {'*': [0, 1], 'check': [0, 1, 2, 3], 'check-json': [0, 1, 2, 3],
                               'compact': [0, 1]},
          [], read_len=MiB, heavy=True, skip=['resize', 'write'])

def earlier_cases(c):
    """Loops, deep chains, BAT entries where they must not point, huge
    region/metadata counts, truncation, empty files, checksums."""
    # An image that is its own parent; A -> B -> A.
    d = c.dir('loop-self')
    f = os.path.join(d, 'self.vhd')
    uid = uuid.uuid4().bytes
    make_vhd(f, 4 * MiB, dtype=4, parent_id=uid, uid=uid, locators=[('W2ru', 'self.vhd')])
    c.add('loop-self', f, 'earlier', BAD_CHAIN, ['parent'], names=['self.vhd'])
    d = c.dir('loop-ab')
    a, b = os.path.join(d, 'a.vhd'), os.path.join(d, 'b.vhd')
    ua, ub = uuid.uuid4().bytes, uuid.uuid4().bytes
    make_vhd(a, 4 * MiB, dtype=4, uid=ua, parent_id=ub, locators=[('W2ru', 'b.vhd')])
    make_vhd(b, 4 * MiB, dtype=4, uid=ub, parent_id=ua, locators=[('W2ru', 'a.vhd')])
    c.add('loop-ab', a, 'earlier', BAD_CHAIN, ['parent'], names=['a.vhd', 'b.vhd'])
    # VHDX A -> B -> A, through vhdtool-made snapshots repointed.
    d = c.dir('loop-vhdx')
    x, pa, pb = (os.path.join(d, n) for n in ('px.vhdx', 'pa.vhdx', 'pb.vhdx'))
    c.tool('create', '-f', 'vhdx', '-s', '4M', '-b', '1M', x)
    c.tool('snapshot', x, pa)
    c.tool('snapshot', pa, pb)
    vhdx_repoint(pa, x, pb)
    c.add('loop-vhdx', pa, 'earlier', BAD_CHAIN, ['parent'],
          names=['px.vhdx', 'pa.vhdx', 'pb.vhdx'])
    # 200-deep chains (the library stops at 32).
    depth = 200
    d = c.dir('chain-200-vhd')
    prev = None
    for i in range(depth):
        f = os.path.join(d, 'l%03d.vhd' % i)
        if prev is None:
            prev_uid = make_vhd(f, 4 * MiB, blocks={0: b'\x42' * 512})
        else:
            prev_uid = make_vhd(f, 4 * MiB, dtype=4, parent_id=prev_uid,
                                locators=[('W2ru', os.path.basename(prev))])
        prev = f
    c.add('chain-200-vhd', prev, 'earlier', BAD_CHAIN, ['chain'],
          names=['l%03d.vhd' % i for i in range(depth)])
    d = c.dir('chain-200-vhdx')
    base = os.path.join(d, 'l000.vhdx')
    c.tool('create', '-f', 'vhdx', '-s', '4M', '-b', '1M', base)
    kid = os.path.join(d, 'l001.vhdx')
    c.tool('snapshot', base, kid)
    with open(kid, 'rb') as fh:
        tmpl = fh.read()
    # Where the template names its parent (name, GUID text; UTF-16LE, any
    # case): each copy patches those bytes in place.
    def spots(text):
        found = []
        for t in (text, text.upper()):
            e = t.encode('utf-16-le')
            i = tmpl.find(e)
            while i >= 0:
                found.append((i, t is not text))
                i = tmpl.find(e, i + 1)
        assert found, text
        return found
    name_at = spots('l000.vhdx')
    guid_at = spots(guid_text(vhdx_data_write_guid(base)))
    prev, prev_guid = kid, vhdx_data_write_guid(kid)
    for i in range(2, depth):
        f = os.path.join(d, 'l%03d.vhdx' % i)
        buf = bytearray(tmpl)
        for at, texts in ((name_at, os.path.basename(prev)), (guid_at, guid_text(prev_guid))):
            for off, upper in at:
                e = (texts.upper() if upper else texts).encode('utf-16-le')
                buf[off:off + len(e)] = e
        prev_guid = uuid.uuid4().bytes
        for h in (H1, H2):
            buf[h + 32:h + 48] = prev_guid
            buf[h:h + 4096] = with_crc(buf[h:h + 4096])
        write_sparse(f, bytes(buf))
        prev = f
    c.add('chain-200-vhdx', prev, 'earlier', BAD_CHAIN, ['chain'],
          names=['l%03d.vhdx' % i for i in range(depth)])

    # VHD BAT entries: overlapping each other, the header, the BAT, past EOF.
    blk = {0: b'\x01' * 4096, 2: b'\x02' * 4096}
    def vhd_bat_case(name, fix, must=('BAT',)):
        f = os.path.join(c.dir(name), 'disk.vhd')
        make_vhd(f, 8 * MiB, block_size=MiB, blocks=blk)
        with open(f, 'r+b') as fh:
            fh.seek(1536)
            t = bytearray(fh.read(32))
            fix(t)
            write_at(fh, 1536, t)
        c.add(name, f, 'earlier', BROKEN, list(must))
    ent = lambda t, i: struct.unpack_from('>I', t, 4 * i)[0]
    put = lambda t, i, v: struct.pack_into('>I', t, 4 * i, v)
    vhd_bat_case('vhd-bat-same-block', lambda t: put(t, 2, ent(t, 0)))
    vhd_bat_case('vhd-bat-overlap', lambda t: put(t, 2, ent(t, 0) + 8))
    vhd_bat_case('vhd-bat-on-header', lambda t: put(t, 1, 1))
    vhd_bat_case('vhd-bat-on-footer-copy', lambda t: put(t, 1, 0))
    vhd_bat_case('vhd-bat-on-bat', lambda t: put(t, 1, 3))
    vhd_bat_case('vhd-bat-past-eof', lambda t: put(t, 1, 1 << 24))
    vhd_bat_case('vhd-bat-max', lambda t: put(t, 1, 0xFFFFFFFE))
    # VHDX BAT entries.
    vbase = os.path.join(c.outside, 'bat-base.vhdx')
    c.tool('create', '-f', 'vhdx', '-s', '8M', '-b', '1M', vbase)
    subprocess.run([c.vhdtool, 'write', vbase], input=b'\x33' * 4096, check=True)
    L = vhdx_layout(vbase)
    with open(vbase, 'rb') as fh:
        fh.seek(L['bat'])
        b0 = struct.unpack('<Q', fh.read(8))[0]
    for name, idx, val in [
            ('vhdx-bat-past-eof', 1, ((L['size'] + 64 * MiB) >> 20 << 20) | 6),
            ('vhdx-bat-max-offset', 1, (0xFFFFFFFFFFFFFFFF >> 20 << 20) | 6),
            ('vhdx-bat-in-header', 1, 6),
            ('vhdx-bat-on-metadata', 1, L['meta'] | 6),
            ('vhdx-bat-same-block', 1, b0)]:
        f = os.path.join(c.dir(name), 'disk.vhdx')
        copy_sparse(vbase, f)
        with open(f, 'r+b') as fh:
            write_at(fh, L['bat'] + 8 * idx, struct.pack('<Q', val))
        c.add(name, f, 'earlier', BROKEN, ['BAT|payload block'])
    # Huge region table and metadata table counts (CRCs valid).
    f = os.path.join(c.dir('vhdx-region-count'), 'disk.vhdx')
    copy_sparse(vbase, f)
    vhdx_patch_regions(f, lambda r: struct.pack_into('<I', r, 8, 0xFFFFFFFF))
    c.add('vhdx-region-count', f, 'earlier', BROKEN, ['region'])
    f = os.path.join(c.dir('vhdx-metadata-count'), 'disk.vhdx')
    copy_sparse(vbase, f)
    with open(f, 'r+b') as fh:
        write_at(fh, L['meta'] + 10, b'\xff\xff')
    c.add('vhdx-metadata-count', f, 'earlier', BROKEN, ['metadata'])
    # Checksums: both VHD footers, the VHD header, both VHDX headers and
    # both region tables.
    def damaged(name, src, fn, must, expect=BROKEN):
        f = os.path.join(c.dir(name), os.path.basename(src).replace('base', 'disk'))
        copy_sparse(src, f)
        with open(f, 'r+b') as fh:
            fn(fh)
        c.add(name, f, 'earlier', expect, must)
    vref = os.path.join(c.outside, 'ref-base.vhd')
    make_vhd(vref, 8 * MiB, block_size=MiB, blocks=blk)
    vsize = os.path.getsize(vref)
    def flip(off):
        def fn(fh):
            fh.seek(off)
            b = fh.read(1)
            write_at(fh, off, bytes([b[0] ^ 0x01]))
        return fn
    damaged('vhd-footer-checksums', vref,
            lambda fh: (flip(vsize - 512 + 64)(fh), flip(64)(fh)), ['checksum'])
    damaged('vhd-header-checksum', vref, flip(512 + 36), ['checksum'])
    damaged('vhdx-header-checksums', vbase,
            lambda fh: (flip(H1 + 200)(fh), flip(H2 + 200)(fh)), ['header'])
    damaged('vhdx-region-checksums', vbase,
            lambda fh: (flip(R1 + 40000)(fh), flip(R2 + 40000)(fh)), ['region'])
    # Truncation and the empty file (an empty raw disk: opens, 0 bytes).
    def cut(name, src, length, must):
        f = os.path.join(c.dir(name), os.path.basename(src).replace('base', 'disk'))
        copy_sparse(src, f)
        os.truncate(f, length)
        c.add(name, f, 'earlier', BROKEN, must)
    cut('vhd-truncated-in-bat', vref, 1536 + 8, ['disk.vhd'])
    cut('vhdx-truncated-1m', vbase, MiB, ['disk.vhdx'])
    f = os.path.join(c.dir('empty-file'), 'disk.img')
    open(f, 'wb').close()
    c.add('empty-file', f, 'earlier',
          # An empty raw disk: a copy of nothing may be refused (with a
          # message naming the source), 7 bytes do not fit.
          {'*': [0], 'convert-raw': [0, 1], 'convert-vhd': [0, 1], 'convert-vhdx': [0, 1],
           'write': [1], 'compact': [0, 1], 'check': [0, 3], 'check-json': [0, 3],
           'snapshot': [0, 1]},
          lib={'policy': ['beside'], 'expect': 'open'}, nbd={'params': [], 'expect': 'any'})

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--vhdtool', required=True)
    ap.add_argument('--small', action='store_true')
    ap.add_argument('out')
    a = ap.parse_args()
    c = Catalogue(os.path.abspath(a.out), a.vhdtool, a.small)
    for gen in (parent_cases, fifo_cases, log_cases, foreign_cases, resource_cases,
                earlier_cases):
        gen(c)
    with open(os.path.join(c.out, 'manifest.json'), 'w') as f:
        json.dump({'secret': c.secret, 'cases': c.cases}, f, indent=1)
    print('%d cases in %s' % (len(c.cases), c.out))

if __name__ == '__main__':
    main()
