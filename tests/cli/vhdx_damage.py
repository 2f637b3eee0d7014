# SPDX-License-Identifier: BSD-3-Clause
"""Damage a VHDX on purpose for the repair tests (tests/cli/test_repair.sh).

    python3 vhdx_damage.py ACTION FILE N

pending_log FILE N   clear BAT entry N in place and leave a pending log (one
                     entry, header log_guid set) whose replay restores it
break_header FILE N  spoil the signature of header N (1 or 2)
break_region FILE N  flip a byte of region table copy N (1 or 2)
bat_past_end FILE N  point BAT entry N 64 MiB past the end of the file

Layouts follow MS-VHDX as ../shared/reference/vhd-vhdx-format.md gives it;
the log entry is built here independently of lib/vhdx/log_write.c.
"""
import struct, sys, uuid
def crc32c(data):
    global _T
    try: _T
    except NameError:
        _T = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _T.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = _T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
def with_crc(buf, off=4):
    buf = bytearray(buf); buf[off:off+4] = b'\0\0\0\0'
    buf[off:off+4] = struct.pack('<I', crc32c(bytes(buf))); return bytes(buf)
def read(f, off, n): f.seek(off); return f.read(n)
def current_header(f):
    hs = []
    for off in (64*1024, 128*1024):
        h = read(f, off, 4096)
        ok = h[:4] == b'head' and with_crc(h) == h
        hs.append((struct.unpack_from('<Q', h, 8)[0] if ok else -1, off, h))
    return max(hs)
def bat_offset(f):
    r = read(f, 192*1024, 64*1024)
    n = struct.unpack_from('<I', r, 8)[0]
    for i in range(n):
        e = r[16+32*i:48+32*i]
        if e[:16] == bytes.fromhex('6677c22d23f600429d64115e9bfd4a08'):
            return struct.unpack_from('<Q', e, 16)[0]
    raise SystemExit('no BAT region')
def pending_log(path, entry_index):
    """Clear BAT entry entry_index in place and leave a pending log whose
    replay puts the original entry back."""
    f = open(path, 'r+b')
    seq, hoff, h = current_header(f)
    log_len, log_off = struct.unpack_from('<IQ', h, 68)
    bo = bat_offset(f)
    sec_off = bo + entry_index * 8 // 4096 * 4096
    orig = read(f, sec_off, 4096)
    mod = bytearray(orig); struct.pack_into('<Q', mod, entry_index * 8 % 4096, 0)
    f.seek(sec_off); f.write(bytes(mod))
    guid = uuid.uuid4().bytes
    f.seek(0, 2); size = f.tell()
    last = (size + (1 << 20) - 1) >> 20 << 20
    e = bytearray(8192); lseq = 1
    struct.pack_into('<4sIIIQI4x16sQQ', e, 0, b'loge', 0, 8192, 0, lseq, 1, guid, size >> 20 << 20, last)
    struct.pack_into('<4s4s8sQQ', e, 64, b'desc', orig[4092:], orig[:8], sec_off, lseq)
    struct.pack_into('<4sI', e, 4096, b'data', lseq >> 32); e[4096+8:4096+4092] = orig[8:4092]
    struct.pack_into('<I', e, 4096+4092, lseq & 0xffffffff)
    f.seek(log_off); f.write(with_crc(e))
    nh = bytearray(h); struct.pack_into('<Q', nh, 8, seq + 1); nh[48:64] = guid
    other = 128*1024 if hoff == 64*1024 else 64*1024
    f.seek(other); f.write(with_crc(nh))
    f.close()
def break_header(path, which):
    f = open(path, 'r+b'); f.seek(64*1024 if which == 1 else 128*1024); f.write(b'XXXX'); f.close()
def break_region(path, which):
    f = open(path, 'r+b'); f.seek(192*1024 + (which-1)*64*1024 + 100); f.write(b'\x55'); f.close()
def bat_past_end(path, entry_index):
    f = open(path, 'r+b'); bo = bat_offset(f); f.seek(0, 2); size = f.tell()
    f.seek(bo + entry_index*8); f.write(struct.pack('<Q', (size + (64 << 20)) | 6)); f.close()
if __name__ == '__main__':
    globals()[sys.argv[1]](sys.argv[2], int(sys.argv[3]))
