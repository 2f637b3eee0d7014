#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Drive a running qemu over QMP for the hot-attach test (plain JSON over
the socket, no extra packages):

  hotplug.py QMP_SOCKET NBD_SOCKET QEMU_IO_COMMAND...

blockdev-add an NBD node on NBD_SOCKET, device_add it as virtio-blk-pci on
the root port rp1, run each QEMU_IO_COMMAND through HMP `qemu-io` on the
node, device_del (waiting for DEVICE_DELETED), blockdev-del, quit.
qemu-io prints its results on qemu's standard output, which the caller
checks. Exits non-zero on the first QMP error.
"""
import json
import socket
import sys
import time

NODE = "vhd0"
DEVICE = "vd0"


class QMP:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(100):
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.1)
        else:
            raise SystemExit("cannot connect to QMP at %s" % path)
        self.sock.settimeout(30)
        self.file = self.sock.makefile("rw")
        self.events = []
        self.read()                       # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        line = self.file.readline()
        if not line:
            raise SystemExit("qemu closed the QMP connection")
        return json.loads(line)

    def cmd(self, name, **args):
        self.file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.file.flush()
        while True:
            msg = self.read()
            if "event" in msg:
                self.events.append(msg)
                continue
            if "error" in msg:
                raise SystemExit("QMP %s failed: %s" % (name, msg["error"]["desc"]))
            print("qmp: %s ok" % name)
            return msg["return"]

    def wait_event(self, name, device, timeout):
        end = time.time() + timeout
        while time.time() < end:
            for e in self.events:
                if e["event"] == name and e.get("data", {}).get("device") == device:
                    return True
            self.sock.settimeout(max(0.1, end - time.time()))
            try:
                self.events.append(self.read())
            except socket.timeout:
                break
        return False


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    q = QMP(argv[1])
    q.cmd("blockdev-add", driver="nbd", **{"node-name": NODE,
          "server": {"type": "unix", "path": argv[2]}})
    # share-rw: qemu-io writes to the node beside the device (there is no
    # guest OS to write through the device itself).
    q.cmd("device_add", driver="virtio-blk-pci", drive=NODE, id=DEVICE,
          bus="rp1", **{"share-rw": True})
    for c in argv[3:]:
        out = q.cmd("human-monitor-command",
                    **{"command-line": 'qemu-io %s "%s"' % (NODE, c)})
        if out.strip():
            raise SystemExit("qemu-io %s: %s" % (c, out.strip()))
    q.cmd("device_del", id=DEVICE)
    if not q.wait_event("DEVICE_DELETED", DEVICE, 20):
        raise SystemExit("device_del: no DEVICE_DELETED event within 20 s")
    print("qmp: DEVICE_DELETED %s" % DEVICE)
    q.cmd("blockdev-del", **{"node-name": NODE})
    q.cmd("quit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
