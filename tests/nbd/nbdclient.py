#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A small NBD client for the plugin tests, in plain Python (no libnbd
bindings needed), plus the test programs that need a client we control
request by request: concurrent random writes, fast-zero, and the crash
writer that records which writes a flush acknowledged.

Only what the tests use: Unix sockets, fixed newstyle handshake with
NBD_OPT_GO, simple replies (no structured replies: extents are checked
with nbdinfo instead), pipelined requests.

Usage: nbdclient.py COMMAND --socket PATH [options]   (see main())
"""
import argparse
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

OPT_GO = 7
REP_ACK = 1
REP_INFO = 3
INFO_EXPORT = 0

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_CACHE, CMD_WRITE_ZEROES = range(7)
CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1
CMD_FLAG_FAST_ZERO = 1 << 4

TF_READ_ONLY = 1 << 1
TF_SEND_FLUSH = 1 << 2
TF_SEND_FUA = 1 << 3
TF_SEND_TRIM = 1 << 5
TF_SEND_WRITE_ZEROES = 1 << 6
TF_CAN_MULTI_CONN = 1 << 8
TF_SEND_FAST_ZERO = 1 << 11

ENOTSUP = 95


class NBDError(Exception):
    def __init__(self, cmd, err):
        super().__init__("NBD command %d failed with error %d (%s)"
                         % (cmd, err, os.strerror(err)))
        self.err = err


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.next_handle = 1
        self.pending = {}
        self._handshake()

    def _recv(self, n):
        # Into one buffer of the final size: recv(n) allocates n bytes per
        # call, which for a 32 MiB read reply cost seconds per read.
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if not k:
                raise ConnectionError("server closed the connection")
            got += k
        return bytes(buf)

    def _handshake(self):
        magic, opt, hflags = struct.unpack(">QQH", self._recv(18))
        if magic != NBDMAGIC or opt != IHAVEOPT:
            raise ConnectionError("not a newstyle NBD server")
        # FIXED_NEWSTYLE | NO_ZEROES, when the server offers them.
        self.sock.sendall(struct.pack(">I", hflags & 3))
        name = b""
        data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
        self.sock.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data)
        self.size = None
        while True:
            magic, opt, rtype, rlen = struct.unpack(">QIII", self._recv(20))
            payload = self._recv(rlen)
            if magic != OPT_REPLY_MAGIC:
                raise ConnectionError("bad option reply magic")
            if rtype == REP_INFO and len(payload) >= 12:
                itype, = struct.unpack(">H", payload[:2])
                if itype == INFO_EXPORT:
                    self.size, self.flags = struct.unpack(">QH", payload[2:12])
            elif rtype == REP_ACK:
                break
            elif rtype & (1 << 31):
                raise ConnectionError("NBD_OPT_GO refused: %r" % payload)
        if self.size is None:
            raise ConnectionError("server sent no export size")

    def can(self, flag):
        return bool(self.flags & flag)

    # Pipelined interface: submit returns a handle, wait collects one reply.
    def submit(self, cmd, offset, length, flags=0, data=b""):
        handle = self.next_handle
        self.next_handle += 1
        hdr = struct.pack(">IHHQQI", REQUEST_MAGIC, flags, cmd, handle, offset, length)
        self.sock.sendall(hdr + data)
        self.pending[handle] = (cmd, length)
        return handle

    def wait(self):
        """Collect one reply: (handle, error, data)."""
        magic, err, handle = struct.unpack(">IIQ", self._recv(16))
        if magic != SIMPLE_REPLY_MAGIC:
            raise ConnectionError("bad reply magic %#x" % magic)
        cmd, length = self.pending.pop(handle)
        data = b""
        if cmd == CMD_READ and err == 0:
            data = self._recv(length)
        return handle, err, data

    def _sync(self, cmd, offset, length, flags=0, data=b""):
        self.submit(cmd, offset, length, flags, data)
        _, err, out = self.wait()
        if err:
            raise NBDError(cmd, err)
        return out

    def pread(self, length, offset):
        return self._sync(CMD_READ, offset, length)

    def pwrite(self, data, offset, flags=0):
        self._sync(CMD_WRITE, offset, len(data), flags, data)

    def flush(self):
        self._sync(CMD_FLUSH, 0, 0)

    def read_all(self):
        """The whole disk, in requests servers accept (32 MiB at most)."""
        out = bytearray()
        step = 32 << 20
        for off in range(0, self.size, step):
            out += self.pread(min(step, self.size - off), off)
        return out

    def trim(self, length, offset, flags=0):
        self._sync(CMD_TRIM, offset, length, flags)

    def zero(self, length, offset, flags=0):
        self._sync(CMD_WRITE_ZEROES, offset, length, flags)

    def close(self):
        try:
            self.sock.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_DISC, 0, 0, 0))
        except OSError:
            pass
        self.sock.close()


def pattern(rng, n):
    return rng.randbytes(n)


def overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def random_io_worker(path, model, loose, seed, me, parties, stripe, nops, depth,
                     use_zero, errors):
    """Random writes (and zero/trim when use_zero) of random sizes at random
    offsets inside this worker's stripes (stripe i belongs to worker
    i % parties), several in flight at once; model gets the same changes.
    A trimmed byte may read as zero or as before until it is written again
    (NBD leaves it unspecified; the plugin never writes on a trim): loose
    marks those bytes."""
    try:
        rng = random.Random(seed)
        c = Client(path)
        nstripes = c.size // stripe
        mine = [i for i in range(nstripes) if i % parties == me]
        inflight = []  # (handle, (start, end))
        ops = 0
        while ops < nops or inflight:
            if ops < nops and len(inflight) < depth:
                s = rng.choice(mine) * stripe
                start = s + rng.randrange(stripe)
                length = rng.randint(1, s + stripe - start)
                rngw = (start, start + length)
                # In-flight requests may complete in any order: never let
                # two of them touch the same bytes.
                if not any(overlaps(rngw, r) for _, r in inflight):
                    kind = rng.random()
                    if use_zero and kind < 0.1:
                        h = c.submit(CMD_WRITE_ZEROES, start, length)
                        model[start:start + length] = bytes(length)
                        loose[start:start + length] = bytes(length)
                    elif use_zero and kind < 0.2:
                        h = c.submit(CMD_TRIM, start, length)
                        loose[start:start + length] = b"\1" * length
                    else:
                        data = pattern(rng, length)
                        fua = CMD_FLAG_FUA if rng.random() < 0.05 else 0
                        h = c.submit(CMD_WRITE, start, length, fua, data)
                        model[start:start + length] = data
                        loose[start:start + length] = bytes(length)
                    inflight.append((h, rngw))
                    ops += 1
                    continue
            h, err, _ = c.wait()
            if err:
                errors.append("worker %d: request failed: %s" % (me, os.strerror(err)))
            inflight = [x for x in inflight if x[0] != h]
            if ops % 97 == 0 and not inflight:
                c.flush()
        c.flush()
        c.close()
    except Exception as e:  # reported by the main thread
        errors.append("worker %d: %r" % (me, e))


def cmd_random_io(a):
    """Two (or --clients) connections write at once; then compare a fresh
    connection's view and the model, and save the model for later checks."""
    c = Client(a.socket)
    size = c.size
    if not c.can(TF_CAN_MULTI_CONN):
        print("server does not advertise multi-conn")
        return 1
    model = c.read_all() if size <= 256 << 20 else None
    c.close()
    if model is None:
        print("disk too large for the in-memory model")
        return 1
    errors = []
    loose = bytearray(size)
    threads = [threading.Thread(target=random_io_worker,
                                args=(a.socket, model, loose, a.seed * 1000 + i, i, a.clients,
                                      a.stripe, a.ops, a.depth, a.zero, errors))
               for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in errors:
        print(e)
    c = Client(a.socket)
    got = bytes(c.read_all())
    c.close()
    # Trimmed bytes that read as zero are zeros from now on.
    for base in range(0, size, 4096):
        if got[base:base + 4096] == model[base:base + 4096]:
            continue
        for i in range(base, min(base + 4096, size)):
            if loose[i] and got[i] == 0:
                model[i] = 0
    with open(a.model, "wb") as f:
        f.write(model)
    if got != bytes(model):
        first = next(i for i in range(size) if got[i] != model[i])
        print("read-back differs from the model at byte %d" % first)
        return 1
    return 1 if errors else 0


def cmd_fast_zero(a):
    """Fast zero: allowed to fail with ENOTSUP, never to do a slow job
    half-way; when it succeeds, the range reads as zeros."""
    c = Client(a.socket)
    if not c.can(TF_SEND_FAST_ZERO):
        print("fast zero not advertised")
        return 1
    try:
        c.zero(a.length, a.offset,
               CMD_FLAG_FAST_ZERO | (CMD_FLAG_NO_HOLE if a.no_hole else 0))
        result = "ok"
    except NBDError as e:
        if e.err != ENOTSUP:
            print("fast zero failed with %s, not ENOTSUP" % os.strerror(e.err))
            return 1
        result = "enotsup"
    c.flush()
    print(result)
    c.close()
    return 0


def cmd_op(a):
    """One request: write (pattern byte), zero, trim, flush, read-check."""
    c = Client(a.socket)
    flags = CMD_FLAG_FUA if a.fua else 0
    if a.op == "write":
        c.pwrite(bytes([a.byte]) * a.length, a.offset, flags)
    elif a.op == "zero":
        c.zero(a.length, a.offset, flags | (0 if a.may_trim else CMD_FLAG_NO_HOLE))
    elif a.op == "trim":
        c.trim(a.length, a.offset, flags)
    elif a.op == "flush":
        c.flush()
    elif a.op == "expect":
        got = c.pread(a.length, a.offset)
        if got != bytes([a.byte]) * a.length:
            print("bytes at %d differ from 0x%02x" % (a.offset, a.byte))
            return 1
    elif a.op == "flags":
        names = {"read_only": TF_READ_ONLY, "flush": TF_SEND_FLUSH, "fua": TF_SEND_FUA,
                 "trim": TF_SEND_TRIM, "zero": TF_SEND_WRITE_ZEROES,
                 "multi_conn": TF_CAN_MULTI_CONN, "fast_zero": TF_SEND_FAST_ZERO}
        print(" ".join(n for n, f in names.items() if c.can(f)))
    if a.op != "flush" and a.op not in ("expect", "flags"):
        c.flush()
    c.close()
    return 0


def cmd_multi_conn(a):
    """What multi-conn promises: a write acknowledged on connection A and a
    flush on connection B are followed by reads on connection C that see
    it; also a cache request on C succeeds."""
    conns = [Client(a.socket) for _ in range(3)]
    if not all(c.can(TF_CAN_MULTI_CONN) for c in conns):
        print("multi-conn not advertised")
        return 1
    rng = random.Random(a.seed)
    size = conns[0].size
    for round_ in range(a.rounds):
        off = rng.randrange(0, size - 70000)
        data = rng.randbytes(rng.randint(1, 70000))
        conns[0].pwrite(data, off)
        conns[1].flush()
        conns[2]._sync(CMD_CACHE, off, len(data))
        if conns[2].pread(len(data), off) != data:
            print("round %d: connection C does not see A's write at %d after B's flush"
                  % (round_, off))
            return 1
        conns = conns[1:] + conns[:1]
    for c in conns:
        c.close()
    return 0


def crash_slot_data(i, length):
    rng = random.Random(i)
    head = b"write %08d " % i
    return (head + rng.randbytes(length))[:length]


def crash_plan(size, count, seed):
    """Write i goes to its own slot: (offset, length), spread over the disk
    so that many blocks get allocated, with unaligned sizes."""
    rng = random.Random(seed)
    slot = 64 * 1024
    slots = rng.sample(range(size // slot), count)
    return [(s * slot + rng.randrange(0, 8192), rng.randint(1000, slot - 8192))
            for s in slots]


def cmd_crash_writer(a):
    """Write numbered slots, flushing every --every writes; after each flush
    append "N" to --log (fsync'd): writes 0..N-1 are acknowledged durable.
    Runs until killed (or the plan is exhausted). With --kill-pid and
    --kill-after N the writer itself kills the server (SIGKILL) right after
    sending its Nth request (a write or a flush), which is then in flight:
    the crash lands at a chosen point however fast the server answers (a
    killer polling the log from outside lost the race to the end of the
    plan once flushes stopped costing a disk sync)."""
    c = Client(a.socket)
    plan = crash_plan(c.size, a.count, a.seed)
    log = os.open(a.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sent = 0

    def request(cmd, offset, length, flags=0, data=b""):
        nonlocal sent
        c.submit(cmd, offset, length, flags, data)
        sent += 1
        if a.kill_pid and sent == a.kill_after:
            os.kill(a.kill_pid, signal.SIGKILL)
            sys.exit(0)
        _, err, _ = c.wait()
        if err:
            raise NBDError(cmd, err)

    for i, (off, length) in enumerate(plan):
        if a.fua:
            # Every write durable on its own: acknowledged = logged.
            request(CMD_WRITE, off, length, CMD_FLAG_FUA, crash_slot_data(i, length))
            os.write(log, b"%d\n" % (i + 1))
            os.fsync(log)
            continue
        request(CMD_WRITE, off, length, 0, crash_slot_data(i, length))
        if (i + 1) % a.every == 0:
            request(CMD_FLUSH, 0, 0)
            os.write(log, b"%d\n" % (i + 1))
            os.fsync(log)
    request(CMD_FLUSH, 0, 0)
    os.write(log, b"%d\n" % len(plan))
    os.fsync(log)
    return 0


def cmd_crash_verify(a):
    """Check a raw copy of the disk after the crash: every acknowledged write
    is there. Prints how many were checked and how many of the
    unacknowledged ones survived too (for the record)."""
    with open(a.log, "rb") as f:
        lines = f.read().split()
    acked = int(lines[-1]) if lines else 0
    size = os.path.getsize(a.disk)
    plan = crash_plan(size, a.count, a.seed)
    bad = 0
    later = 0
    with open(a.disk, "rb") as f:
        for i, (off, length) in enumerate(plan):
            f.seek(off)
            got = f.read(length)
            good = got == crash_slot_data(i, length)
            if i < acked and not good:
                bad += 1
                if bad <= 5:
                    print("acknowledged write %d at %d (+%d) is missing" % (i, off, length))
            elif i >= acked and good:
                later += 1
    print("acknowledged=%d missing=%d unacknowledged-present=%d" % (acked, bad, later))
    return 1 if bad or acked == 0 else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("random-io")
    r.add_argument("--socket", required=True)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--clients", type=int, default=2)
    r.add_argument("--stripe", type=int, default=65536)
    r.add_argument("--ops", type=int, default=400)
    r.add_argument("--depth", type=int, default=8)
    r.add_argument("--zero", action="store_true", help="mix in zero and trim")
    r.add_argument("--model", required=True, help="write the expected disk here")

    f = sub.add_parser("fast-zero")
    f.add_argument("--socket", required=True)
    f.add_argument("--offset", type=int, required=True)
    f.add_argument("--length", type=int, required=True)
    f.add_argument("--no-hole", action="store_true", help="may not trim")

    o = sub.add_parser("op")
    o.add_argument("--socket", required=True)
    o.add_argument("op", choices=["write", "zero", "trim", "flush", "expect", "flags"])
    o.add_argument("--offset", type=int, default=0)
    o.add_argument("--length", type=int, default=0)
    o.add_argument("--byte", type=lambda s: int(s, 0), default=0)
    o.add_argument("--fua", action="store_true")
    o.add_argument("--may-trim", action="store_true")

    w = sub.add_parser("crash-writer")
    w.add_argument("--socket", required=True)
    w.add_argument("--log", required=True)
    w.add_argument("--count", type=int, default=4000)
    w.add_argument("--every", type=int, default=10)
    w.add_argument("--seed", type=int, default=7)
    w.add_argument("--fua", action="store_true", help="FUA on every write, no flushes")
    w.add_argument("--kill-pid", type=int, default=0, help="server to kill with SIGKILL")
    w.add_argument("--kill-after", type=int, default=0, help="... after sending this many requests")

    v = sub.add_parser("crash-verify")
    v.add_argument("--disk", required=True)
    v.add_argument("--log", required=True)
    v.add_argument("--count", type=int, default=4000)
    v.add_argument("--seed", type=int, default=7)

    m = sub.add_parser("multi-conn")
    m.add_argument("--socket", required=True)
    m.add_argument("--rounds", type=int, default=50)
    m.add_argument("--seed", type=int, default=3)

    a = p.parse_args()
    fn = {"random-io": cmd_random_io, "fast-zero": cmd_fast_zero, "op": cmd_op,
          "crash-writer": cmd_crash_writer, "crash-verify": cmd_crash_verify,
          "multi-conn": cmd_multi_conn}[a.cmd]
    try:
        return fn(a)
    except (NBDError, ConnectionError, OSError) as e:
        print("nbdclient %s: %s" % (a.cmd, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
