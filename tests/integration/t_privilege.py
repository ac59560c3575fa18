"""The running daemon holds least privilege, and a second one in the same namespace refuses to start."""
import os

from lab import expect, nsx

GATEWAYS = ("ftp-alg",)
CAP_NET_ADMIN = 1 << 12


def least_privilege(t):
    with open("/proc/%d/status" % t.lab.alg.pid) as f:
        st = dict(x.split(":\t", 1) for x in f.read().splitlines() if ":\t" in x)
    uid = st["Uid"].split()[1]
    expect(uid == "65534", "runs as uid %s, not nobody", uid)
    for key in ("CapEff", "CapPrm"):
        expect(int(st[key], 16) == CAP_NET_ADMIN, "%s is %s, not CAP_NET_ADMIN alone", key, st[key])
    expect(not int(st["CapBnd"], 16) & ~CAP_NET_ADMIN, "bounding set %s holds more than CAP_NET_ADMIN", st["CapBnd"])
    sanitized = "sanitizer build: no seccomp filter" in t.log()
    expect(sanitized or st["Seccomp"].strip() == "2", "no seccomp filter (Seccomp: %s)", st["Seccomp"])


def second_daemon(t):
    r = nsx("fa-gw", [t.binary, "--control-socket", os.path.join(t.lab.work, "second.sock")], check=False, timeout=10)
    expect(r.returncode == 1 and "another ftp-alg" in r.stderr, "rc=%d %r", r.returncode, r.stderr[-400:])
    expect("ftp_alg" in t.tables(), "the second daemon removed the first one's table")
    t.curl("vsftpd", epsv=False)


def checks(t):
    yield "least privilege: nobody, CAP_NET_ADMIN only, seccomp filter (plain build)", least_privilege
    yield "a second daemon in the same namespace refuses to start, the first keeps working", second_daemon
