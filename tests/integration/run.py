#!/usr/bin/env python3
"""Integration tests for ftp-alg in a throwaway network-namespace lab (lab.py).

Each t_<behaviour>.py holds the checks of one behaviour. This runs them in
ORDER under every gateway setup each declares (no ALG, the kernel's helper,
ftp-alg, or a daemon the checks start themselves), prints PASS/FAIL per check
naming the behaviour, and ends with "N passed, M failed". Every namespace is
deleted at the end, also on failure.

A new behaviour is a new t_NAME.py with GATEWAYS and checks(t) (see lab.py),
and its NAME in ORDER.
"""
import argparse
import importlib
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

from lab import Lab, T, prepare_files, valgrind_clean

ORDER = ["no_alg", "passive", "active", "hairpin", "ipv6", "rewrite", "loss", "pinhole", "datapath", "bounce",
         "hostile", "hold_flood", "slipstream", "privilege", "shutdown", "restart", "status", "publish",
         "kernel_helper", "workers", "masq_collision", "long_session", "churn", "crossings", "offsets", "config", "sigpipe", "reload_privs", "ruleset_save", "notify",
         "prometheus", "ipv6_onlink", "flowtable"]
SETUPS = ["none", "kernel", "ftp-alg", "own"]
LABELS = {"none": "no ALG", "kernel": "kernel helper", "ftp-alg": "ftp-alg", "own": ""}

# The phase names of the one-file suite, still accepted by --only.
ALIASES = {
    "negative_control": ["no_alg"],
    "transfers": ["passive", "active", "hairpin", "ipv6"],
    "alg_specific": ["rewrite", "loss", "pinhole", "datapath"],
    "shutdown": ["privilege", "shutdown", "restart"],
    "operations": ["status", "publish", "kernel_helper", "workers"],
    "bad_config": ["config"],
}


class Runner:
    def __init__(self, t):
        self.t = t
        self.passed = 0
        self.failed = 0

    def result(self, full, ok, t0, why=""):
        if ok:
            self.passed += 1
            print("PASS %s (%.1fs)" % (full, time.time() - t0), flush=True)
        else:
            self.failed += 1
            print("FAIL %s: %s" % (full, why), flush=True)
            if os.environ.get("FTP_ALG_TEST_TRACE"):
                traceback.print_exc()

    def check(self, full, fn):
        t0 = time.time()
        try:
            fn(self.t)
        except Exception as e:
            self.result(full, False, t0, e)
        else:
            self.result(full, True, t0)

    def behaviour(self, name, setup):
        mod = importlib.import_module("t_" + name)
        label = "%s (%s)" % (name, LABELS[setup]) if LABELS[setup] else name
        t0 = time.time()
        try:
            self.t.lab.gateway(setup, self.t.binary)
        except Exception as e:
            # Its checks cannot run: one failure for the setup, and on to the next behaviour.
            self.result("%s: gateway setup" % label, False, t0, e)
            return
        for title, fn in mod.checks(self.t):
            self.check("%s: %s" % (label, title), fn)


def behaviours(only):
    """The (behaviour, setup) pairs to run, in order."""
    if not only:
        return [(n, s) for s in SETUPS for n in ORDER if s in importlib.import_module("t_" + n).GATEWAYS]
    names = []
    for o in only:
        # A file name is that behaviour alone; a bare name is first an old phase (shutdown is both).
        base = os.path.basename(o)
        if base.startswith("t_"):
            group = [base[2:-3] if base.endswith(".py") else base[2:]]
        else:
            group = ALIASES.get(o, [o])
        for n in group:
            if n not in ORDER:
                raise ValueError("--only %s: no such behaviour (known: %s; phases: %s)" %
                                 (o, " ".join(ORDER), " ".join(ALIASES)))
            names.append(n)
    return [(n, s) for n in names for s in importlib.import_module("t_" + n).GATEWAYS]


def main():
    # A TERM (timeout, ^C from a wrapper) still removes the lab.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--pkgroot", required=True, help="folder with proftpd and pure-ftpd unpacked")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--valgrind", action="store_true",
                    help="run the daemon under valgrind (memcheck) and fail on any error or leak")
    ap.add_argument("--only", action="append", default=[],
                    help="run only this behaviour (t_NAME.py: %s) or old phase (%s); repeatable"
                    % (", ".join(ORDER), ", ".join(ALIASES)))
    a = ap.parse_args()
    try:
        plan = behaviours(a.only)
    except ValueError as e:
        ap.error(str(e))
    if os.geteuid() != 0:
        print("integration tests need root", file=sys.stderr)
        return 2
    files = prepare_files()
    work = tempfile.mkdtemp(prefix="ftp-alg-it.")
    os.chmod(work, 0o755)  # the servers drop privileges and still read their files here
    lab = Lab(work, a.pkgroot)
    if a.valgrind:
        lab.wrapper = ["valgrind", "--error-exitcode=97", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                       "--errors-for-leak-kinds=definite,indirect", "--track-fds=no", "--track-origins=yes",
                       "--log-file=" + os.path.join(work, "valgrind.%p.log")]
    runner = Runner(T(lab, files, os.path.abspath(a.binary), a.quick))
    try:
        lab.up()
        lab.start_servers()
        for name, setup in plan:
            runner.behaviour(name, setup)
        if a.valgrind and a.only:
            runner.check("valgrind: no memory errors and no leaks in the daemon", lambda t: valgrind_clean(lab, work))
    except Exception:
        runner.failed += 1
        print("FAIL lab: " + traceback.format_exc(), flush=True)
    finally:
        log = lab.log()
        lab.down()
        if runner.failed:
            print("--- ftp-alg log (tail) ---\n" + log[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (runner.passed, runner.failed))
    return 0 if runner.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
