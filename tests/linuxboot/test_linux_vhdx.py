#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Boot the busybox Linux root from VHDX images through vhdboot.efi and
vhdboot-attach (linuxkit.py):

  vhdx-dynamic-rw    dynamic VHDX, rw: qemu-img check and compare after
  vhdx-chain-cow     base <- mid <- top differencing chain, cow: every
                     file byte-identical afterwards, the guest's writes gone
  vhdx-chain-rw      the same chain, rw: the writes land in top
  vhdx-4k-rw         a dynamic VHDX with 4096-byte logical sectors (the
                     inner disk's GPT and file systems too), rw: nbd-client
                     -b 4096
"""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def body(env, results):
    if not env.vhdx_supported():
        raise E.Skip("vhdtool cannot write VHDX")
    s = L.Setup(env)

    # dynamic VHDX, rw
    img = env.path("root.vhdx")
    E.convert(env, s.inner, img, "vhdx", "dynamic")
    host = s.host("vhdx-dynamic-rw", [img])

    def check_dynamic(b, problems, want):
        back, = s.fetch(host, ["root.vhdx"], "back")
        L.read_back(env, s.kit, back, want, problems, "vhdx")

    s.boot(results, "vhdx-dynamic-rw", host, "root.vhdx", "rw", "@nbdkit", check=check_dynamic)
    os.unlink(host.path)

    # base <- mid <- top, cow then rw
    chain = env.path("chain")
    os.makedirs(chain)
    base = os.path.join(chain, "base.vhdx")
    E.convert(env, s.inner, base, "vhdx", "dynamic")
    E.run([env.vhdtool, "create", "-f", "vhdx", "-p", "base.vhdx", "mid.vhdx"], cwd=chain)
    E.run([env.vhdtool, "create", "-f", "vhdx", "-p", "mid.vhdx", "top.vhdx"], cwd=chain)
    names = ["base.vhdx", "mid.vhdx", "top.vhdx"]
    before = {n: sha(os.path.join(chain, n)) for n in names}
    host = s.host("vhdx-chain", [os.path.join(chain, n) for n in names])

    def check_cow(b, problems, want):
        backs = s.fetch(host, names, "back-cow")
        for n, p in zip(names, backs):
            if sha(p) != before[n]:
                problems.append(f"{n} changed in cow mode")
        L.read_back(env, s.kit, backs[2], None, problems, written=False)

    s.boot(results, "vhdx-chain-cow", host, "top.vhdx", "cow", "@nbdkit", check=check_cow)

    def check_rw(b, problems, want):
        backs = s.fetch(host, names, "back-rw")
        for n, p in zip(names[:2], backs[:2]):
            if sha(p) != before[n]:
                problems.append(f"{n} (a parent) changed in rw mode")
        L.read_back(env, s.kit, backs[2], want, problems)

    s.boot(results, "vhdx-chain-rw", host, "top.vhdx", "rw", "@nbdkit", check=check_rw)
    os.unlink(host.path)

    # 4096-byte logical sectors
    s4 = L.Setup(env, sector=4096)
    img = env.path("root4k.vhdx")
    E.convert(env, s4.inner, img, "vhdx", "dynamic", sector=4096)
    host = s4.host("vhdx-4k-rw", [img])

    def check_4k(b, problems, want):
        if not b.has("block size 4096"):
            problems.append("nbd-client was not given -b 4096")
        back, = s4.fetch(host, ["root4k.vhdx"], "back4k")
        # qemu-img refuses VHDX with 4096-byte logical sectors ("Operation
        # not supported"): vhdtool and debugfs are the only readers here.
        L.read_back(env, s4.kit, back, want, problems, None, sector=4096)

    s4.boot(results, "vhdx-4k-rw", host, "root4k.vhdx", "rw", "@nbdkit", check=check_4k)
    os.unlink(host.path)
    s.report_times()
    s4.report_times()


if __name__ == "__main__":
    sys.exit(E.main(body))
