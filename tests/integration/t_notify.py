"""systemd notification: READY=1 and STATUS= with the session count; a restart after SIGTERM reuses the
control socket the unprivileged daemon could not remove."""
import os
import socket
import time

from lab import expect

GATEWAYS = ("own",)


def messages(sock, seconds, until):
    got = []
    deadline = time.time() + seconds
    while time.time() < deadline and not until(got):
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
    return got


def notify_and_restart(t):
    path = os.path.join(t.lab.work, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o777)  # the daemon sends as nobody
    os.environ["NOTIFY_SOCKET"] = path
    try:
        t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        got = messages(sock, 3, lambda g: "READY=1" in g and any(m.startswith("STATUS=") for m in g))
        expect("READY=1" in got, "no READY=1: %s", got)
        expect("STATUS=0 sessions, 0 pinholes armed" in got, "no first STATUS=: %s", got)
        with t.held("fa-c", "203.0.113.1", "--announce-only") as c:
            c.read()
            got = messages(sock, 4, lambda g: "STATUS=1 session, 1 pinhole armed" in g)
            expect("STATUS=1 session, 1 pinhole armed" in got, "STATUS= did not follow the session: %s", got)
            # Nothing changes: nothing more is sent.
            quiet = messages(sock, 2.5, lambda g: False)
            expect(not quiet, "STATUS= sent without a change: %s", quiet)
        rc = t.lab.stop_alg()
        got = messages(sock, 1, lambda g: "STOPPING=1" in g)
        expect(rc == 0 and "STOPPING=1" in got, "stop: rc=%s %s", rc, got)
    finally:
        sock.close()
        t.lab.stop_alg()
    # The socket was made as root and the daemon ran as nobody: it is still there. A new daemon takes it.
    expect(os.path.exists(t.ctl), "no stale control socket to test with")
    t.lab.start_alg(t.binary, ["--control-socket", t.ctl])
    try:
        expect("event=no-control-socket" not in t.log(), "the stale socket was not reused:\n%s", t.log()[-600:])
        expect(t.status()["queue_path"], "no status from the restarted daemon")
    finally:
        t.lab.stop_alg()


def checks(t):
    yield "NOTIFY_SOCKET gets READY=1 and STATUS= on change; a restart reuses the stale socket", notify_and_restart
