"""The exact 227 lines before and after the rewrite, for a longer and a shorter public address: the
free text before "(" gives up or takes in the difference, so each line keeps its length (no offset)."""
import re

from lab import expect

GATEWAYS = ("ftp-alg",)
LINE = r"227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)\.\\x0d\\x0a$"
NEW = r"227 (Entering Passive Mo(?:de?)? *)\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)\.\\x0d\\x0a$"


def rewritten_lines(t):
    t.ftplib("vsftpd", 1, "pasv")
    t.ftplib("vsftpd-short", 1, "pasv")
    lines = re.findall(r'event=pasv client=203\.0\.113\.10 public=(\S+) server=(\S+) pinhole=\d+s '
                       r'old="([^"]*)" new="([^"]*)"', t.log())
    longer = [x for x in lines if x[1] == "192.0.2.10"]
    shorter = [x for x in lines if x[1] == "198.51.100.100"]
    expect(longer and shorter, "no rewrite logged for both servers")
    for pub, srv, old, new in (longer[-1], shorter[-1]):
        m_old, m_new = re.match(LINE, old), re.match(NEW, new)
        expect(m_old and m_new, "unexpected lines %r -> %r", old, new)
        expect(".".join(m_old.group(1, 2, 3, 4)) == srv, "old line does not name the server: %r", old)
        pub_addr, pub_port = pub.rsplit(":", 1)
        expect(".".join(m_new.group(2, 3, 4, 5)) == pub_addr, "new line does not name the public address: %r", new)
        expect(int(m_new.group(6)) * 256 + int(m_new.group(7)) == int(pub_port),
               "new line's port differs from the published one")
        expect(len(new) == len(old), "the rewrite changed the length: %r -> %r", old, new)
        # The tuple alone would lengthen by 1 (vsftpd) or shorten by 3 (198.51.100.100): the text took it.
        tuple_delta = len(",".join(m_new.group(2, 3, 4, 5, 6, 7))) - len(",".join(m_old.group(1, 2, 3, 4, 5, 6)))
        expect(len(m_new.group(1)) == len("Entering Passive Mode ") - tuple_delta,
               "the free text did not absorb the difference: %r -> %r", old, new)
    expect(re.match(NEW, longer[-1][3]).group(1) == "Entering Passive Mod ",
           "expected the vsftpd rewrite to trim one byte of text: %r", longer[-1][3])


def checks(t):
    yield "exact rewritten 227 lines at their own length (text -1 for +1, +3 spaces for -3)", rewritten_lines
