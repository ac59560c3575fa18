"""Two workers: the queue rules hash each client's address to one worker, and both serve."""
import re

from lab import V6_CLIENT, V6_NAT_PUBLIC, expect, nsx

GATEWAYS = ("own",)
EXTRA = ["203.0.113.%d" % i for i in range(11, 20)]  # ten clients with 203.0.113.10


def two_workers(t):
    for a in EXTRA:
        nsx("fa-c", "ip addr add %s/24 dev eth0" % a)
    t.lab.start_alg(t.binary, ["--workers", "2", "--control-socket", t.ctl])
    try:
        first = t.log().count("event=open")
        for a in ["203.0.113.10"] + EXTRA:
            try:
                t.curl("vsftpd", epsv=False, source=a)
            except AssertionError as e:
                raise AssertionError("transfer from %s: %s" % (a, e))
        t.curl6("fa-c", V6_CLIENT, V6_NAT_PUBLIC, active=False)
        st = t.status()
        per = [w["sessions_opened"] for w in st["per_worker"]]
        expect(st["workers"] == 2 and st["queues"] == [21, 22, 23, 24] and len(per) == 2, "status: %s", st)
        expect(sum(per) == 11 and 0 not in per, "sessions per worker %s, want 11 spread over both", per)
        # Each session began at its SYN on its worker: no reply went to the other one.
        opens = re.findall(r"event=open how=(\S+)", t.log())[first:]
        expect(len(opens) == 11 and set(opens) == {"syn"}, "sessions opened as %s", opens)
        c = st["counters"]
        expect(c["pinholes_opened"] == 11, "%d pinholes for 11 transfers", c["pinholes_opened"])
        # The operation clocks count what the workers did: a packet each, a message of verdicts per burst
        # of packets (at most one per packet), a batch per pinhole.
        tm = st["timing"]
        expect(tm["packet"]["count"] == c["packets"] and 0 < tm["verdict"]["count"] <= tm["packet"]["count"] and
               tm["nft"]["count"] >= 11 and tm["packet"]["total_us"] > 0, "timing: %s, counters: %s", tm, c)
        r = nsx("fa-gw", "nft list table inet ftp_alg", check=False)
        expect(r.returncode == 0 and r.stdout.count("jhash ct original ip saddr mod 2") == 4,
               "nft cannot list the balancing rules: %s", r.stderr)
    finally:
        t.lab.stop_alg()
        for a in EXTRA:
            nsx("fa-c", "ip addr del %s/24 dev eth0" % a, check=False)


def checks(t):
    yield "two workers: each client's connections meet one worker, both serve, every transfer correct", two_workers
