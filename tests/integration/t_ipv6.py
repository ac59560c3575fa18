"""IPv6: EPSV and EPRT through the routed prefix and through NAT66."""
from lab import V6_CLIENT, V6_NAT_LAN, V6_NAT_PUBLIC, V6_OUT_SERVER, V6_ROUTED_LAN, V6_ROUTED_SERVER

GATEWAYS = ("kernel", "ftp-alg")


def checks(t):
    yield ("IPv6 routed: curl EPSV outside -> LAN server",
           lambda t: t.curl6("fa-c", V6_CLIENT, V6_ROUTED_SERVER, active=False))
    yield ("IPv6 routed: ftplib 20 EPSV transfers outside -> LAN server",
           lambda t: t.ftplib6("fa-c", V6_CLIENT, V6_ROUTED_SERVER, 20, "epsv"))
    yield ("IPv6 NAT66: curl EPSV outside -> port-forwarded server",
           lambda t: t.curl6("fa-c", V6_CLIENT, V6_NAT_PUBLIC, active=False))
    yield ("IPv6 routed: curl EPRT LAN client -> outside server",
           lambda t: t.curl6("fa-lc", V6_ROUTED_LAN, V6_OUT_SERVER, active=True))
    yield ("IPv6 routed: ftplib 20 EPRT transfers LAN client -> outside server",
           lambda t: t.ftplib6("fa-lc", V6_ROUTED_LAN, V6_OUT_SERVER, 20, "port"))
    yield ("IPv6 NAT66: curl EPRT masqueraded LAN client -> outside server",
           lambda t: t.curl6("fa-lc", V6_NAT_LAN, V6_OUT_SERVER, active=True))
