"""status --json against a live session; reload with a bad and a good file under it; status without a daemon."""
import os
import shutil
import signal
import time

from lab import HERE, expect, sh

GATEWAYS = ("own",)
SHIPPED = os.path.join(HERE, "..", "..", "conf", "ftp-alg.conf")


def wait_for(cond, seconds):
    deadline = time.time() + seconds
    while not cond() and time.time() < deadline:
        time.sleep(0.1)
    return cond()


def status_and_reload(t):
    conf = os.path.join(t.lab.work, "ftp-alg.conf")
    shutil.copy(SHIPPED, conf)
    with open(conf, "a") as f:
        f.write("PinholeTimeout = 45\n")
    t.lab.start_alg(t.binary, ["--config", conf, "--control-socket", t.ctl])
    try:
        with t.held("fa-c", "203.0.113.1", "--announce-only") as c:
            ann = c.read()
            st = t.status()
            mine = [x for x in st["sessions"] if x["client"].startswith("203.0.113.10:")]
            expect(len(mine) == 1, "status does not list the client: %s", st)
            sess = mine[0]
            expect(sess["server"] == "192.0.2.10:21" and sess["public"] == "203.0.113.1:21" and sess["nat"] == "dnat",
                   "wrong session fields: %s", sess)
            # The 227 kept its length (its text gave way): a rewrite, no offset.
            expect(sess["seq_offset"]["server"] == 0 and sess["rewrites"] == 1, "wrong rewrite bookkeeping: %s", sess)
            holes = sess["pinholes"]
            expect(len(holes) == 1 and holes[0]["public"] == "203.0.113.1:%d" % ann["port"] and
                   40 <= holes[0]["expires_in"] <= 45, "wrong pinhole: %s", holes)
            expect(st["queue_path"] in ("native nft queue", "xt NFQUEUE via nft_compat"), "queue path missing")
            text = sh([t.binary, "status", "--control-socket", t.ctl]).stdout
            expect("203.0.113.10:" in text and "pinhole 203.0.113.1:%d" % ann["port"] in text,
                   "text status lacks the session:\n%s", text)
            # A bad file is refused, names its line, and changes nothing.
            with open(conf, "a") as f:
                f.write("PassivePorts = 9-8\n")
            r = sh([t.binary, "reload", "--control-socket", t.ctl], check=False)
            expect(r.returncode == 1 and "%s:" % conf in r.stdout, "bad reload: rc=%d %r", r.returncode, r.stdout)
            shutil.copy(SHIPPED, conf)
            r = sh([t.binary, "reload", "--control-socket", t.ctl], check=False)
            expect(r.returncode == 0 and "reloaded" in r.stdout, "good reload: rc=%d %r", r.returncode, r.stdout)
            t.lab.alg.send_signal(signal.SIGHUP)  # ip netns exec execs the daemon: this is its pid
            wait_for(lambda: t.log().count("event=reload ") >= 2, 3)
            # The armed pinhole and the session survived both.
            expect(c.say("go").get("sha256_ok"), "the live session broke across reloads")
            # Use is accounted on the daemon's one-second tick.
            expect(wait_for(lambda: t.status()["counters"]["pinholes_used"] >= 1, 3),
                   "the used pinhole was not counted: %s", t.status()["counters"])
            expect("event=reload-refused" in t.log() and t.log().count("event=reload ") >= 2, "reloads not logged")
    finally:
        t.lab.stop_alg()


def unreachable(t):
    r = sh([t.binary, "status", "--control-socket", os.path.join(t.lab.work, "none.sock")], check=False)
    expect(r.returncode == 1 and "cannot reach the daemon" in r.stderr, "rc=%d %r", r.returncode, r.stderr)


def checks(t):
    yield ("status --json lists the live session; bad reload refused, good reload and SIGHUP keep it working",
           status_and_reload)
    yield "status without a daemon: a clear error, exit 1", unreachable
