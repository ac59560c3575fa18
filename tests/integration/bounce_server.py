#!/usr/bin/env python3
"""A minimal FTP server that obeys any PORT/EPRT, for bounce tests.

Real servers refuse a PORT naming another host, which would hide an ALG
that lets one through. This one records every command line it receives
(to --log, one JSON string per line) and, on RETR, connects wherever the
last PORT/EPRT pointed and sends a few bytes.
"""
import argparse
import json
import re
import socket

from scripted import dispatch, serve_forever


def serve(conn, log, addr):
    target = []

    def handle(verb, raw):
        line = raw.decode("latin-1")
        with open(log, "a") as out:
            out.write(json.dumps(line) + "\n")
        if verb == "PORT":
            m = re.match(r"PORT (\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", line, re.I)
            if m:
                v = [int(x) for x in m.groups()]
                target[:] = [("%d.%d.%d.%d" % tuple(v[:4]), v[4] * 256 + v[5])]
                conn.sendall(b"200 PORT ok\r\n")
            else:
                conn.sendall(b"501 bad PORT\r\n")
        elif verb == "EPRT":
            parts = line.strip()[5:].split(line.strip()[5:6]) if len(line.strip()) > 6 else []
            if len(parts) >= 4:
                target[:] = [(parts[2], int(parts[3]))]
                conn.sendall(b"200 EPRT ok\r\n")
            else:
                conn.sendall(b"501 bad EPRT\r\n")
        elif verb == "RETR":
            if not target:
                conn.sendall(b"425 no PORT\r\n")
                return True
            conn.sendall(b"150 connecting\r\n")
            try:
                # Like real servers, connect from the control connection's address.
                with socket.create_connection(target[0], timeout=3, source_address=(addr, 0)) as d:
                    d.sendall(b"bounced data\n")
                conn.sendall(b"226 done\r\n")
            except OSError:
                conn.sendall(b"425 cannot connect\r\n")
        else:
            return False
        return True

    dispatch(conn, b"220 bounce test server\r\n", handle)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    serve_forever(a.addr, serve, a.log, a.addr)


if __name__ == "__main__":
    main()
