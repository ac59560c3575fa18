"""Live sessions survive kill -9 and a restart: their sequence offsets live in the kernel."""
from contextlib import ExitStack

from lab import SERVERS, expect

GATEWAYS = ("own",)


def restart_keeps_sessions(t):
    # Sessions whose rewrites changed the length (both signs) keep working afterwards, PASV included.
    t.lab.start_alg(t.binary)
    try:
        with ExitStack() as stack:
            clients = []
            for server in ("vsftpd", "vsftpd-short"):
                c = stack.enter_context(t.held("fa-c", SERVERS[server][0], "--count", "10", "--pause-after", "5"))
                clients.append(c)
                expect(c.read().get("paused") == 5, "first transfers failed on %s", server)
            t.lab.kill_alg()
            t.lab.start_alg(t.binary)
            for c in clients:
                res = c.say("go")
                expect(res["ok"] == 10, "after the restart: %s\n%s", res, t.log()[-2500:])
            expect(t.log().count("how=adopted") >= 2, "the restarted daemon did not adopt the sessions")
    finally:
        t.lab.stop_alg()


def checks(t):
    yield "kill -9 and restart: live sessions (both signs of length change) keep working", restart_keeps_sessions
