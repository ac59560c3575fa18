"""A bad configuration names its file and line, exits 2, and installs nothing."""
import os
import re

from lab import HERE, expect, nsx, sh

GATEWAYS = ("own",)

# file text: the line numbers --check-config must name, and no others
BROKEN = {
    "ControlPorts = 21,0\n": [1],
    "# ok\nMasqueradeAddress = ftp.example.com\nPinholeTimeout = 0\n": [2, 3],
    "[server a]\nPublic = 203.0.113.1:2121\n": [1],
    "[server a]\nPublic = 203.0.113.1:21\nServer = 192.0.2.10:21\n"
    "[server b]\nPublic = 203.0.113.1:21\nServer = 192.0.2.11:21\n": [4],
    "[class x]\nFrom = 192.0.2.0/33\n": [1, 2],
    "LogLevel = loud\nno equals sign here\n": [1, 2],
}


def bad_config(t):
    path = os.path.join(t.lab.work, "bad.conf")
    with open(path, "w") as f:
        f.write("# comment\nControlPorts = 21\nPassivePorts = 70000-70010\n")
    r = sh([t.binary, "--check-config", path], check=False)
    expect(r.returncode == 2 and ("%s:3:" % path) in r.stderr, "rc=%d stderr=%r", r.returncode, r.stderr)
    r = nsx("fa-gw", [t.binary, "--config", path], check=False, timeout=10)
    expect(r.returncode == 2, "daemon started with a bad config (rc=%d)", r.returncode)
    expect("ftp_alg" not in t.tables(), "bad config installed kernel objects")


def broken_files(t):
    shipped = os.path.join(HERE, "..", "..", "conf", "ftp-alg.conf")
    r = sh([t.binary, "--check-config", shipped], check=False)
    expect(r.returncode == 0, "the shipped config fails: %s", r.stderr)
    for i, (text, lines) in enumerate(BROKEN.items()):
        path = os.path.join(t.lab.work, "broken%d.conf" % i)
        with open(path, "w") as f:
            f.write(text)
        r = sh([t.binary, "--check-config", path], check=False)
        got = sorted(int(x) for x in re.findall(r"^%s:(\d+): " % re.escape(path), r.stderr, re.M))
        expect(r.returncode == 2 and got == lines, "%r: rc=%d lines=%s want %s\n%s", text, r.returncode, got, lines,
               r.stderr)


def checks(t):
    yield "bad config: file:line, exit 2, nothing installed", bad_config
    yield "check-config on broken files: exit 2, every bad line named", broken_files
