"""Saving the ruleset: ftp-alg's table prints as syntax nft reads, and the documented way to persist the
administrator's ruleset leaves ftp-alg's table out and survives a reload with flush ruleset."""
import os
import re

from lab import HERE, expect, nsx

GATEWAYS = ("own",)

# The one-liner README.md and ftp-alg(8) document, verbatim.
PERSIST = ("{ echo 'flush ruleset'; nft list tables | grep -vx 'table inet ftp_alg' | "
           "while read -r _ f t; do nft list table \"$f\" \"$t\"; done; } > /etc/nftables.conf.new && "
           "nft -c -f /etc/nftables.conf.new && mv /etc/nftables.conf.new /etc/nftables.conf")


def readable_by_nft(text):
    """ftp-alg's table as nft lists it, less what can never be loaded from text, under another name."""
    # The ct expectation objects (size 0 and dport 0, which nft refuses to read) and the rules using them.
    text = re.sub(r"\n\tct expectation \w+ \{.*?\n\t\}\n", "\n", text, flags=re.S)
    keep = []
    for line in text.split("\n"):
        if "ct expectation set" in line:
            continue
        # The xt NFQUEUE rules print without their target where the kernel lacks the native queue.
        if "ct direction" in line and "queue" not in line:
            continue
        # nft 1.0.6 aborts (netlink_gen_expr: dreg < ctx->reg_low) generating the IPv6 pinhole rule.
        if "delete @pasv6" in line:
            continue
        keep.append(line)
    text = "\n".join(keep)
    text = text.replace("table inet ftp_alg {", "table inet ftp_alg_copy {").replace("\tflags owner\n", "")
    return re.sub(r"# Warning: table .*", "", text)


def ruleset_save(t):
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        ruleset = nsx("fa-gw", "nft list ruleset").stdout
        expect("[invalid type]" not in ruleset, "a set prints an invalid type:\n%s", ruleset)
        expect(re.search(r"ct expectation seqadj4 \{[^}]*timeout \d", ruleset),
               "the expectation object prints no timeout value:\n%s", ruleset)
        own = ruleset[ruleset.index("table inet ftp_alg {"):]
        own = own[:own.index("\n}") + 2]
        expect("typeof ip length . @th,96,8" in own and "40 . 0x50" in own, "pure_ack4 prints raw:\n%s", own)
        path = os.path.join(t.lab.work, "ftp_alg.nft")
        with open(path, "w") as f:
            f.write(readable_by_nft(own))
        r = nsx("fa-gw", ["nft", "-c", "-f", path], check=False)
        expect(r.returncode == 0, "nft -c -f of ftp-alg's listed table: rc=%d %s", r.returncode, r.stderr[-600:])

        # The documented persist method.
        for doc in ("README.md", os.path.join("docs", "ftp-alg.8")):
            with open(os.path.join(HERE, "..", "..", doc)) as f:
                text = f.read().replace("\\-", "-").replace("\\e", "\\").replace("\\(aq", "'")
            expect(PERSIST in text, "%s does not document the persist one-liner", doc)
        conf = os.path.join(t.lab.work, "nftables.conf")
        r = nsx("fa-gw", ["sh", "-c", PERSIST.replace("/etc/nftables.conf", conf)], check=False)
        expect(r.returncode == 0, "the persist one-liner failed: %s", r.stderr)
        with open(conf) as f:
            saved = f.read()
        expect("ftp_alg" not in saved and "table ip lab {" in saved and saved.startswith("flush ruleset\n"),
               "the saved ruleset:\n%s", saved)
        r = nsx("fa-gw", ["nft", "-c", "-f", conf], check=False)
        expect(r.returncode == 0, "nft -c -f of the saved ruleset: %s", r.stderr[-600:])
        # The administrator reloads the saved ruleset: flush ruleset skips the owned table.
        r = nsx("fa-gw", ["nft", "-f", conf], check=False)
        expect(r.returncode == 0, "nft -f of the saved ruleset: %s", r.stderr[-600:])
        expect("table inet ftp_alg" in t.tables(), "flush ruleset removed ftp-alg's table:\n%s", t.tables())
        expect(t.lab.alg.poll() is None, "the daemon died")
        t.curl("vsftpd", epsv=False)
    finally:
        t.lab.stop_alg()


def checks(t):
    yield "nft list ruleset: ftp-alg's table reads back; the persist one-liner leaves it out and reloads", ruleset_save
