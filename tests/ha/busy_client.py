#!/usr/bin/env python3
"""An FTP control session that keeps talking through a failover.

Logs in, sends PASV once (a length-changing rewrite on the gateway: the
227's address grows from 192,0,2,10 to 203,0,113,1), prints it, then sends
NOOP every --interval seconds until a line arrives on stdin, timing every
answer. Ends with one more PASV and prints one JSON object: the longest
wait for an answer, the number of NOOPs, errors, and both 227 lines.
"""
import argparse
import json
import select
import socket
import sys
import time


class Conn:
    def __init__(self, host, port, timeout):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise ConnectionError("closed by peer")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def reply(self):
        line = self.line()
        while len(line) < 4 or line[3] == "-":
            line = self.line()
        return line

    def cmd(self, c):
        self.s.sendall(c.encode() + b"\r\n")
        return self.reply()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    out = {"noops": 0, "max_wait": 0.0, "stalls": [], "errors": []}
    c = Conn(a.host, 21, a.timeout)
    c.reply()
    c.cmd("USER anonymous")
    c.cmd("PASS test@")
    out["pasv_before"] = c.cmd("PASV")
    print(json.dumps({"ready": out["pasv_before"]}), flush=True)
    try:
        while not select.select([sys.stdin], [], [], 0)[0]:
            t0 = time.time()
            r = c.cmd("NOOP")
            dt = time.time() - t0
            if not r.startswith("200"):
                out["errors"].append("NOOP answered %r" % r)
                break
            out["noops"] += 1
            if dt > out["max_wait"]:
                out["max_wait"] = round(dt, 3)
            if dt > 0.2:
                out["stalls"].append([round(t0, 3), round(dt, 3)])
            time.sleep(a.interval)
        sys.stdin.readline()
        out["pasv_after"] = c.cmd("PASV")
        c.cmd("QUIT")
    except Exception as e:
        out["errors"].append(repr(e))
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
