#!/usr/bin/env python3
"""Timed FTP operations on one warm control connection, for scripts/bench.

Modes: pasv (PASV -> 227 round trip), port (PORT -> 200 round trip),
setup (PASV, then the data connection's connect() through the pinhole),
long (PASV -> 227 round trip, each announced port then used, as a mirror
job does: one control connection, --count transfers),
retr (one RETR of --path, MiB/s). Prints one JSON line of samples in ms.
"""
import argparse
import hashlib
import json
import re
import socket
import time


class Ctl:
    def __init__(self, host):
        self.s = socket.create_connection((host, 21), timeout=30)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")
        self.reply()
        self.cmd("USER anonymous")
        self.cmd("PASS x")
        self.cmd("TYPE I")

    def reply(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("control connection closed")
            if line[:3].isdigit() and line[3:4] == b" ":
                return line.decode("latin-1")

    def cmd(self, c):
        self.s.sendall(c.encode() + b"\r\n")
        return self.reply()


def hostport(line):
    m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", line)
    return ".".join(m.group(1, 2, 3, 4)), int(m.group(5)) * 256 + int(m.group(6))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["pasv", "port", "setup", "long", "retr"])
    ap.add_argument("--host", required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--path")
    ap.add_argument("--source", help="this host's address, for PORT")
    ap.add_argument("--announce", help="the address PORT names (default --source): the gateway's, where nothing "
                    "rewrites the PORT and the server checks it against the control connection's peer")
    a = ap.parse_args()
    c = Ctl(a.host)
    out = {"samples_ms": []}
    for _ in range(5):  # warm: caches, conntrack, the daemon's session
        c.cmd("PASV" if a.mode != "port" else "NOOP")
    if a.mode == "pasv":
        for _ in range(a.count):
            t = time.perf_counter()
            r = c.cmd("PASV")
            out["samples_ms"].append((time.perf_counter() - t) * 1e3)
            assert r.startswith("227"), r
    elif a.mode == "port":
        lst = socket.socket()
        lst.bind((a.source, 0))
        lst.listen(4)
        p = lst.getsockname()[1]
        line = "PORT %s,%d,%d" % ((a.announce or a.source).replace(".", ","), p >> 8, p & 255)
        for _ in range(a.count):
            t = time.perf_counter()
            r = c.cmd(line)
            out["samples_ms"].append((time.perf_counter() - t) * 1e3)
            assert r.startswith("200"), r
    elif a.mode == "long":
        for _ in range(a.count):
            t = time.perf_counter()
            r = c.cmd("PASV")
            out["samples_ms"].append((time.perf_counter() - t) * 1e3)
            host, port = hostport(r)
            socket.create_connection((host, port), timeout=10).close()
    elif a.mode == "setup":
        for _ in range(a.count):
            host, port = hostport(c.cmd("PASV"))
            t = time.perf_counter()
            d = socket.create_connection((host, port), timeout=10)
            out["samples_ms"].append((time.perf_counter() - t) * 1e3)
            d.close()
    else:
        host, port = hostport(c.cmd("PASV"))
        d = socket.create_connection((host, port), timeout=30)
        t = time.perf_counter()
        r = c.cmd("RETR " + a.path)
        assert r.startswith("150"), r
        n = 0
        h = hashlib.sha256()
        while True:
            b = d.recv(1 << 20)
            if not b:
                break
            n += len(b)
            h.update(b)
        took = time.perf_counter() - t
        d.close()
        c.reply()
        out = {"bytes": n, "seconds": took, "mib_s": n / took / (1 << 20), "sha256": h.hexdigest()}
    c.s.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
