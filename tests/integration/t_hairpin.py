"""A LAN client reaching a LAN server through its public address (hairpin NAT)."""
GATEWAYS = ("kernel", "ftp-alg")


def checks(t):
    yield "hairpin: LAN client PASV to the public address", lambda t: t.curl("vsftpd", False, ns="fa-lc")
    yield "hairpin: LAN client EPSV to the public address", lambda t: t.curl("vsftpd", True, ns="fa-lc")
