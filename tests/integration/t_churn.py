"""A client that opens a control connection per file: limited by its open connections.

A closed connection waits for its conntrack's TIME_WAIT (two minutes) before
the daemon forgets it, but it no longer counts against MaxSessionsPerClient:
with a limit of 3, ten files fetched one connection each all arrive.
"""
import os

from lab import expect

GATEWAYS = ("own",)


def one_connection_per_file(t):
    conf = os.path.join(t.lab.work, "churn.conf")
    with open(conf, "w") as f:
        f.write("MaxSessionsPerClient = 3\n")
    t.lab.start_alg(t.binary, ["--config", conf, "--control-socket", t.ctl])
    try:
        for i in range(10):
            t.curl("vsftpd", epsv=bool(i % 2))  # raises unless the bytes arrive intact
        s = t.status()
        expect(s["counters"]["sessions"] >= 10, "only %d sessions followed", s["counters"]["sessions"])
        refused = s["counters"].get("refusals", {})
        expect("client-max-sessions" not in refused, "connections refused: %s", refused)
        closing = [x for x in s["sessions"] if x["state"] == "closing"]
        expect(len(closing) >= 4, "closed connections are not kept for their stray segments: %s", s["sessions"])
    finally:
        t.lab.stop_alg()


def checks(t):
    yield "ten files, a control connection each, MaxSessionsPerClient 3: all arrive", one_connection_per_file
