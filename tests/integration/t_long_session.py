"""A mirror job's control connection: many transfers, each announcement replacing a used pinhole.

Each PASV after the first replaces the session's previous pinhole, which its
data connection has already used (so its entries are gone). Removing a gone
element with a plain delete makes the kernel refuse the whole batch and wait
for an RCU grace period (~10 ms a PASV); the daemon must not ask that.
"""
from lab import expect

GATEWAYS = ("own",)


def many_transfers(t):
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        run(t)
    finally:
        t.lab.stop_alg()


def run(t):
    before = t.status()
    r = t.ftplib("vsftpd", 40, "both")
    expect(r["ok"] == 40 and not r["bad"], "transfers failed: %s", r)
    after = t.status()
    expect(after["nft_batches_failed"] == before["nft_batches_failed"],
           "nftables refused %d batches during 40 transfers on one connection",
           after["nft_batches_failed"] - before["nft_batches_failed"])
    expect(after["counters"]["errors"] == before["counters"]["errors"], "errors counted: %s", after["counters"])


def checks(t):
    yield "40 transfers on one control connection: every pinhole replaced, no batch refused", many_transfers
