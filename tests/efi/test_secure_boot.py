#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdboot.efi under Secure Boot keeps the chain of trust.

Debian's OVMF ships a firmware with Secure Boot enforced and a test key
pair ("snakeoil") enrolled in PK, KEK and db. The loader (signed by
scripts/sign-vhdboot.sh) and a test payload are signed with that key; a
second payload is signed with a key made here, which the firmware does
not know; a third is not signed. All three sit in one dynamic VHDX.

Before any boot: sbverify accepts the signed loader with the snakeoil
certificate and not with the other one, and the loader has a .sbat
section holding the project's SBAT lines.

One Secure Boot boot, three disks in boot order:
  0. an ESP with the *unsigned* loader: the firmware itself must refuse
     it (it never prints a line) and go on;
  1. an ESP with the signed loader, configured for the unsigned payload:
     one "vhdboot: ... refused by Secure Boot (...)" line, and the
     firmware goes on;
  2. the signed payload (marker FALLBACK), which reports SecureBoot=1 and
     then runs the signed loader from disk 1 once per line of its
     CHAIN.TXT: the payload signed with the other key and the unsigned
     one are refused (one line each, error status, TPL 4), the signed one
     boots from the VHDX, the loader's line says Secure Boot, and the
     payload reads SecureBoot=1 from the firmware.
Then one boot with the plain firmware (Secure Boot off): the unsigned
payload boots from the same VHDX as before, and nothing mentions Secure
Boot.

shim is not booted here: see tests/unit/test_efi_sb_policy.c for why and
for the SHIM_LOCK path against a stand-in protocol.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(T.HERE))
SB_CODE = "/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd"
SB_VARS = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"
SNAKEOIL_KEY = "/usr/share/ovmf/PkKek-1-snakeoil.key"
SNAKEOIL_CERT = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
IMAGE = "\\VHD\\sb.vhdx"
REFUSED = "refused by Secure Boot"


def prerequisites():
    for f in (SB_CODE, SB_VARS, SNAKEOIL_KEY, SNAKEOIL_CERT):
        if not os.path.exists(f):
            raise T.Skip(f"{f} not found (Debian package ovmf with the snakeoil keys)")
    for prog in ("sbsign", "sbverify", "openssl", "objdump", "objcopy"):
        if not shutil.which(prog):
            raise T.Skip(f"{prog} not found (install sbsigntool, openssl, binutils)")


def sign(key, cert, src, out):
    T.run(["sbsign", "--key", key, "--cert", cert, "--output", out, src])
    return out


def sbverify(signed, cert):
    p = subprocess.run(["sbverify", "--cert", cert, signed], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    return p.returncode == 0


def make_keys(env):
    """The snakeoil key without its passphrase (sbsign cannot ask for one
    here), and a key pair the firmware never saw: (key, other_key,
    other_cert)."""
    key = env.path("snakeoil.key")
    T.run(["openssl", "rsa", "-passin", "pass:snakeoil", "-in", SNAKEOIL_KEY, "-out", key])
    other_key, other_cert = env.path("other.key"), env.path("other.pem")
    T.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
           "-subj", "/CN=vhdboot test key the firmware does not know",
           "-keyout", other_key, "-out", other_cert])
    return key, other_key, other_cert


def boot_secure(env, disks, **kw):
    """T.boot with the Secure Boot firmware and its enrolled snakeoil keys."""
    code, vars_ = env.code, env.vars
    env.code, env.vars = SB_CODE, SB_VARS
    try:
        return T.boot(env, disks, snapshot=True, **kw)
    finally:
        env.code, env.vars = code, vars_


