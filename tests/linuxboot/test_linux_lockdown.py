#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The OS side of a vhdboot boot under kernel lockdown (docs/efi-loader.md,
"Secure Boot").

A kernel started under Secure Boot locks itself down (Debian's
CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT, "integrity" mode). The same state is
asked for here on the command line, lockdown=integrity, since the kit's
unsigned test kernel and initramfs are not started under Secure Boot.
Both ways vhdboot-attach has to bring up the root must then still work:

  nbd   dynamic VHD, mode rw: nbdkit + the plugin + nbd-client, partitions
        through device-mapper
  dm    fixed VHD, mode rw: a device-mapper linear table onto the host disk

Each boot must print the kernel's own "Kernel is locked down from command
line" (the oracle that lockdown was on), reach the root, write and read
back its files (checked on the host afterwards as test_linux_boot.py
does), shut down cleanly, and produce no "Lockdown:" refusal line.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import linuxkit as L  # noqa: E402

E = L.E
# loglevel=6: the kernel's lockdown notice is printed at KERN_NOTICE, which
# the kit's loglevel=4 would keep off the console (the last loglevel wins).
LOCKDOWN = "lockdown=integrity loglevel=6"


def body(env, results):
    s = L.Setup(env)
    for name, kind, server in (("nbd", "dynamic", "@nbdkit"), ("dm", "fixed", "none")):
        img = env.path("root.vhd")
        if os.path.exists(img):
            os.unlink(img)
        E.convert(env, s.inner, img, "vhd", kind)
        host = s.host(name, [img])

        def check(b, problems, want):
            if not b.has("Kernel is locked down from command line"):
                problems.append("the kernel did not report lockdown from the command line")
            # The kernel's own notice at start-up ("swapper/0: hibernation
            # is restricted") is lockdown working, not a refusal of ours.
            refused = [l for l in b.lines if "Lockdown:" in l and "swapper/0:" not in l]
            if refused:
                problems.append("lockdown refused: " + " | ".join(refused[:3]))
            back, = s.fetch(host, ["root.vhd"], "back")
            L.read_back(env, s.kit, back, want, problems, "vpc")

        s.boot(results, f"lockdown=integrity, {name} ({kind} VHD rw)", host, "root.vhd", "rw",
               server, LOCKDOWN, check=check)
        os.unlink(host.path)


if __name__ == "__main__":
    sys.exit(E.main(body))
