"""One client holds what it can (PORT lines a byte a segment on many connections) while 20 others transfer.

The hostile client is fa-x (203.0.113.20); the 20 others run in fa-c. The kernel queue must drop
nothing, every transfer must arrive whole, and the daemon must have hit its hold limit.
"""
import os
import subprocess
import sys
import time

from lab import DATA_DIR, HERE, expect, last_json, nsx

GATEWAYS = ("ftp-alg",)

# CONNS connections; on each, PORT lines sent one byte per segment (TCP_NODELAY, a write per byte),
# a line end after every 60 bytes, for SECONDS. Prints how many bytes went out.
HOSTILE = r"""
import socket, sys, time
conns, seconds = int(sys.argv[1]), float(sys.argv[2])
socks = []
for _ in range(conns):
    s = socket.create_connection(("203.0.113.1", 21), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    socks.append(s)
time.sleep(0.5)
line = b"PORT 203,0,113,20," + b"1" * 42 + b"\r\n"
sent, i, end = 0, 0, time.time() + seconds
while time.time() < end:
    for s in socks:
        try:
            s.send(line[i % len(line):i % len(line) + 1])
            sent += 1
        except (BlockingIOError, OSError):
            pass
        try:
            s.recv(65536)
        except (BlockingIOError, OSError):
            pass
    i += 1
    time.sleep(0.002)
print(sent)
"""

# Inside fa-c: 20 clients at once, each 3 PASV then a download through the last one.
CLIENTS = r"""
import json, subprocess, sys
script, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ps = [subprocess.Popen([sys.executable, script, "--host", "203.0.113.1", "--path", path, "--count", "3"],
                       stdout=subprocess.PIPE, text=True) for _ in range(n)]
out = []
for p in ps:
    o, _ = p.communicate(timeout=200)
    try:
        out.append(json.loads(o.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        out.append({"sha256": None, "error": o[-200:]})
print(json.dumps(out))
"""


def queue_drops():
    """Packets the kernel dropped because a queue was full (nfnetlink_queue's queue_dropped), summed."""
    r = nsx("fa-gw", "cat /proc/net/netfilter/nfnetlink_queue", check=False)
    total = 0
    for row in r.stdout.splitlines():
        f = row.split()
        if len(f) >= 7:
            total += int(f[5])
    return total


def flood(t):
    before = queue_drops()
    hostile = subprocess.Popen(["ip", "netns", "exec", "fa-x", sys.executable, "-c", HOSTILE, "40", "20"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        r = nsx("fa-c", [sys.executable, "-c", CLIENTS, os.path.join(HERE, "pipelined.py"),
                         "/%s/f1M" % DATA_DIR, "20"], check=False, timeout=240)
        res = last_json(r, "clients")
    finally:
        out, err = hostile.communicate(timeout=60)
    bad = [x for x in res if x.get("sha256") != t.files["f1M"]]
    expect(len(res) == 20 and not bad, "%d of %d transfers failed: %r", len(bad), len(res), bad[:2])
    expect(out.strip().isdigit() and int(out) > 2000, "the hostile client sent little: %r %r", out, err[-300:])
    expect("event=hold-limit" in t.log(), "the hold limit was never reached: the test proved nothing")
    drops = queue_drops() - before
    expect(drops == 0, "the kernel queue dropped %d packets", drops)


def checks(t):
    yield ("one client at its hold limit on 40 connections, 20 others transfer through PASV meanwhile", flood)
