"""Hostile server replies through the real gateway: what the client gets, which pinholes exist.

The server is evil_server.py at 192.0.2.13 (public 203.0.113.5); the login name picks its case.
"""
import json
import re
import time

import evil_server
from lab import expect, nsx

GATEWAYS = ("ftp-alg",)
OK = "227 Entering Passive Mod (203,0,113,5,195,80).\r\n"  # at its own length: one byte of text gives way

# Sends each argument as a command line and collects whatever arrives within 4 s of it.
TALK = ("import socket,sys,json,time\ns=socket.create_connection(('203.0.113.5',21),timeout=5)\n"
        "s.settimeout(0.2)\n"
        "def rd():\n b=b''\n end=time.time()+4\n while time.time()<end:\n  try:\n   d=s.recv(65536)\n"
        "  except OSError:\n   if b:\n    return b\n   continue\n"
        "  if not d:\n   return b\n  b+=d\n return b\n"
        "out=[]\nrd()\n"
        "for c in sys.argv[1:]:\n s.sendall(c.encode('latin-1')+b'\\r\\n')\n out.append(rd().decode('latin-1'))\n"
        "print(json.dumps(out))\n")

UNTOUCHED = {
    "thirdhost": "a 227 naming a third host", "loopback": "a 227 naming loopback",
    "broadcast": "a 227 naming broadcast", "gateway": "a 227 naming the gateway",
    "multicast": "a 227 naming a multicast group", "unspecified": "a 227 naming 0.0.0.0",
    "shorthand": "a 227 with five numbers (inet_aton shorthand)", "nul": "a 227 with a NUL in it",
    "octet256": "octet 256", "fourdigits": "a four-digit octet", "hex": "hexadecimal",
    "sign": "a sign", "fullwidth": "full-width digits", "port0": "port 0",
    "intext": "227 inside a 150 reply's text", "multiline": "a multi-line 227",
    "barecr": "227 after a bare CR", "longline": "a line over 4096 bytes",
}


def sent(case, verb):
    """The exact reply the evil server sends for verb in case."""
    return evil_server.CASES[case][verb][0].decode("latin-1")


def talk(case, commands):
    """The replies the client got to commands, after logging in as case (None: no login)."""
    login = ["USER " + case, "PASS x"] if case else []
    r = nsx("fa-c", ["python3", "-c", TALK] + login + commands, check=False, timeout=30)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])[len(login):]
    except (ValueError, IndexError):
        raise AssertionError("client failed: %s %s" % (r.stdout, r.stderr))


def passes_untouched(case, verb, commands=None):
    """The reply to the last command arrives byte for byte as sent, and no pinhole is armed."""
    def check(t):
        got = talk(case, commands or [verb])[-1]
        expect(got == sent(case if case else "default", verb), "client got %r, server sent %r", got[:120],
               sent(case if case else "default", verb)[:120])
        expect(not t.elements("once4"), "a pinhole was opened: %s", t.elements("once4"))
    return check


def tls_opaque(t):
    passes_untouched("tls", "PASV", ["AUTH TLS", "PASV"])(t)
    expect("event=opaque" in t.log(), "going opaque was not logged")


def from_client(t):
    talk("fromclient", ["227 Entering Passive Mode (192,0,2,13,195,80)."])
    expect(not t.elements("once4"), "a 227 from the client opened %s", t.elements("once4"))


def not_ftp(t):
    # NAT slipstreaming: an HTTP request to the control port, then the server "answers" a PASV.
    passes_untouched(None, "PASV", ["GET / HTTP/1.1", "PASV"])(t)
    got = talk(None, ["NOOP", "PASV"])
    expect(got[1] == OK, "control: an FTP opening was not parsed: %r", got[1])


def settled(t):
    # An ended session's pinhole leaves the kernel at the daemon's next tick, and its key
    # (client, public address, port) stays taken until then: the checks below name exact ports.
    deadline = time.time() + 3
    while t.elements("once4") and time.time() < deadline:
        time.sleep(0.05)
    expect(not t.elements("once4"), "an ended session's pinhole outlived the tick: %s", t.elements("once4"))


def split_seven(t):
    settled(t)
    before = t.log().count("public=203.0.113.5:")
    got = talk("sevenbytes", ["PASV"])
    expect(got[0] == OK, "client got %r", got[0])
    expect(t.log().count("public=203.0.113.5:") == before + 1, "no pinhole armed for it")


def injected(t):
    # Forged by raw socket from the server's own address and sequence space (inject.py).
    # Conntrack would mark the bad checksum invalid and keep it from the queue; with its check
    # off (as some gateways run) the daemon's own check is what stands.
    settled(t)
    log0 = len(t.log())
    nsx("fa-gw", "sysctl -qw net.netfilter.nf_conntrack_checksum=0")
    try:
        got = talk("inject", ["PASV", "PASV"])
    finally:
        nsx("fa-gw", "sysctl -qw net.netfilter.nf_conntrack_checksum=1")
    log = t.log()[log0:]
    want = [OK, "227 Entering Passive Mod (203,0,113,5,195,84).\r\n"]
    expect(got == want, "client got %r, want %r", got, want)
    opened = sorted(set(re.findall(r"public=203\.0\.113\.5:(\d+)", log)))
    expect(opened == ["50000", "50004"], "pinholes opened for ports %s, want 50000 and 50004 only", opened)
    expect("event=dropped reason=bad-checksum" in log, "the bad-checksum segment was not dropped and logged")


def full_segment(t):
    # The 227 ends a segment the server filled to its MSS; growing it must not push it past the MTU.
    got = talk("fullmss", ["HELP\r\nPASV"])[0]
    m = re.match(r"214-mss=(\d+)\r\n", got)
    expect(m, "client got %r", got[:200])
    mss = int(m.group(1))
    expect(mss == 1460 - 64 - 12, "the server's MSS is %d, not the client's 1460 lowered by 64 (and 12 for "
           "timestamps)", mss)
    expect(got.endswith("214 end\r\n227 (203,0,113,5,195,80).\r\n") and len(got) == mss + 1, "client got %d bytes ending %r",
           len(got), got[-80:])


def checks(t):
    for case, what in UNTOUCHED.items():
        yield "%s: passed untouched, nothing opened" % what, passes_untouched(case, "PASV")
    yield "229 with port 65536: passed untouched, nothing opened", passes_untouched("port65536", "EPSV")
    yield "a 227 that answers no PASV: passed untouched, nothing opened", passes_untouched("unsolicited", "NOOP")
    yield "after AUTH TLS (234) nothing is parsed", tls_opaque
    yield "a 227 sent by the client opens nothing", from_client
    yield "a connection whose first client line is not FTP is never parsed (control: NOOP is)", not_ftp
    yield "a 227 split seven bytes per segment is rewritten whole and arms one pinhole", split_seven
    yield ("forged segments: a retransmission with other bytes, a bad checksum and an out-of-window 227 "
           "open nothing; a 227 in IP fragments is rewritten", injected)
    yield "a 227 at the end of a full-MSS segment is rewritten and still fits (MSS lowered by 64)", full_segment
    # Finer than the sender's window lets it go unacknowledged: held 2 s, then released untouched.
    yield ("a 227 split one byte per segment: released untouched after the hold limit, nothing opened",
           passes_untouched("onebyte", "PASV"))
