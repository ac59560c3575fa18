"""Stopping the daemon, cleanly or with kill -9, leaves nothing of it in the kernel."""
import time

from lab import expect

GATEWAYS = ("ftp-alg",)


def sigterm(t):
    rc = t.lab.stop_alg()
    expect(rc == 0, "exit status %s after SIGTERM", rc)
    expect("ftp_alg" not in t.tables(), "table ftp_alg left behind: %s", t.tables())
    for bad in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        expect(bad not in t.log(), "sanitizer report in the daemon log:\n%s", t.log()[-2000:])


def kill9(t):
    t.lab.start_alg(t.binary)
    t.lab.kill_alg()
    time.sleep(0.2)
    expect("ftp_alg" not in t.tables(), "kill -9 left table ftp_alg (and its pinholes) behind")


def checks(t):
    yield "SIGTERM: exit 0, no ftp-alg object left in the kernel, no sanitizer report", sigterm
    yield "kill -9: the owned table vanishes with the daemon", kill9
