"""Data connections are DNAT flows in the kernel: they pass the firewall and never reach user space."""
import json
import re
import time

from lab import expect, nsx

GATEWAYS = ("ftp-alg",)


def dnat_counter():
    r = nsx("fa-gw", "nft -j list chain ip lab forward")
    for x in json.loads(r.stdout)["nftables"]:
        if "rule" in x and "dnat" in json.dumps(x["rule"]["expr"]):
            return [e for e in x["rule"]["expr"] if "counter" in e][0]["counter"]["packets"]
    raise AssertionError("no 'ct status dnat' rule in the lab")


def dnat_flows(t):
    # One PASV transfer: the control SYN and the data SYN are each a new DNAT flow
    # (a RELATED data connection, as the kernel helper makes, would count once).
    before = dnat_counter()
    t.curl("vsftpd", epsv=False)
    n = dnat_counter() - before
    expect(n == 2, "'ct status dnat accept' saw %d new flows, want 2 (control and data)", n)


def no_data_in_userspace(t):
    # Only control packets cross the queue: a 100 MiB transfer (about 70,000 data
    # packets) costs its control session a few dozen queued packets.
    before = set(re.findall(r"session=(\d+) event=close", t.log()))
    t.curl("vsftpd", epsv=False, name="f1M" if t.quick else "f100M", timeout=120)
    time.sleep(0.5)
    closes = [(sid, int(n)) for sid, n in re.findall(r"session=(\d+) event=close rewrites=\d+ packets=(\d+)", t.log())
              if sid not in before]
    expect(closes, "no session close logged")
    sid, n = closes[-1]
    expect(n < 100, "session %s queued %d packets for one transfer", sid, n)
    expect("pasv4" in nsx("fa-gw", "nft list table inet ftp_alg").stdout, "table contents unexpected")


def checks(t):
    yield "data connections pass the stateful firewall as DNAT flows", dnat_flows
    yield ("data bytes never reach user space (<100 queued packets for a %s transfer)" %
           ("1 MiB" if t.quick else "100 MiB"), no_data_in_userspace)
