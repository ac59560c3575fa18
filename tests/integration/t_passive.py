"""Passive transfers from the outside client to every server behind the gateway, whole and correct."""
from lab import SERVERS

GATEWAYS = ("kernel", "ftp-alg")


def checks(t):
    for s in SERVERS:
        yield "curl PASV %s 1MiB" % s, lambda t, s=s: t.curl(s, epsv=False)
        yield "curl EPSV %s 1MiB" % s, lambda t, s=s: t.curl(s, epsv=True)
        yield "lftp PASV %s 1MiB" % s, lambda t, s=s: t.lftp(s, epsv=False)
    yield "lftp EPSV vsftpd 1MiB", lambda t: t.lftp("vsftpd", epsv=True)
    count = 20 if t.quick else 60
    for s in ("vsftpd", "vsftpd-short", "proftpd", "pure-ftpd"):
        yield ("ftplib %d transfers on one connection, %s, PASV" % (count, s),
               lambda t, s=s: t.ftplib(s, count, "pasv"))
    yield ("ftplib %d transfers on one connection, vsftpd, PASV+EPSV" % count,
           lambda t: t.ftplib("vsftpd", count, "both"))
    if not t.quick:
        yield "curl PASV vsftpd 100MiB", lambda t: t.curl("vsftpd", epsv=False, name="f100M", timeout=120)
