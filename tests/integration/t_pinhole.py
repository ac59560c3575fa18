"""A pinhole opens for the rightful client alone, once, and goes with its control connection."""
import time

from lab import expect

GATEWAYS = ("ftp-alg",)


def single_use(t):
    with t.held("fa-c", "203.0.113.1", "--announce-only") as c:
        ann = c.read()
        expect(ann["host"] == "203.0.113.1", "227 names %s, not the public address", ann["host"])
        expect(len(t.elements("once4")) == 1, "expected exactly one armed pinhole, found %s", t.elements("once4"))
        expect(not t.connects("fa-x", ann["host"], ann["port"]), "the stranger reached the announced port")
        expect(len(t.elements("once4")) == 1, "the stranger's attempt consumed the pinhole")
        expect(c.say("go").get("sha256_ok"), "rightful client's transfer failed")
        expect(not t.elements("once4") and not t.elements("pasv4"),
               "pinhole still armed after its one use: once4=%s pasv4=%s", t.elements("once4"), t.elements("pasv4"))
        expect(not t.connects("fa-c", ann["host"], ann["port"]), "the pinhole opened twice")


def closed_with_session(t):
    with t.held("fa-c", "203.0.113.2", "--announce-then-quit") as c:
        ann = c.read()
        expect(len(t.elements("once4")) == 1 and len(t.elements("pasv4")) == 1,
               "expected one armed pinhole after %r: once4=%s pasv4=%s", ann["reply"], t.elements("once4"),
               t.elements("pasv4"))
        c.say("quit")
        deadline = time.time() + 3
        while (t.elements("once4") or t.elements("pasv4")) and time.time() < deadline:
            time.sleep(0.05)
        expect(not t.elements("once4") and not t.elements("pasv4"), "pinhole outlived its control connection")


def checks(t):
    yield "stranger refused, rightful client served, pinhole single-use", single_use
    yield "an unused pinhole is removed when its control connection ends", closed_with_session
