#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdboot.efi started by shim under Secure Boot asks shim (SHIM_LOCK) to
verify the boot program.

The real path, shim -> vhdboot.efi -> payload, with the real shim: Debian's
shim-unsigned (shim 16 with Debian's vendor certificate), signed here with
OVMF's snakeoil key so that the snakeoil firmware starts it. shim trusts
db as well as MOK, so the snakeoil key in db stands in for a MOK key: what
is exercised is the loader's use of the protocol (found, called with the
System V convention, its verdict obeyed) and shim's LoadImage hook, not
the MOK enrolment itself (which needs a person at MokManager, or a tool
to put MokList into the firmware's variable store, which Debian 12 does
not ship).

Each host disk holds shim as \\EFI\\BOOT\\BOOTX64.EFI, the signed loader as
its second stage \\EFI\\BOOT\\grubx64.efi, MokManager signed with the
snakeoil key as \\EFI\\BOOT\\mmx64.efi (so that a loader returning a status
shim reads as "untrusted" would end in MokManager waiting for a key, and
the boot would time out), and a vhdboot.cfg. One boot, three disks:
  0. the payload signed by a key the firmware does not know: one line,
     "refused by Secure Boot (shim: ...)", shim returns to the firmware;
  1. the unsigned payload: the same;
  2. the signed payload: it starts, the loader's line says it was verified
     by shim, the payload reads SecureBoot=1.
Skipped (77) without shim-unsigned, sbsigntool or the snakeoil firmware.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402
import test_secure_boot as S  # noqa: E402

SHIM = "/usr/lib/shim/shimx64.efi"
MOKMANAGER = "/usr/lib/shim/mmx64.efi"


def body(env, res):
    S.prerequisites()
    for f in (SHIM, MOKMANAGER):
        if not os.path.exists(f):
            raise T.Skip(f"{f} not found (Debian package shim-unsigned)")
    if not env.vhdx_supported():
        raise T.Skip("vhdtool cannot create VHDX images")

    key, other_key, other_cert = S.make_keys(env)
    signed = {}
    for name, src in (("shim", SHIM), ("mm", MOKMANAGER), ("loader", env.loader),
                      ("payload", env.payload)):
        signed[name] = S.sign(key, S.SNAKEOIL_CERT, src, env.path(name + ".signed"))
    payload_other = S.sign(other_key, other_cert, env.payload, env.path("payload.other"))

    data = T.pattern(2 * T.MIB + 5, 61)
    raw, fat = T.inner_disk(env, "sb.raw", "SHIM-INNER", data, payload=signed["payload"])
    fat.put(env.payload, "/EFI/BOOT/UNSIGNED.EFI")
    fat.put(payload_other, "/EFI/BOOT/OTHERKEY.EFI")
    vhdx = env.path("sb.vhdx")
    T.convert(env, raw, vhdx, "vhdx", "dynamic", block="2M")

    disks = []
    for name, program in (("other", "OTHERKEY.EFI"), ("unsigned", "UNSIGNED.EFI"),
                          ("signed", "BOOTX64.EFI")):
        host = T.HostDisk(env, name=f"{name}.img", esp_mib=40)
        host.esp.delete("/vhdboot.efi")
        host.esp.put(signed["shim"], "/EFI/BOOT/BOOTX64.EFI")
        host.esp.put(signed["loader"], "/EFI/BOOT/grubx64.efi")
        host.esp.put(signed["mm"], "/EFI/BOOT/mmx64.efi")
        host.esp.put(vhdx, "/VHD/sb.vhdx")
        host.config(f"image={S.IMAGE}\npath=\\EFI\\BOOT\\{program}\n")
        disks.append(host.path)

    b = S.boot_secure(env, disks, timeout=180)

    said = T.loader_lines_before_payload(b)
    for i, program in enumerate(("OTHERKEY.EFI", "UNSIGNED.EFI")):
        want = f"vhdboot: \\EFI\\BOOT\\{program} in {S.IMAGE}: {S.REFUSED} (shim: "
        problems = []
        # MokManager's title: the loader's status made shim think its
        # second stage untrusted (the boot would wait there on a machine).
        if any("Shim UEFI key management" in l for l in b.lines):
            problems.append("shim started MokManager after the loader returned")
        if len(said) <= i or not said[i].startswith(want):
            problems.append(f"loader line {i}: {said[i] if len(said) > i else None!r}, "
                            f"expected {want!r}...")
        res.check(f"shim: {program} refused through SHIM_LOCK, then the next boot option",
                  problems, b)

    problems = T.expect_payload(b, "SHIM-INNER", data)
    if len(said) != 3:
        problems.append(f"loader lines {said}")
    problems += S.secure_start_problems(said, b, "shim")
    res.check("shim: the signed payload boots from the dynamic VHDX, verified by shim",
              problems, b)


if __name__ == "__main__":
    sys.exit(T.main(body))
