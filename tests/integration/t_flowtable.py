"""An admin's flowtable (`flow add @ft`) next to ftp-alg, and the rules that keep FTP control off it.

This kernel (6.18 here, CONFIG_NF_FLOW_TABLE not set) refuses a flowtable:
the first check asserts that refusal, and the offload checks run only on a
kernel that accepts one. What a rule meant to keep control connections out
of `flow add` really matches is measured with counters on any kernel: the nft
CLI merges `tcp sport != 21 tcp dport != 21` into one comparison of both
ports, which matches every packet but one with both ports 21, and
`tcp dport != 21` matches the server's replies, which offload the whole
connection. `ct original proto-dst != 21` matches exactly the other
connections.
"""
import json
import subprocess
import time

from lab import SERVERS, expect, nsx

GATEWAYS = ("own",)

FLOWTABLE = "flowtable ft { hook ingress priority 0; devices = { br-out, br-lan }; }"

# Each counter stands where an admin would put `flow add @ft`; the ctl and
# all rules give what the others are compared with.
MATCHES = """
table inet admin {
  chain forward { type filter hook forward priority filter; policy accept;
    meta l4proto tcp counter comment "all"
    meta l4proto tcp ct original proto-dst 21 counter comment "ctl"
    meta l4proto tcp ct original proto-dst 21 tcp dport 21 counter comment "ctl_to_server"
    tcp sport != 21 tcp dport != 21 counter comment "merged"
    tcp dport != 21 counter comment "dport"
    meta l4proto tcp ct original proto-dst != 21 counter comment "recommended"
  }
}
"""

OFFLOAD = """
table inet admin {
  %s
  chain forward { type filter hook forward priority filter; policy accept;
    meta l4proto tcp ct original proto-dst 21 counter comment "ctl"
    meta l4proto tcp ct original proto-dst != 21 counter comment "data"
    %s flow add @ft
  }
}
"""
EVERYTHING = "ip protocol tcp"
RECOMMENDED = "meta l4proto tcp ct original proto-dst != 21"


def load(text):
    nsx("fa-gw", "nft delete table inet admin", check=False)
    nsx("fa-gw", ["nft", "-f", "-"], input=text)


def counters():
    """comment -> (packets, bytes) of the admin's forward chain."""
    out = {}
    for item in json.loads(nsx("fa-gw", "nft -j list chain inet admin forward").stdout)["nftables"]:
        rule = item.get("rule")
        if rule and "comment" in rule:
            c = [e["counter"] for e in rule["expr"] if "counter" in e][0]
            out[rule["comment"]] = (c["packets"], c["bytes"])
    return out


def control_conntracks(client="203.0.113.10"):
    """conntrack -L lines of the client's connections to port 21."""
    r = nsx("fa-gw", "conntrack -L -p tcp --orig-src %s --orig-port-dst 21" % client, check=False)
    return [x for x in r.stdout.splitlines() if "dport=21 " in x]


def clean():
    nsx("fa-gw", "nft delete table inet admin", check=False)
    nsx("fa-gw", "conntrack -F", check=False)


def kernel_refuses(t):
    r = nsx("fa-gw", ["nft", "-f", "-"], input=OFFLOAD % (FLOWTABLE, EVERYTHING), check=False)
    clean()
    expect(r.returncode == 1 and "Could not process rule: No such file or directory" in r.stderr,
           "the flowtable was not refused as expected: rc=%d %s", r.returncode, r.stderr)


def exclusion_rules(t):
    load(MATCHES)
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        # vsftpd-short: every 227 shortens by 3, so the server's replies carry sequence offsets.
        res = t.ftplib("vsftpd-short", 3, "pasv")
        c = counters()
    finally:
        t.lab.stop_alg()
        clean()
    expect(res["ok"] == 3, "transfers failed: %s", res)
    allp, ctl = c["all"][0], c["ctl"][0]
    expect(ctl >= 20 and c["ctl_to_server"][0] >= 10, "too few control packets counted: %s", c)
    expect(c["recommended"][1] >= 3 << 20, "the data did not cross the forward chain: %s", c)
    expect(c["merged"][0] == allp,
           "tcp sport != 21 tcp dport != 21 no longer matches every packet (%d of %d): %s", c["merged"][0], allp, c)
    expect(c["dport"][0] == allp - c["ctl_to_server"][0] and c["dport"][0] > allp - ctl,
           "tcp dport != 21 should match the data and the server's control replies: %s", c)
    expect(c["recommended"][0] == allp - ctl, "ct original proto-dst != 21 should match all but control: %s", c)


