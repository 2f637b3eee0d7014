#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhdboot.efi fails cleanly: one clear line, then back to its caller.

Boot option 0 is the host disk without any vhdboot.cfg: the loader must
say so in one line and return an error, and the firmware must then start
boot option 1, the payload on a disk of its own (marker FALLBACK).
That payload then starts the loader once per line of its \\CHAIN.TXT, with
the line as load options (as the UEFI shell would), and prints the status
each run returned and the TPL afterwards. Every broken setup must produce
exactly one "vhdboot: ..." line naming the problem, an error status, and
TPL 4 afterwards; nothing may hang.

The same boot then runs good settings through load options, with the inner
payload told to return instead of powering off: a path relative to the
loader's directory, a host partition named by GUID with a quoted path
containing blanks, and cow with a write that the payload reads back (from
the overlay). Each must start the inner payload at TPL 4 with the right
data, get its status back, remove its disk (the next run opens the same
image again) and leave the image file unchanged. One boot covers all.
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import efitest as T  # noqa: E402


def flip(path, offset, mask=0x01):
    """Flip bits of one byte; a negative offset counts from the end."""
    with open(path, "r+b") as f:
        f.seek(offset, 0 if offset >= 0 else 2)
        pos = f.tell()
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ mask]))


CASES = [
    # (name, load options, what the one line must say)
    ("image missing", "image=\\VHD\\missing.vhd", "\\VHD\\missing.vhd: not found"),
    ("directory missing", "image=\\NODIR\\x.vhd", "\\NODIR not found"),
    ("corrupt footer (fixed VHD)", "image=\\VHD\\badfoot.vhd", "footer checksum"),
    ("corrupt dynamic header", "image=\\VHD\\badhead.vhd", "checksum"),
    ("parent missing", "image=\\ORPHAN\\child.vhd", "parent image not found"),
    ("parent with the wrong id", "image=\\WRONG\\child.vhd", "does not match"),
    ("boot path missing inside the image",
     "image=\\GOOD\\dyn.vhd path=\\EFI\\BOOT\\NOPE.EFI",
     "\\EFI\\BOOT\\NOPE.EFI not found on the virtual disk"),
    ("unknown setting", "image=\\GOOD\\dyn.vhd mdoe=rw", "unknown setting \"mdoe\""),
    ("bad mode", "image=\\GOOD\\dyn.vhd mode=readwrite", "mode=readwrite"),
    ("no such partition", "image=\\GOOD\\dyn.vhd partition=7",
     "partition=7: no such partition"),
    ("rw on an image held in memory", "image=\\GOOD\\dyn.vhd backend=ram mode=rw",
     "backend=ram holds the image in memory"),
]


def body(env, res):
    data = T.pattern(3 * T.MIB, 30)
    raw, _ = T.inner_disk(env, "inner.raw", "FAIL-BASE", data)
    raw_child = env.path("child.raw")
    T.run(["cp", raw, raw_child])
    T.Fat(raw_child, 1048576).put_bytes(env, b"FAIL-CHILD\n", "/MARKER.TXT")

    fixed, dyn = env.path("fixed.vhd"), env.path("dyn.vhd")
    T.convert(env, raw, fixed, "vhd", "fixed")
    T.convert(env, raw, dyn, "vhd", "dynamic")
    bad_footer = env.path("badfoot.vhd")
    T.run(["cp", fixed, bad_footer])
    flip(bad_footer, -512 + 64)                # footer checksum
    bad_header = env.path("badhead.vhd")
    T.run(["cp", dyn, bad_header])
    hdr = struct.unpack(">Q", open(dyn, "rb").read(512)[16:24])[0]
    flip(bad_header, hdr + 36)                 # dynamic header checksum

    # A child whose parent is missing, and one whose parent is an image
    # with the right name but another identity.
    base = env.path("base.vhd")
    T.convert(env, raw, base, "vhd", "dynamic")
    child = env.path("child.vhd")
    T.differencing(env, base, child, raw, raw_child)
    impostor = env.path("impostor.vhd")
    T.convert(env, raw, impostor, "vhd", "dynamic")   # same content, new unique id

    host = T.HostDisk(env, esp_mib=120)
    host.esp.mkdir("/ORPHAN", "/WRONG", "/GOOD")
    host.esp.put(bad_footer, "/VHD/badfoot.vhd")
    host.esp.put(bad_header, "/VHD/badhead.vhd")
    host.esp.put(child, "/ORPHAN/child.vhd")
    host.esp.put(child, "/WRONG/child.vhd")
    host.esp.put(impostor, "/WRONG/base.vhd")
    host.esp.put(dyn, "/GOOD/dyn.vhd")
    host.esp.mkdir("/GOOD/with space")
    host.esp.put(dyn, "/GOOD/with space/dyn copy.vhd")
    host.no_config()
    good = [
        ("relative image path (loader in \\), program name ignored",
         "image=GOOD\\dyn.vhd args=return", False),
        ("partition by GPT GUID, quoted path with blanks",
         f'partition={host.esp_guid} "image=\\GOOD\\with space\\dyn copy.vhd" args=return',
         False),
        ("cow: the payload writes and reads its files back from the overlay",
         'image=\\GOOD\\dyn.vhd mode=cow "args=write return"', True),
    ]
    chain = [opts for _, opts, _ in CASES] + [opts for _, opts, _ in good]
    fb = T.fallback_disk(env, chain=chain)

    b = T.boot(env, [host.path, fb])
    # Boot option 0: no configuration at all.
    problems = []
    first = T.loader_lines_before_payload(b)
    if len(first) != 1 or "no configuration" not in first[0]:
        problems.append(f"expected one 'no configuration' line, got {first}")
    if b.value("PAYLOAD-MARKER") != "FALLBACK" or b.value("PAYLOAD-TPL") != "4":
        problems.append("the firmware did not go on to boot option 1 at TPL 4")
    if b.rc == "timeout":
        problems.append("timed out")
    res.check(f"no configuration, as boot option 0: {first[0] if first else ''}", problems, b)

    runs = T.chain_runs(b)
    for i, (name, opts, expect) in enumerate(CASES):
        if i >= len(runs):
            res.check(name, ["the payload never got to this case"], b)
            continue
        got_opts, said = runs[i][:2]
        problems = T.chain_failure(runs[i], expect)
        if opts not in got_opts:
            problems.append(f"ran with {got_opts!r}")
        res.check(f"{name}: {said[0] if said else '(nothing said)'}", problems, b)
    for k, (name, opts, writes) in enumerate(good):
        i = len(CASES) + k
        if i >= len(runs):
            res.check(name, ["the payload never got to this case"], b)
            continue
        said, inner = runs[i][1], runs[i][4]
        problems = T.chain_payload(runs[i], "FAIL-BASE", data)
        if len(said) != 2:
            problems.append(f"loader lines {said}")
        if writes and inner.value("PAYLOAD-WRITE") != "ok":
            problems.append(f"payload write/read back: {inner.value('PAYLOAD-WRITE')}")
        res.check(name, problems, b)
    problems = []
    if not b.has("PAYLOAD-DONE"):
        problems.append("the fallback payload did not finish")
    if host.esp.get(env, "/GOOD/dyn.vhd") != open(dyn, "rb").read():
        problems.append("the image used in cow mode changed")
    res.check("all runs done; the cow image is unchanged", problems, b)


if __name__ == "__main__":
    sys.exit(T.main(body))