def secure_start_problems(said, payload_boot, verifier):
    """The loader's start line names Secure Boot and the verifier, and the
    payload read SecureBoot=1 from the firmware itself."""
    problems = []
    start = [l for l in said if "starting" in l]
    if not start or f"under Secure Boot (verified by {verifier}" not in start[0]:
        problems.append(f"the start line does not say Secure Boot ({verifier}): {start}")
    if payload_boot.value("PAYLOAD-SECUREBOOT") != "1":
        problems.append(f"the payload reads SecureBoot={payload_boot.value('PAYLOAD-SECUREBOOT')!r}")
    return problems


def check_artifacts(env, res, signed_loader, other_cert):
    """sbverify and the .sbat section, the offline half of the story."""
    problems = []
    if not sbverify(signed_loader, SNAKEOIL_CERT):
        problems.append("sbverify does not accept the signed loader with the snakeoil cert")
    if sbverify(signed_loader, other_cert):
        problems.append("sbverify accepts the loader with a certificate that did not sign it")
    if sbverify(env.loader, SNAKEOIL_CERT):
        problems.append("sbverify accepts the unsigned loader")
    res.check("sbverify --cert on the signed loader", problems)

    problems = []
    headers = T.run(["objdump", "-h", signed_loader])
    if " .sbat " not in headers:
        problems.append("objdump -h shows no .sbat section")
    else:
        out = env.path("sbat.bin")
        T.run(["objcopy", "-O", "binary", "-j", ".sbat", signed_loader, out])
        lines = open(out, "rb").read().rstrip(b"\0").decode().splitlines()
        if not lines or not lines[0].startswith("sbat,1,SBAT Version,sbat,1,"):
            problems.append(f"first SBAT line {lines[:1]}")
        ours = [l for l in lines if l.startswith("libvhd,")]
        if len(ours) != 1 or ours[0].split(",")[3] != "vhdboot" or \
                not ours[0].split(",")[1].isdigit():
            problems.append(f"no libvhd generation line in {lines}")
    res.check("objdump -h shows .sbat with the project's generation", problems)


def body(env, res):
    prerequisites()
    if not env.vhdx_supported():
        raise T.Skip("vhdtool cannot create VHDX images")

    key, other_key, other_cert = make_keys(env)

    # The loader through the project's script (encrypted key + passphrase).
    signed_loader = env.path("vhdboot.efi.signed")
    p = subprocess.run(["sh", os.path.join(ROOT, "scripts", "sign-vhdboot.sh"), SNAKEOIL_KEY,
                        SNAKEOIL_CERT, env.loader, signed_loader],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=dict(os.environ, VHDBOOT_KEY_PASS="snakeoil"))
    if p.returncode != 0:
        raise RuntimeError(f"sign-vhdboot.sh failed: {p.stdout.decode(errors='replace')}")
    check_artifacts(env, res, signed_loader, other_cert)

    payload_signed = sign(key, SNAKEOIL_CERT, env.payload, env.path("payload.signed"))
    payload_other = sign(other_key, other_cert, env.payload, env.path("payload.other"))

    # One dynamic VHDX with the three payloads.
    data = T.pattern(3 * T.MIB + 77, 60)
    raw, fat = T.inner_disk(env, "sb.raw", "SB-INNER", data, payload=payload_signed)
    fat.put(env.payload, "/EFI/BOOT/UNSIGNED.EFI")
    fat.put(payload_other, "/EFI/BOOT/OTHERKEY.EFI")
    vhdx = env.path("sb.vhdx")
    T.convert(env, raw, vhdx, "vhdx", "dynamic", block="2M")

    # Disk 0: the unsigned loader alone (no \vhdboot.efi for the chain).
    unsigned_host = T.HostDisk(env, name="unsigned.img", esp_mib=40)
    unsigned_host.esp.delete("/vhdboot.efi")
    # Disk 1: the signed loader, the image, set to start the unsigned payload.
    unsigned_loader, env.loader = env.loader, signed_loader
    try:
        host = T.HostDisk(env, name="host.img", esp_mib=64)
    finally:
        env.loader = unsigned_loader
    host.esp.put(vhdx, "/VHD/sb.vhdx")
    host.config(f"image={IMAGE}\npath=\\EFI\\BOOT\\UNSIGNED.EFI\n")
    # Disk 2: the signed payload with the chain of loader runs.
    chain = [f"image={IMAGE} path=\\EFI\\BOOT\\OTHERKEY.EFI",
             f"image={IMAGE} path=\\EFI\\BOOT\\UNSIGNED.EFI",
             f"image={IMAGE} args=return"]
    fb, _ = T.inner_disk(env, "fallback.img", "FALLBACK", b"fallback\n", size=8 * T.MIB,
                         payload=payload_signed,
                         extra={"/CHAIN.TXT": "".join(l + "\n" for l in chain).encode()})

    b = boot_secure(env, [unsigned_host.path, host.path, fb])
    check_secure_boot(b, res, data)

    # Secure Boot off: the unsigned payload boots from the same image.
    b = T.boot(env, [host.path, fb], snapshot=True)
    problems = T.expect_payload(b, "SB-INNER", data)
    if b.value("PAYLOAD-SECUREBOOT") not in ("0", "absent"):
        problems.append(f"SecureBoot is {b.value('PAYLOAD-SECUREBOOT')!r} in the plain firmware")
    said = T.loader_lines_before_payload(b)
    if any("Secure Boot" in l for l in said):
        problems.append(f"the loader mentions Secure Boot with it off: {said}")
    res.check("Secure Boot off: the unsigned payload boots as before", problems, b)