# --- the offload checks: they run only on a kernel with flowtables -------------------------------


def control_not_offloaded(t):
    load(OFFLOAD % (FLOWTABLE, EVERYTHING))
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        with t.held("fa-c", SERVERS["vsftpd-short"][0], "--count", "12", "--pause-after", "6") as c:
            expect(c.read().get("paused") == 6, "first transfers failed")
            before, lines = counters()["ctl"][0], control_conntracks()
            expect(len(lines) == 1 and "[OFFLOAD]" not in lines[0] and "[HW_OFFLOAD]" not in lines[0],
                   "ftp-alg's control conntrack offloaded: %s", lines)
            res = c.say("go")
        expect(res["ok"] == 12, "transfers after offload failed: %s", res)
        expect(res["replies"][-1].split("(")[1].startswith("203,0,113,4,"), "227 not rewritten: %s", res["replies"])
        expect(counters()["ctl"][0] >= before + 30, "control packets no longer cross the forward chain")
    finally:
        t.lab.stop_alg()
        clean()


def data_offloaded(t):
    load(OFFLOAD % (FLOWTABLE, EVERYTHING))
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        t.curl("vsftpd", epsv=False, name="f100M", timeout=60)
        c = counters()
    finally:
        t.lab.stop_alg()
        clean()
    # Offloaded after its handshake, the data connection's 100 MiB go past the forward chain.
    expect(c["data"][1] < 10 << 20, "the data connection was not offloaded: %s", c)


def predating_session(t):
    for rule, offloaded in ((EVERYTHING, True), (RECOMMENDED, False)):
        load(OFFLOAD % (FLOWTABLE, rule))
        mark = len(t.log())
        try:
            with t.held("fa-c", SERVERS["vsftpd-short"][0], "--count", "1", "--pause-after", "0") as c:
                expect(c.read().get("paused") == 0, "login without a daemon failed")
                time.sleep(1)
                lines = control_conntracks()
                expect(len(lines) == 1 and ("[OFFLOAD]" in lines[0]) == offloaded,
                       "%s: control conntrack offloaded should be %s: %s", rule, offloaded, lines)
                t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
                res = c.say("go")
            seen = "event=pasv client=203.0.113.10" in t.log()[mark:]
            if offloaded:
                # Its packets leave at the ingress hook: no 227 reaches ftp-alg, the client is told the private
                # address and its data connection goes nowhere.
                expect(res["ok"] == 0 and not seen, "an offloaded session was rewritten: %s", res)
            else:
                expect(res["ok"] == 1 and seen, "the session was not adopted and rewritten: %s", res)
        finally:
            t.lab.stop_alg()
            clean()


def flowtables_supported():
    r = subprocess.run(["ip", "netns", "exec", "fa-gw", "nft", "-c", "-f", "-"], input=OFFLOAD % (FLOWTABLE, EVERYTHING),
                       capture_output=True, text=True)
    return r.returncode == 0


def checks(t):
    if not flowtables_supported():
        yield "this kernel refuses a flowtable (ENOENT): nothing is offloaded", kernel_refuses
    yield ("what keeps control off `flow add`, by counters: `tcp sport != 21 tcp dport != 21` matches every "
           "packet, `tcp dport != 21` the server's control replies, `ct original proto-dst != 21` only data"),\
        exclusion_rules
    if flowtables_supported():
        yield "flow add on everything: ftp-alg's control connections stay off the flowtable, 12 PASVs", \
            control_not_offloaded
        yield "flow add on everything: a pinhole's 100 MiB transfer is offloaded and arrives whole", data_offloaded
        yield ("a session begun before ftp-alg: offloaded and never rewritten under `flow add` on everything; "
               "kept off and adopted with `ct original proto-dst != 21`"), predating_session
