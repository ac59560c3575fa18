"""Negative control: without any ALG the lab reproduces the problem (the 227 carries a private address)."""
from lab import V6_CLIENT, V6_ROUTED_SERVER, expect

GATEWAYS = ("none",)


def ipv6_epsv_blocked(t):
    try:
        t.curl6("fa-c", V6_CLIENT, V6_ROUTED_SERVER, active=False, timeout=4)
    except AssertionError:
        # The control connection works; it is the data connection the firewall stops.
        expect("< 229 " in t.last_curl6, "the control connection itself failed:\n%s", t.last_curl6[-800:])
        return
    raise AssertionError("IPv6 EPSV passed the routed firewall without an ALG")


def pasv_blocked(t):
    try:
        t.curl("vsftpd", epsv=False, timeout=4)
    except AssertionError as e:
        if "timed out" not in str(e) and "Failed to connect" not in str(e):
            raise
        return
    raise AssertionError("passive FTP worked without an ALG: the lab does not reproduce NAT")


def checks(t):
    yield "IPv6 EPSV through the routed stateful firewall fails without an ALG", ipv6_epsv_blocked
    yield "PASV through NAT fails without an ALG", pasv_blocked
