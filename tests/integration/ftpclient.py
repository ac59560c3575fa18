#!/usr/bin/env python3
"""FTP client for the integration tests; runs inside the client namespace.

Prints one JSON object. Every transfer's sha256 is checked against --sha256.
ftplib ignores the 227 address by default; trust it here, or a broken
rewrite would be hidden.
"""
import argparse
import ftplib
import hashlib
import json
import socket
import sys


def retr(ftp, path, mode):
    if mode == "port":
        # Active mode: ftplib sends PORT (EPRT on IPv6) with this host's address and listens.
        h = hashlib.sha256()
        n = [0]

        def take(b):
            h.update(b)
            n[0] += len(b)
        ftp.set_pasv(False)
        resp = ftp.retrbinary("RETR " + path, take)
        return resp, h.hexdigest(), n[0]
    ftp.sendcmd("TYPE I")
    if mode == "epsv":
        resp = ftp.sendcmd("EPSV")
        host, port = ftp.sock.getpeername()[0], ftplib.parse229(resp, ftp.sock.getpeername())[1]
    elif ftp.af == socket.AF_INET6:
        raise ValueError("PASV is IPv4 only; use --mode epsv")
    else:
        resp = ftp.sendcmd("PASV")
        host, port = ftplib.parse227(resp)
    h = hashlib.sha256()
    n = 0
    src = (ftp.source_address[0], 0) if ftp.source_address else None
    with socket.create_connection((host, port), timeout=10, source_address=src) as data:
        r = ftp.sendcmd("RETR " + path)
        if not r.startswith("1"):
            raise ftplib.error_reply(r)
        while True:
            b = data.recv(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
    ftp.voidresp()
    return resp, h.hexdigest(), n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=21)
    p.add_argument("--path", required=True)
    p.add_argument("--sha256", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--source", help="local address to connect from")
    p.add_argument("--pause-after", type=int, default=None,
                   help="after this many transfers (0: logged in, before the first) print 'paused' and wait "
                   "for a line on stdin")
    p.add_argument("--mode", choices=["pasv", "epsv", "both", "port"], default="pasv")
    p.add_argument("--announce-only", action="store_true",
                   help="send PASV, print the 227 and wait for a line on stdin before connecting")
    p.add_argument("--announce-then-quit", action="store_true",
                   help="send PASV, print the 227, wait for a line on stdin, then QUIT without connecting")
    a = p.parse_args()

    out = {"ok": 0, "bad": 0, "replies": [], "errors": []}
    ftp = ftplib.FTP(source_address=(a.source, 0) if a.source else None)
    ftp.trust_server_pasv_ipv4_address = True
    ftp.connect(a.host, a.port, timeout=15)
    ftp.login()
    if a.announce_then_quit or a.announce_only:
        ftp.sendcmd("TYPE I")
        resp = ftp.sendcmd("PASV")
        host, port = ftplib.parse227(resp)
        print(json.dumps({"reply": resp, "host": host, "port": port}), flush=True)
        sys.stdin.readline()
        if a.announce_then_quit:
            ftp.quit()
            print(json.dumps({"quit": True}), flush=True)
            return 0
        h = hashlib.sha256()
        with socket.create_connection((host, port), timeout=10) as data:
            ftp.sendcmd("RETR " + a.path)
            while True:
                b = data.recv(1 << 16)
                if not b:
                    break
                h.update(b)
        ftp.voidresp()
        print(json.dumps({"sha256_ok": h.hexdigest() == a.sha256}), flush=True)
        ftp.quit()
        return 0
    for i in range(a.count):
        if a.pause_after is not None and i == a.pause_after:
            print(json.dumps({"paused": out["ok"]}), flush=True)
            sys.stdin.readline()
        mode = a.mode if a.mode != "both" else ("pasv" if i % 2 == 0 else "epsv")
        try:
            resp, digest, n = retr(ftp, a.path, mode)
            if i < 2 or i == a.count - 1:
                out["replies"].append(resp)
            if digest == a.sha256:
                out["ok"] += 1
            else:
                out["bad"] += 1
                out["errors"].append("transfer %d: sha256 mismatch (%d bytes)" % (i, n))
        except Exception as e:  # report and stop: later transfers would only repeat it
            out["bad"] += 1
            out["errors"].append("transfer %d: %r" % (i, e))
            break
    try:
        ftp.quit()
    except Exception:
        pass
    print(json.dumps(out))
    return 0 if out["bad"] == 0 and out["ok"] == a.count else 1


if __name__ == "__main__":
    sys.exit(main())
