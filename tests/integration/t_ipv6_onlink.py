"""IPv6 routed: an outside client on the gateway's WAN link itself (on-link, or behind a more specific route
there) is outside by its interface, and gets its pinholes; Outside= names an uplink without a default route."""
import os

from lab import V6_CLIENT, V6_ROUTED_SERVER, expect, nsx

GATEWAYS = ("own",)
ONLINK_CLIENT = "2001:db8:1::10"  # fa-c on br-out's own prefix
SPECIFIC_CLIENT = "2001:db8:200::10"  # fa-c, behind a /64 route of the gateway's via fa-c


def onlink(t):
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        t.curl6("fa-c", ONLINK_CLIENT, V6_ROUTED_SERVER, active=False)
        t.ftplib6("fa-c", ONLINK_CLIENT, V6_ROUTED_SERVER, 5, "epsv")
        expect("event=unclassified" not in t.log(), "a session was not classified")
    finally:
        t.lab.stop_alg()


def more_specific(t):
    nsx("fa-c", "ip addr add %s/128 dev lo nodad" % SPECIFIC_CLIENT)
    nsx("fa-gw", "ip -6 route add 2001:db8:200::/64 via 2001:db8:1::10 dev br-out")
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        t.curl6("fa-c", SPECIFIC_CLIENT, V6_ROUTED_SERVER, active=False)
    finally:
        t.lab.stop_alg()
        nsx("fa-gw", "ip -6 route del 2001:db8:200::/64", check=False)
        nsx("fa-c", "ip addr del %s/128 dev lo" % SPECIFIC_CLIENT, check=False)


def named_uplink(t):
    # No default route: the Internet is a few prefixes via fa-c; only Outside= says br-out is the outside.
    conf = os.path.join(t.lab.work, "outside.conf")
    with open(conf, "w") as f:
        f.write("Outside = br-out\n")
    nsx("fa-gw", "ip -6 route del default")
    nsx("fa-gw", "ip -6 route add 2001:db8:100::/48 via 2001:db8:1::10 dev br-out")
    try:
        t.lab.start_alg(t.binary, ["--config", conf, "--control-socket", t.ctl])
        try:
            t.curl6("fa-c", V6_CLIENT, V6_ROUTED_SERVER, active=False)
        finally:
            t.lab.stop_alg()
    finally:
        nsx("fa-gw", "ip -6 route del 2001:db8:100::/48", check=False)
        nsx("fa-gw", "ip -6 route add default via 2001:db8:1::10")


def checks(t):
    yield "IPv6 routed: an on-link WAN client transfers through EPSV", onlink
    yield "IPv6 routed: a WAN client behind a more specific route transfers through EPSV", more_specific
    yield "IPv6 routed: Outside = br-out without a default route: the client transfers", named_uplink
