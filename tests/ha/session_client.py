#!/usr/bin/env python3
"""One FTP control session driven line by line from stdin, for the failover test.

Commands (one a line), each answered by one JSON line on stdout:
  pasv | epsv   one passive transfer of --path; {"ok", "reply", "error"}; ok means the sha256 matched
  port          one active transfer: PORT naming this host, the server connects back; like pasv
  slowpasv      the same, read slowly through a small receive window (about 200 KB/s), so that the data
                is still crossing the gateway seconds later; adds "start" and "end" times
  announce      PASV only; {"reply", "host", "port"}
  fetch         connect to the announced port and RETR; like pasv
  noop          NOOP; {"ok", "reply"}
  quit          QUIT and exit
The 227's address is trusted, as in tests/integration/ftpclient.py, so an
unrewritten 227 fails visibly.
"""
import argparse
import hashlib
import json
import re
import socket
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(__file__)))
from busy_client import Conn  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--sha256", required=True)
    a = ap.parse_args()
    c = Conn(a.host, 21, 10)
    c.reply()
    c.cmd("USER anonymous")
    c.cmd("PASS test@")
    c.cmd("TYPE I")
    print(json.dumps({"ready": True}), flush=True)
    announced = None

    def fetch(host, port, reply, slow=False):
        h = hashlib.sha256()
        d = socket.socket()
        if slow:
            d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        d.settimeout(10)
        with d:
            d.connect((host, port))
            r = c.cmd("RETR " + a.path)
            if not r.startswith("1"):
                return {"ok": False, "reply": reply, "error": "RETR answered %r" % r}
            while True:
                b = d.recv(8192 if slow else 1 << 16)
                if not b:
                    break
                h.update(b)
                if slow:
                    time.sleep(0.04)
        end = c.reply()
        ok = end.startswith("226") and h.hexdigest() == a.sha256
        return {"ok": ok, "reply": reply, "error": None if ok else "end %r, sha256 %s" % (end, h.hexdigest())}

    for line in sys.stdin:
        cmd = line.strip()
        try:
            t = time.time()
            if cmd in ("pasv", "announce", "slowpasv"):
                reply = c.cmd("PASV")
                m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", reply)
                if not m:
                    raise ValueError("no address in %r" % reply)
                host = ".".join(m.group(1, 2, 3, 4))
                port = int(m.group(5)) * 256 + int(m.group(6))
                if cmd == "announce":
                    announced = (host, port, reply)
                    out = {"reply": reply, "host": host, "port": port}
                else:
                    out = fetch(host, port, reply, slow=cmd == "slowpasv")
                    out.update(start=t, end=time.time())
            elif cmd == "port":
                ls = socket.socket()
                with ls:
                    ls.bind((c.s.getsockname()[0], 0))
                    ls.listen(1)
                    ls.settimeout(10)
                    ip, port = ls.getsockname()
                    reply = c.cmd("PORT %s,%d,%d" % (ip.replace(".", ","), port >> 8, port & 255))
                    if not reply.startswith("200"):
                        raise ValueError("PORT answered %r" % reply)
                    r = c.cmd("RETR " + a.path)
                    if not r.startswith("1"):
                        raise ValueError("RETR answered %r" % r)
                    d, _ = ls.accept()
                    h = hashlib.sha256()
                    with d:
                        d.settimeout(10)
                        while True:
                            b = d.recv(1 << 16)
                            if not b:
                                break
                            h.update(b)
                    end = c.reply()
                    ok = end.startswith("226") and h.hexdigest() == a.sha256
                    out = {"ok": ok, "reply": reply,
                           "error": None if ok else "end %r, sha256 %s" % (end, h.hexdigest())}
            elif cmd == "epsv":
                reply = c.cmd("EPSV")
                m = re.search(r"\(\|\|\|(\d+)\|\)", reply)
                if not m:
                    raise ValueError("no port in %r" % reply)
                out = fetch(a.host, int(m.group(1)), reply)
            elif cmd == "noop":
                c.s.settimeout(10)
                r = c.cmd("NOOP")
                out = {"ok": r.startswith("200"), "reply": r}
            elif cmd == "fetch":
                out = fetch(*announced)
            elif cmd == "quit":
                c.cmd("QUIT")
                return 0
            else:
                out = {"ok": False, "error": "unknown command %r" % cmd}
        except Exception as e:
            out = {"ok": False, "error": repr(e)}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
