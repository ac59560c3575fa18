"""A control client that sends status and leaves at once costs the daemon nothing (no SIGPIPE death)."""
import socket

from lab import expect, nsx

GATEWAYS = ("own",)


def hit_and_run(t):
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        for _ in range(100):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(t.ctl)
            s.sendall(b"status\n")
            # Reset instead of a polite close, so the daemon's answer meets a dead peer.
            s.close()
            if t.lab.alg.poll() is not None:
                break
        expect(t.lab.alg.poll() is None, "the daemon died (exit %s):\n%s", t.lab.alg.returncode, t.log()[-800:])
        expect(t.status()["queue_path"], "the daemon no longer answers status")
        expect("table inet ftp_alg" in t.tables(), "the owned table is gone")
        t.curl("vsftpd", epsv=False)
    finally:
        t.lab.stop_alg()


def checks(t):
    yield "100 clients send status and close at once: the daemon keeps running and serving", hit_and_run
