"""Servers published by ftp-alg alone on other ports, with PassivePorts, MaxSessions, a no-rewrite class, reload."""
import os
import re

from lab import DATA_DIR, expect, nsx, sh, sha256

GATEWAYS = ("own",)
CONF = ("[server files]\nPublic = 203.0.113.2:2121\nServer = 192.0.2.11:21\n"
        "PassivePorts = 40000-40009\nMaxSessions = 2\n\n"
        "[server more]\nPublic = 203.0.113.3:2122\nServer = 192.0.2.12:21\n\n"
        "[class hairpin]\nFrom = 192.0.2.50/32\nRewrite = no\n")


def publish4():
    return nsx("fa-gw", "nft list map inet ftp_alg publish4").stdout


def publishing(t):
    conf = os.path.join(t.lab.work, "publish.conf")
    with open(conf, "w") as f:
        f.write(CONF)
    r = sh([t.binary, "--check-config", conf], check=False)
    expect(r.returncode == 0, "config rejected: %s", r.stderr)
    t.lab.start_alg(t.binary, ["--config", conf, "--control-socket", t.ctl])
    try:
        # Port 2121 and 2122 are forwarded by ftp-alg alone: the lab's ruleset knows only 21.
        res = t.ftpclient("fa-c", "203.0.113.2", 10, "pasv", "--port", "2121")
        for reply in res["replies"]:
            m = re.search(r"\(203,0,113,2,(\d+),(\d+)\)", reply)
            expect(m and 40000 <= int(m.group(1)) * 256 + int(m.group(2)) <= 40009,
                   "not remapped into 40000-40009: %r", reply)
        out = os.path.join(t.lab.work, "pub.out")
        r = nsx("fa-c", ["curl", "-sS", "--max-time", "20", "-o", out, "ftp://203.0.113.3:2122/%s/f1M" % DATA_DIR],
                check=False)
        expect(r.returncode == 0 and sha256(out) == t.files["f1M"], "2122: %s", r.stderr)
        # MaxSessions = 2: two held sessions, the third SYN goes nowhere.
        with t.held("fa-c", "203.0.113.2", "--port", "2121", "--announce-only") as a, \
                t.held("fa-c", "203.0.113.2", "--port", "2121", "--announce-only") as b:
            a.read()
            b.read()
            expect(not t.connects("fa-c", "203.0.113.2", 2121, timeout=2),
                   "a third session got through MaxSessions = 2")
            # The hairpin class is told the server's own address, and nothing opens for it.
            with t.held("fa-lc", "203.0.113.1", "--announce-then-quit") as h:
                ann = h.read()
                expect(ann["host"] == "192.0.2.10", "class Rewrite = no: got %r", ann["reply"])
                st = t.status()
                expect("server-max-sessions" in st["counters"]["refused_by_reason"],
                       "the refused SYN was not counted: %s", st["counters"])
                pub = publish4()
                expect("203.0.113.2 . 2121 : 192.0.2.11 . 21" in pub and "203.0.113.3 . 2122 : 192.0.2.12 . 21" in pub,
                       "publish4 map: %s", pub)
                # A reload without [server more] removes its forward at once.
                with open(conf, "w") as f:
                    f.write("[server files]\nPublic = 203.0.113.2:2121\nServer = 192.0.2.11:21\n")
                sh([t.binary, "reload", "--control-socket", t.ctl])
                pub = publish4()
                expect("2122" not in pub and "2121" in pub, "after reload, publish4 map: %s", pub)
    finally:
        t.lab.stop_alg()


def checks(t):
    yield "published servers on 2121/2122 with PassivePorts, MaxSessions, a no-rewrite class, reload", publishing