def check_secure_boot(b, res, data):
    # The firmware refuses the unsigned loader: it never runs, so the first
    # loader line is disk 1's.
    said = T.loader_lines_before_payload(b)
    problems = []
    if b.rc == "timeout":
        problems.append("timed out")
    if any("no configuration" in l for l in said):
        problems.append(f"the unsigned loader ran: {said}")
    # OVMF's boot manager names the refusal (the firmware's words).
    if not any("failed to load Boot0001" in l and "Access Denied" in l for l in b.lines):
        problems.append("no \"failed to load Boot0001 ...: Access Denied\" from the firmware")
    res.check("Secure Boot: the firmware refuses the unsigned loader (sanity)", problems, b)

    want = f"vhdboot: \\EFI\\BOOT\\UNSIGNED.EFI in {IMAGE}: {REFUSED} ("
    problems = []
    if len(said) != 1 or not said[0].startswith(want):
        problems.append(f"loader lines {said}, expected one starting {want!r}")
    if b.value("PAYLOAD-MARKER") != "FALLBACK":
        problems.append(f"the firmware went on to {b.value('PAYLOAD-MARKER')!r}, not FALLBACK")
    if b.value("PAYLOAD-SECUREBOOT") != "1":
        problems.append(f"the fallback payload reads SecureBoot={b.value('PAYLOAD-SECUREBOOT')!r}")
    res.check("Secure Boot: unsigned payload as a boot option refused in one line, "
              "the firmware goes on", problems, b)

    runs = T.chain_runs(b)
    if len(runs) != 3:
        res.check("Secure Boot: loader runs from the payload",
                  [f"{len(runs)} of 3 chain runs finished"], b)
        return
    res.check("Secure Boot: payload signed by a key not in db refused",
              T.chain_failure(runs[0], f"\\EFI\\BOOT\\OTHERKEY.EFI in {IMAGE}: {REFUSED}"), b)
    res.check("Secure Boot: unsigned payload refused (run from the payload)",
              T.chain_failure(runs[1], f"\\EFI\\BOOT\\UNSIGNED.EFI in {IMAGE}: {REFUSED}"), b)
    problems = T.chain_payload(runs[2], "SB-INNER", data)
    _, said, _, _, inner = runs[2]
    problems += secure_start_problems(said, inner, "the firmware")
    res.check("Secure Boot: the signed payload boots from the dynamic VHDX and says so",
              problems, b)


if __name__ == "__main__":
    sys.exit(T.main(body))
