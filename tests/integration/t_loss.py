"""Thirty rewrites on one connection, under random loss both ways and pipelined in one write."""
import os
import re
import time

from lab import DATA_DIR, HERE, expect, last_json, nsx

GATEWAYS = ("ftp-alg",)

# At the client, both ways: retransmissions, SACK and partial ACKs around rewrites (same-length since
# the free text absorbs the difference; length-changing ones under loss are unit-tested in test_stream).
LOSS = ("table inet loss {\n"
        " chain i { type filter hook input priority 0; tcp sport 21 numgen random mod 5 == 0 counter drop; }\n"
        " chain o { type filter hook output priority 0; tcp dport 21 numgen random mod 8 == 0 counter drop; }\n"
        "}\n")


def many_rewrites(t, pipeline, loss, keep=True):
    if loss:
        nsx("fa-c", "nft -f -", input=LOSS)
    try:
        r = nsx("fa-c", ["python3", os.path.join(HERE, "pipelined.py"), "--host", "203.0.113.1", "--path",
                         "/%s/f1M" % DATA_DIR, "--count", "30"] + (["--pipeline"] if pipeline else []),
                check=False, timeout=240)
        dropped = nsx("fa-c", "nft list table inet loss").stdout if loss else ""
    finally:
        if loss:
            nsx("fa-c", "nft delete table inet loss", check=False)
    res = last_json(r)
    if keep:
        # Each rewrite keeps the line's length (the free text gives up the bytes the tuple needs).
        bad = [x for x in res["lines"]
               if not re.match(r"227 Entering Passive Mo(de?)? *\(203,0,113,1,\d+,\d+\)\.\r\n$", x)
               or len(x) != len("227 Entering Passive Mode (192,0,2,10,") + len(x.split(",", 4)[4])]
    else:
        # KeepReplyLength = no: every line one byte longer, every later byte moved by the kernel's seqadj.
        bad = [x for x in res["lines"] if not re.match(r"227 Entering Passive Mode \(203,0,113,1,\d+,\d+\)\.\r\n$", x)]
    expect(len(res["lines"]) == 30 and not bad, "%d replies (%s), wrong ones: %r",
           len(res["lines"]), res.get("error"), bad[:3])
    expect(res["sha256"] == t.files["f1M"], "the transfer through the last one failed: %s", res.get("error"))
    expect(not loss or re.search(r"packets [1-9]\d* bytes", dropped),
           "the loss rules dropped nothing: the test proved nothing")
    # The client has quit; its unused pinholes must go with the connection, even if the
    # close itself needed retransmissions. Later checks count the armed pinholes.
    deadline = time.time() + 15
    while t.elements("once4") and time.time() < deadline:
        time.sleep(0.1)
    if t.elements("once4"):
        ct = nsx("fa-gw", "conntrack -L -p tcp --dport 21", check=False).stdout
        raise AssertionError("pinholes outlived the control connection: %s; conntrack: %s" % (t.elements("once4"), ct))


def checks(t):
    yield ("30 PASV on one connection under random loss both ways: every 227 rewritten, then a transfer",
           lambda t: many_rewrites(t, False, True))
    yield ("30 PASV pipelined in one write: every 227 rewritten, then a transfer",
           lambda t: many_rewrites(t, True, False))
