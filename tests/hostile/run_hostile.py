#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Run the hostile-image catalogue (gen_hostile.py) and judge every run.

    run_hostile.py MODE --manifest M --work DIR [options]

MODE cli: every vhdtool command on every case (--vhdtool).
MODE lib: hostile_lib on every case (--lib).
MODE nbd: nbdkit with the plugin on every case (--plugin; --nbdkit is the
          command line that starts nbdkit, default "nbdkit").
MODE filter: nbdkit file with nbdkit-vhd-filter on every case (--filter).

Each run is started here and reaped with wait4(), which gives its maximum
resident set size (the getrusage of /usr/bin/time -v), under a timeout
(a hang is a failure, the process group is killed). Checked per run:
exit status in the case's set, no crash (signal, status >= 128, sanitizer
report), a failing run prints exactly one line on stderr naming the file
and the field, RSS and stdout under their bounds, no secret marker in any
output (stdout, stderr, converted files, data read), read-write commands
grow a copy of the file by at most max_growth and, for a refused log
replay, leave its bytes as they were. Prints "ok - ..." / "FAIL - ..."
lines, a per-case summary of the failures, then "N passed, M failed".
"""
import argparse, hashlib, json, os, resource, shlex, shutil, signal, subprocess, sys, time

COMMANDS = ['info', 'info-json', 'check', 'check-json', 'read', 'map', 'convert-raw',
            'convert-vhd', 'convert-vhdx', 'write', 'compact', 'resize', 'snapshot',
            'measure', 'compare']
# Commands a case's expectations and skip list do not name take those of
# the command they follow: measure tells what convert -O vhdx would make
# (and refuses what it refuses), compare reads the whole disk as convert
# -O raw does.
LIKE = {'measure': 'convert-vhdx', 'compare': 'convert-raw'}
SANITIZER = (b'AddressSanitizer', b'LeakSanitizer', b'runtime error:',
             b'UndefinedBehaviorSanitizer')
MiB = 1 << 20

FSIZE_LIMIT = 512 * MiB   # no run may write a file (or stdout) larger than this

class Result:
    def __init__(self, rc, out, out_size, out_path, err, rss_kb, secs, timed_out):
        self.rc, self.out, self.out_size, self.out_path = rc, out, out_size, out_path
        self.err, self.rss_kb, self.secs, self.timed_out = err, rss_kb, secs, timed_out

AS_LIMIT = [4 << 30]      # address space per run; None under ASan (it reserves terabytes)

def limit_files():
    # Unbounded output (or a file grown by a TiB) ends the run with SIGXFSZ
    # instead of filling the machine's memory (the scratch is tmpfs), and
    # unbounded memory stops at 4 GiB, far above every bound, so a run that
    # hits it has failed its RSS bound already and the machine (shared with
    # other tests) keeps its memory.
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))
    if AS_LIMIT[0]:
        resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT[0], AS_LIMIT[0]))

def run(argv, timeout, stdin=b'', env=None, out_path=None):
    """Start argv in its own process group; reap it with wait4 for its
    rusage. stdout goes to out_path (default: a scratch file), of which
    the first 2 MiB are kept in .out; stderr is captured."""
    work = os.environ.get('HOSTILE_TMP', '/tmp')
    out_path = out_path or os.path.join(work, '.stdout')
    ofile = open(out_path, 'w+b')
    efile = open(os.path.join(work, '.stderr'), 'w+b')
    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=ofile, stderr=efile,
                         start_new_session=True, env=env, preexec_fn=limit_files)
    try:
        p.stdin.write(stdin)
        p.stdin.close()
    except BrokenPipeError:
        pass
    timed_out = False
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > timeout:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)
            pid, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.005)
    p.returncode = 0   # reaped here; keep Popen from waiting again
    try:
        os.killpg(p.pid, signal.SIGKILL)   # leftovers of a killed group
    except ProcessLookupError:
        pass
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    size = os.fstat(ofile.fileno()).st_size
    ofile.seek(0)
    efile.seek(0)
    out = ofile.read(2 * MiB)
    err = efile.read(MiB)
    ofile.close()
    efile.close()
    return Result(rc, out, size, out_path, err, ru.ru_maxrss, time.monotonic() - start,
                  timed_out)

def server_trouble(r):
    """What went wrong with an nbdkit run as a process, or None: it hung,
    wrote without bound, or crashed (a signal or a sanitizer's report)."""
    if r.timed_out:
        return 'hung'
    if r.rc == -signal.SIGXFSZ:
        return 'wrote more than %d MiB: unbounded' % (FSIZE_LIMIT >> 20)
    if any(s in r.err for s in SANITIZER) or r.rc < 0:
        return 'crashed: %r' % r.err[:300]
    return None


def file_has(path, needles, limit=1 << 31):
    """Does the file contain any needle? Reads in pieces (holes are cheap
    on tmpfs); files past limit are scanned over their first limit bytes."""
    if not os.path.exists(path) or not needles:
        return False
    keep = max(len(n) for n in needles)
    tail = b''
    with open(path, 'rb') as f:
        done = 0
        while done < limit:
            b = f.read(4 * MiB)
            if not b:
                break
            hay = tail + b
            if any(n in hay for n in needles):
                return True
            tail = hay[-keep:]
            done += len(b)
    return False

def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(4 * MiB), b''):
            h.update(b)
    return h.hexdigest()

