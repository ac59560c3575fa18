"""Active mode (PORT and EPRT) from a LAN client behind masquerade to servers outside."""
from lab import OUTSIDE

GATEWAYS = ("kernel", "ftp-alg")


def checks(t):
    for s in OUTSIDE:
        yield "curl active EPRT LAN->%s 1MiB" % s, lambda t, s=s: t.curl(s, True, ns="fa-lc", active=True)
        yield ("curl active PORT LAN->%s 1MiB" % s,
               lambda t, s=s: t.curl(s, True, ns="fa-lc", active=True, eprt=False))
        yield "ftplib 20 active transfers on one connection LAN->%s" % s, lambda t, s=s: t.ftplib(s, 20, "port")
    yield "lftp active LAN->vsftpd-out 1MiB", lambda t: t.lftp("vsftpd-out", epsv=False, active=True)
    if not t.quick:
        yield ("curl active PORT LAN->vsftpd-out 100MiB",
               lambda t: t.curl("vsftpd-out", True, name="f100M", ns="fa-lc", active=True, eprt=False, timeout=120))
