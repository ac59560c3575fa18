#!/usr/bin/env python3
"""N PASV commands on one control connection, then fetch a file through the last one.

--pipeline sends them all in one write; otherwise each waits for its reply.

Prints one JSON line: the 227 lines received and the data's SHA-256.
"""
import argparse
import hashlib
import json
import re
import socket


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--pipeline", action="store_true")
    a = ap.parse_args()
    s = socket.create_connection((a.host, 21), timeout=60)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if not line:
                raise EOFError("control connection closed")
            if line[:3].isdigit() and line[3:4] == b" ":
                return line.decode("latin-1")

    reply()
    for c in (b"USER anonymous", b"PASS x", b"TYPE I"):
        s.sendall(c + b"\r\n")
        reply()
    if a.pipeline:
        s.sendall(b"PASV\r\n" * a.count)
    lines = []
    try:
        for _ in range(a.count):
            if not a.pipeline:
                s.sendall(b"PASV\r\n")
            lines.append(reply())
    except OSError as e:
        print(json.dumps({"lines": lines, "sha256": None, "error": str(e)}))
        return
    m = re.match(r"227 .*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", lines[-1])
    digest = None
    if m:
        try:
            d = socket.create_connection((".".join(m.group(1, 2, 3, 4)), int(m.group(5)) * 256 + int(m.group(6))),
                                         timeout=20)
        except OSError as e:
            print(json.dumps({"lines": lines, "sha256": None, "error": "data connection: %s" % e}))
            return
        s.sendall(b"RETR " + a.path.encode() + b"\r\n")
        reply()
        h = hashlib.sha256()
        while True:
            b = d.recv(65536)
            if not b:
                break
            h.update(b)
        d.close()
        reply()
        digest = h.hexdigest()
    s.sendall(b"QUIT\r\n")
    reply()
    print(json.dumps({"lines": lines, "sha256": digest}))


if __name__ == "__main__":
    main()