class Runner:
    def __init__(self, a):
        self.a = a
        m = json.load(open(a.manifest))
        self.cases = m['cases']
        self.passed = 0
        self.failed = 0
        self.failures = {}     # case -> [command: reason]
        self.runs = 0
        self.messages = {}     # (case, command) -> stderr text
        self.sanitized = a.sanitized
        self.small = a.small
        self.rss_scale = (3, 300) if self.sanitized else (1, 0)

    def ok(self, msg):
        self.passed += 1
        if self.a.verbose:
            print('ok - ' + msg)

    def fail(self, case, cmd, msg):
        self.failed += 1
        self.failures.setdefault(case['name'], []).append('%s: %s' % (cmd, msg))
        print('FAIL - %s %s: %s' % (case['name'], cmd, msg))

    def timeout(self, case):
        t = 30 if case['heavy'] else 10
        return t * 4 if self.sanitized else t

    def rss_bound_kb(self, case):
        k, extra = self.rss_scale
        return (case['rss_mb'] * k + extra) * 1024

    # Checks shared by every mode.
    def judge(self, case, cmd, r, names, allowed, outputs=(), one_line=None,
              stdout_bounded=True, must_extra=()):
        """names: base names one of which the error line must carry.
        outputs: files to search for the secret. one_line: whether stderr
        must be exactly one line (default: when the run failed)."""
        label = '%s %s' % (case['name'], cmd)
        self.runs += 1
        good = True
        def bad(msg):
            nonlocal good
            good = False
            self.fail(case, cmd, msg)
        err = r.err.decode('utf-8', 'replace')
        first = err.strip().splitlines()[0][:200] if err.strip() else ''
        if r.timed_out:
            bad('hung (killed after %.0f s)' % r.secs)
            return
        if r.rc == -signal.SIGXFSZ:
            bad('wrote more than %d MiB (stdout or a file): unbounded' % (FSIZE_LIMIT >> 20))
            return
        if r.rc < 0 or r.rc >= 128 or any(s in r.err for s in SANITIZER):
            bad('crashed (status %d): %s' % (r.rc, first))
            return
        if allowed is not None and r.rc not in allowed:
            bad('exit %d, expected %s: %s' % (r.rc, '/'.join(map(str, allowed)), first))
        lines = [l for l in err.splitlines() if l.strip()]
        if one_line is None:
            one_line = r.rc == 1
        if one_line:
            if len(lines) != 1:
                bad('%d lines on stderr, expected one: %s' % (len(lines), err[:300]))
            else:
                low = lines[0].lower()
                if not any(n.lower() in low for n in names):
                    bad('message does not name %s: %s' % (names[0], lines[0]))
                # The field must be in the words, not in the case's
                # directory name (foreign-qcow2/, log-over-...).
                words = low.replace(os.path.dirname(case['file']).lower(), '<dir>')
                for w in list(case['must']) + list(must_extra):
                    if not any(alt.lower() in words for alt in w.split('|')):
                        bad('message lacks "%s": %s' % (w, lines[0]))
        elif len(lines) > 1:
            bad('%d lines on stderr: %s' % (len(lines), err[:300]))
        if r.rss_kb > self.rss_bound_kb(case):
            bad('RSS %d MiB > %d MiB' % (r.rss_kb // 1024, self.rss_bound_kb(case) // 1024))
        if stdout_bounded and r.out_size > case['out_max']:
            bad('stdout %d bytes > %d' % (r.out_size, case['out_max']))
        secrets = [bytes.fromhex(s) for s in case['secrets']]
        leaked = any(s in r.err for s in secrets) or \
            any(file_has(o, secrets) for o in [r.out_path, *outputs])
        if case['secret_expected']:
            if cmd in ('read', 'lib', 'nbd') and not leaked:
                bad('control: the parent\'s marker did not come out (case built wrong?)')
        elif leaked:
            bad('SECRET LEAKED (a host file outside the policy was read)')
        if good:
            self.ok('%s (exit %d, %d KiB RSS, %.2f s)' % (label, r.rc, r.rss_kb, r.secs))

    def allowed(self, case, cmd):
        e = case['expect']
        return e.get(cmd, e.get(LIKE.get(cmd), e.get('*')))

    def wanted(self, case):
        if case['only']:
            return case['only']
        return [c for c in COMMANDS
                if c not in case['skip'] and LIKE.get(c) not in case['skip']]

    # --- vhdtool -------------------------------------------------------------
    def cli(self):
        v = self.a.vhdtool
        for case in self.cases:
            if case['heavy'] and self.small:
                print('skip - %s (heavy, VHD_TEST_SMALL)' % case['name'])
                continue
            f = case['file']
            d, base = os.path.split(f)
            ext = os.path.splitext(base)[1].lower()
            opts = case['opts']
            if case['log_unchanged']:
                before = run([v, 'info', *opts, f], self.timeout(case))
            hung = False
            for cmd in self.wanted(case):
                if hung:
                    # One hang per case is enough to know; the rest would
                    # each wait for the timeout too.
                    self.runs += 1
                    self.fail(case, cmd, 'not run: an earlier command of this case hung')
                    continue
                out = os.path.join(self.a.work, 'out')
                for p in (out,):
                    if os.path.lexists(p):
                        os.unlink(p)
                names = [base] + case['names']
                outputs = []
                copy = None
                bounded = True
                if cmd in ('info', 'check'):
                    argv = [v, cmd, *opts, f]
                elif cmd in ('info-json', 'check-json'):
                    argv = [v, cmd.split('-')[0], '--json', *opts, f]
                elif cmd == 'map':
                    argv = [v, 'map', '--json', *opts, f]
                elif cmd == 'measure':
                    argv = [v, 'measure', '-O', 'vhdx', *opts, f]
                elif cmd == 'compare':
                    argv = [v, 'compare', *opts, f, f]
                elif cmd == 'read':
                    ln = ['--length', str(case['read_len'])] if case['read_len'] else []
                    argv = [v, 'read', *ln, *opts, f]
                    bounded = False
                elif cmd.startswith('convert'):
                    fmt = cmd.split('-')[1]
                    src = ['-f', 'raw'] if cmd.endswith('forced') else []
                    argv = [v, 'convert', *src, '-O', fmt, *opts, f, out]
                    out = os.path.join(self.a.work, 'conv-out.' + fmt)
                    argv[-1] = out
                    outputs = [out]
                elif cmd in ('write', 'compact', 'resize'):
                    copy = os.path.join(d, 'w-' + base)
                    subprocess.run(['cp', '--sparse=always', f, copy], check=True)
                    names = ['w-' + base] + case['names']
                    argv = {'write': [v, 'write', '--offset', '0', *opts, copy],
                            'compact': [v, 'compact', *opts, copy],
                            'resize': [v, 'resize', *opts, copy, '+1M']}[cmd]
                elif cmd == 'snapshot':
                    sext = ext if ext in ('.vhd', '.vhdx') else '.vhd'
                    snap = os.path.join(d, 's-snap' + sext)
                    argv = [v, 'snapshot', '-f', sext[1:], *opts, f, snap]
                    names.append('s-snap' + sext)
                    outputs = [snap]
                else:
                    raise SystemExit('unknown command ' + cmd)
                r = run(argv, self.timeout(case), stdin=b'HOSTILE',
                        out_path=out if cmd == 'read' else None)
                if cmd == 'compare' and r.rc == 2:
                    r.rc = 1   # qemu-img's status for an error: judged as every failure is
                one_line = None
                if cmd.startswith('check') and r.rc in (2, 3, 4):
                    one_line = False
                self.judge(case, cmd, r, names, self.allowed(case, cmd), outputs,
                           one_line, bounded)
                hung = r.timed_out
                self.messages[(case['name'], cmd)] = r.err.decode('utf-8', 'replace')
                if copy:
                    self.judge_copy(case, cmd, f, copy)
                    os.unlink(copy)
                for o in outputs:
                    if os.path.lexists(o):
                        os.unlink(o)
            if case['log_unchanged']:
                after = run([v, 'info', *opts, f], self.timeout(case))
                self.runs += 1
                if after.rc != before.rc:
                    self.fail(case, 'reopen', 'info exit %d before the writes, %d after'
                              % (before.rc, after.rc))
                else:
                    self.ok('%s reopen' % case['name'])
        self.twins()

    def judge_copy(self, case, cmd, orig, copy):
        grown = os.path.getsize(copy) - os.path.getsize(orig)
        if grown > case['max_growth'] + (MiB if cmd == 'resize' else 0):
            self.fail(case, cmd, 'the file grew by %d bytes' % grown)
        # Sizes first: a file grown by a TiB of holes is not worth hashing.
        if case['log_unchanged'] and (grown != 0 or sha256(copy) != sha256(orig)):
            self.fail(case, cmd, 'a refused log replay changed the file')

    def twins(self):
        """A case and its twin (same image naming an absent path) give the
        same messages: nothing tells whether a host path exists."""
        by = {c['name']: c for c in self.cases}
        for c in self.cases:
            t = c.get('twin')
            if not t or t not in by or c['name'] > t:
                continue
            a, b = c, by[t]
            old, new = a['twin_subst']
            def norm(case, text):
                text = text.replace(os.path.dirname(case['file']), '<DIR>')
                return text.replace(old, new)
            for cmd in self.wanted(a):
                ma = self.messages.get((a['name'], cmd))
                mb = self.messages.get((b['name'], cmd))
                if ma is None or mb is None:
                    continue
                self.runs += 1
                if norm(a, ma) != norm(b, mb):
                    self.fail(a, cmd, 'message differs from its twin %s (reveals whether a '
                              'path exists): %r vs %r' % (b['name'], ma[:160], mb[:160]))
                else:
                    self.ok('%s %s twin' % (a['name'], cmd))

    # --- the library ------------------------------------------------------------
    def lib(self):
        for case in self.cases:
            if (case['heavy'] and self.small) or case['only']:
                continue
            f = case['file']
            out = os.path.join(self.a.work, 'lib.out')
            argv = [self.a.lib]
            for p in case['lib']['policy']:
                argv += ['--policy', p]
            argv += ['--max-read', str(case['read_len'] or 64 * MiB), f, out]
            r = run(argv, self.timeout(case))
            text = r.out.decode('utf-8', 'replace')
            exp = case['lib']['expect']
            allowed = {'refuse': [1], 'open': [0], 'any': [0, 1, 2]}[exp]
            # The library prints nothing on stderr; its messages are in the
            # open/read/check lines, judged here.
            self.judge(case, 'lib', r, [os.path.basename(f)], allowed, [out],
                       one_line=False, stdout_bounded=True)
            for line in text.splitlines():
                if line.startswith(('open refused', 'read failed')):
                    msg = line.split(' ', 2)[2] if line.startswith('open') else \
                        line.split(' ', 3)[3]
                    if '|' in msg or not any(n in msg for n in
                                             [os.path.basename(f)] + case['names']):
                        self.fail(case, 'lib', 'message not one line naming the file: ' + msg)
                if line.startswith('check rc='):
                    fields = dict(kv.split('=') for kv in line.split()[1:7])
                    if int(fields['bytes']) > case['out_max']:
                        self.fail(case, 'lib', 'check findings %s bytes' % fields['bytes'])
            if os.path.exists(out):
                os.unlink(out)

    # --- the nbdkit plugin ---------------------------------------------------
    def nbd_client(self, case, name):
        """The output file (removed first) and the --run command reading the export."""
        out = os.path.join(self.a.work, name)
        if os.path.exists(out):
            os.unlink(out)
        if case['read_len']:
            return out, 'nbdinfo "$uri" > %s' % shlex.quote(out)
        return out, 'nbdcopy "$uri" %s' % shlex.quote(out)

    def nbd(self):
        nbdkit = shlex.split(self.a.nbdkit)
        for case in self.cases:
            if (case['heavy'] and self.small) or case['only']:
                continue
            f = case['file']
            out, client = self.nbd_client(case, 'nbd.out')
            argv = nbdkit + ['-U', '-', self.a.plugin, 'file=' + f, *case['nbd']['params'],
                             '--run', 'unset LD_PRELOAD; ' + client]
            # The client connects writable, so the plugin's read-write
            # reopen (log replay) runs too: a refused log leaves the bytes.
            before = (os.path.getsize(f), sha256(f)) if case['log_unchanged'] else None
            r = run(argv, self.timeout(case))
            exp = case['nbd']['expect']
            refused = r.rc != 0 and not os.path.exists(out)
            # nbdkit prefixes the plugin's error; other stderr lines (a
            # client's complaint about a failed read) are not ours.
            errs = [l for l in r.err.decode('utf-8', 'replace').splitlines() if 'error' in l]
            label = case['name']
            self.runs += 1
            probs = []
            # Sizes first: a file grown by a TiB of holes is not worth hashing.
            if before and (os.path.getsize(f) != before[0] or sha256(f) != before[1]):
                probs.append('a refused log replay changed the file')
            trouble = server_trouble(r)
            if trouble:
                probs.append(trouble)
            elif exp == 'refuse' and not refused:
                probs.append('served (expected a refusal at startup), exit %d' % r.rc)
            elif exp == 'serve' and r.rc != 0:
                probs.append('did not serve: %s' % (errs[:1] or r.err[:200]))
            if refused and exp == 'refuse' and not r.timed_out:
                mine = [l for l in errs if os.path.basename(f) in l]
                if len(errs) != 1 or not mine:
                    probs.append('startup error not one line naming the file: %r' % errs[:3])
            secrets = [bytes.fromhex(s) for s in case['secrets']]
            leaked = file_has(out, secrets) or any(s in r.err for s in secrets)
            if case['secret_expected']:
                if not leaked and exp == 'serve':
                    probs.append('control: the marker did not come out')
            elif leaked:
                probs.append('SECRET LEAKED through the export')
            for p in probs:
                self.fail(case, 'nbd', p)
            if not probs:
                self.ok('%s nbd (%s, exit %d)' % (label, 'refused' if refused else 'served',
                                                 r.rc))
            if os.path.exists(out):
                os.unlink(out)

    # --- the nbdkit filter over nbdkit file ------------------------------------
    # The filter follows no locator (parents come only from parent= URIs),
    # so the plugin's expectations do not carry over: every case must be
    # served or refused (the first error line naming the export), never
    # hang, crash, write without bound or show a byte of a file outside.
    # What the filter refuses is refused when nbdkit starts serving, so the
    # client's failure follows the filter's line.
    def filter(self):
        nbdkit = shlex.split(self.a.nbdkit)
        for case in self.cases:
            if (case['heavy'] and self.small) or case['only']:
                continue
            f = case['file']
            out, client = self.nbd_client(case, 'filter.out')
            argv = nbdkit + ['-U', '-', '--filter=' + self.a.filter, 'file', f,
                             *case['nbd']['params'], '--run', 'unset LD_PRELOAD; ' + client]
            r = run(argv, self.timeout(case))
            refused = r.rc != 0
            errs = [l for l in r.err.decode('utf-8', 'replace').splitlines() if 'error' in l]
            self.runs += 1
            probs = []
            trouble = server_trouble(r)
            if trouble:
                probs.append(trouble)
            elif refused and not (errs and ('nbdkit-vhd-filter' in errs[0] or
                                            os.path.basename(f) in errs[0])):
                # (the file plugin below refuses a FIFO itself, naming the file)
                probs.append('refused, but the first error names neither the export nor '
                             'the file: %r' % errs[:2])
            secrets = [bytes.fromhex(s) for s in case['secrets']]
            if file_has(out, secrets) or any(s in r.err for s in secrets):
                probs.append('SECRET LEAKED through the export')
            for p in probs:
                self.fail(case, 'filter', p)
            if not probs:
                self.ok('%s filter (%s, exit %d)' % (case['name'],
                                                    'refused' if refused else 'served', r.rc))
            if os.path.exists(out):
                os.unlink(out)

    def finish(self):
        if self.failures:
            print('\nFailures by case:')
            for name, fs in self.failures.items():
                print('  %-36s %s' % (name, '; '.join(x[:110] for x in fs[:4]) +
                                      (' (+%d more)' % (len(fs) - 4) if len(fs) > 4 else '')))
        print('%d cases, %d runs' % (len(self.cases), self.runs))
        print('%d passed, %d failed' % (self.passed, self.failed))
        return 1 if self.failed else 0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('mode', choices=['cli', 'lib', 'nbd', 'filter'])
    ap.add_argument('--manifest', required=True)
    ap.add_argument('--work', required=True)
    ap.add_argument('--vhdtool')
    ap.add_argument('--lib')
    ap.add_argument('--plugin')
    ap.add_argument('--filter')
    ap.add_argument('--nbdkit', default='nbdkit')
    ap.add_argument('--small', action='store_true')
    ap.add_argument('--sanitized', action='store_true')
    ap.add_argument('--only', help='run just the cases whose name contains this')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()
    os.environ['HOSTILE_TMP'] = a.work
    if a.sanitized:
        AS_LIMIT[0] = None
    r = Runner(a)
    if a.only:
        r.cases = [c for c in r.cases if a.only in c['name']]
    getattr(r, a.mode)()
    sys.exit(r.finish())

if __name__ == '__main__':
    main()
