#!/usr/bin/env python3
"""Failover test: ftp-alg on both gateways of the HA lab (hot standby).

  python3 tests/ha/test_failover.py --binary build/ftp-alg [--external-cache] [--transfers N]

Through gateway A: a passive session of the outside client (vsftpd's 227
grows by one byte: 192,0,2,10 -> 203,0,113,1) with PASV and EPSV transfers,
and an active session of the LAN client fh-l to the outside server (its PORT
grows by one byte: 192,0,2,20 -> 203,0,113,1), transfers checked by sha256.
Then A fails (its keepalived stops; keepalived's notify script runs
conntrackd -c and "ftp-alg takeover" on B), B takes the VIPs, and the checks
run; then A comes back (fail-back) and they run again. Prints PASS/FAIL per
check and ends with "N passed, M failed".

Checks marked [adoption] and [pinhole replication] are the daemon's HA work:
a session must keep working on the gateway that did not see it start (or saw
it before the peer carried it), and a data port announced by one gateway
must be usable through the other. See docs/HA.md for what passes.
"""
import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import halab  # noqa: E402
from halab import DATA_DIR, VIP_WAN, HaLab, nsx, sh  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Session:
    """tests/ha/session_client.py in the client namespace: one control connection, driven by commands."""

    def __init__(self, sha, ns="fh-c", host=VIP_WAN, path="f1M"):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, "python3", os.path.join(HERE, "session_client.py"),
                                   "--host", host, "--path", "/%s/%s" % (DATA_DIR, path), "--sha256", sha],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if not json.loads(self.p.stdout.readline() or "{}").get("ready"):
            raise AssertionError("the session did not log in")

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def result(self, timeout=30):
        if not select.select([self.p.stdout], [], [], timeout)[0]:
            raise AssertionError("no answer from the session client within %d s" % timeout)
        line = self.p.stdout.readline()
        if not line:
            raise AssertionError("the session client ended")
        return json.loads(line)

    def do(self, cmd):
        self.send(cmd)
        return self.result()

    def transfer(self, cmd):
        r = self.do(cmd)
        if not r.get("ok"):
            raise AssertionError("%s: %s (reply %r)" % (cmd, r.get("error"), r.get("reply")))
        return r

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
                self.p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()


class Test:
    def __init__(self, a):
        self.a = a
        self.passed = 0
        self.failed = 0
        self.files = halab.prepare_files()
        self.lab = HaLab(disable_external_cache=not a.external_cache)

    def check(self, name, fn):
        t0 = time.time()
        try:
            fn()
            self.passed += 1
            print("PASS %s (%.1fs)" % (name, time.time() - t0), flush=True)
        except Exception as e:
            self.failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
            if os.environ.get("FTP_ALG_TEST_TRACE"):
                traceback.print_exc()

    def new_session(self, mode, timeout=15):
        r = sh(self.lab.client(["--path", "/%s/f1M" % DATA_DIR, "--sha256", self.files["f1M"], "--mode", mode,
                                "--count", "2" if mode == "both" else "1"]), check=False, timeout=timeout + 30)
        try:
            res = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError("client output: %s %s" % (r.stdout, r.stderr))
        if res["bad"] or not res["ok"]:
            raise AssertionError("; ".join(res["errors"])[:300])
        return res

    def first_transfer_after(self, t0, limit=20):
        """Seconds from t0 until a new session's PASV transfer succeeds; prints the failed attempts."""
        while True:
            t = time.time()
            try:
                self.new_session("pasv", timeout=5)
                return time.time() - t0
            except (AssertionError, subprocess.TimeoutExpired) as e:
                print("  attempt at +%.2f s failed after %.2f s: %s" % (t - t0, time.time() - t, str(e)[:120]),
                      flush=True)
                if time.time() - t0 > limit:
                    raise AssertionError("no successful transfer within %d s" % limit)
                time.sleep(0.05)

    def control_seqadj(self, g):
        cts = [c for c in self.lab.conntracks(g) if c["orig"].get("dport") == 21 and
               c["orig"].get("sport") == self.sport and c.get("tcp_state") == "ESTABLISHED"]
        return cts[0].get("seqadj_reply") if cts else None

    def set_keys(self, g):
        """The public keys' first elements (who may connect) in g's once4 set."""
        r = nsx(halab.GW[g][0], "nft list set inet ftp_alg once4", check=False)
        if r.returncode != 0:
            raise AssertionError("nft list set once4 on %s: %s" % (g, r.stderr.strip()))
        body = r.stdout.split("elements = {", 1)
        if len(body) < 2:
            return []
        return re.findall(r"(\d+\.\d+\.\d+\.\d+) \. \d+\.\d+\.\d+\.\d+ \. \d+", body[1])

    def watch_keys(self):
        """Every pinhole key on either gateway admits only 203.0.113.10 (the outside client, or the outside
        server of the LAN client's active session): sampled throughout by check_keys."""
        for g in ("a", "b"):
            for k in self.set_keys(g):
                self.keys_seen += 1
                if k != halab.CLIENT:
                    self.bad_keys.append("%s on %s" % (k, g))

    def check_keys(self, when):
        def t():
            self.watch_keys()
            if self.bad_keys:
                raise AssertionError("pinhole keys for other hosts: %s" % self.bad_keys[:5])
            print("  %d pinhole keys seen so far, all for %s" % (self.keys_seen, halab.CLIENT), flush=True)
        self.check("no pinhole admits a host other than the announced peer, on either gateway (%s)" % when, t)

    def many(self, sess, cmds, n):
        """n rounds of cmds on one session; stops at the first failure."""
        for i in range(n):
            for cmd in cmds:
                r = sess.do(cmd)
                if r.get("ok") and cmd == "pasv" and not r["reply"].startswith("227 Entering Passive Mode (203,0,113,1,"):
                    r = {"ok": False, "error": "227 not rewritten: %r" % r["reply"]}
                if not r.get("ok"):
                    raise AssertionError("round %d %s: %s" % (i + 1, cmd, r.get("error")))
            if i % 5 == 0:
                self.watch_keys()

    def old_sessions(self, where):
        n = self.a.transfers
        self.check("[adoption] the passive session made through A keeps working %s: %d PASV and %d EPSV "
                   "transfers (sha256)" % (where, n, n), lambda: self.many(self.old_p, ("pasv", "epsv"), n))
        self.check("[adoption] the active session made through A keeps working %s: %d PORT transfers (sha256)"
                   % (where, n), lambda: self.many(self.old_a, ("port",), n))

    def new_active(self):
        s = Session(self.files["f1M"], ns="fh-l", host=halab.CLIENT)
        self.sessions.append(s)
        self.many(s, ("port",), 2)
        s.close()

    def run(self):
        lab = self.lab
        lab.up()
        lab.start_all(self.a.binary, alg_on=("a", "b"))
        files = self.files
        self.keys_seen = 0
        self.bad_keys = []

        # --- through A ------------------------------------------------------
        old = self.old_p = Session(files["f1M"])
        self.sessions = [old]

        def through_a():
            if lab.holder() != ["a"]:
                raise AssertionError("the VIPs are on %s" % lab.holder())
            r1 = old.transfer("pasv")
            old.transfer("epsv")
            r3 = old.transfer("pasv")
            if not r1["reply"].startswith("227 Entering Passive Mode (203,0,113,1,") or \
                    not r3["reply"].startswith("227 Entering Passive Mode (203,0,113,1,"):
                raise AssertionError("227 not rewritten: %r" % r1["reply"])
            rewrites = re.findall(r'event=pasv client=203\.0\.113\.10 .*? old="([^"]*)" new="([^"]*)"',
                                  lab.alg_log("a"))
            if len(rewrites) < 2 or any(len(n) - len(o) != 1 for o, n in rewrites):
                raise AssertionError("A's log does not show two +1 rewrites: %s" % rewrites)
            m = re.findall(r"event=open how=syn client=203\.0\.113\.10:(\d+)", lab.alg_log("a"))
            self.sport = int(m[-1])
            adj = self.control_seqadj("a")
            if not adj or adj["offset_after"] != 2:
                raise AssertionError("A's control conntrack has seqadj %s, expected offset_after 2" % adj)
        self.check("session through A: PASV, EPSV, PASV transfers, two 227 rewrites of +1 byte, offset 2 in A's "
                   "conntrack", through_a)

        def active_a():
            self.old_a = Session(files["f1M"], ns="fh-l", host=halab.CLIENT)
            self.sessions.append(self.old_a)
            self.many(self.old_a, ("port",), 2)
            rewrites = re.findall(r'event=port old="(PORT 192,0,2,20,[^"]*)" new="([^"]*)"',
                                  lab.alg_log("a"))
            if len(rewrites) < 2 or any(len(n) - len(o) != 1 for o, n in rewrites):
                raise AssertionError("A's log does not show two +1 PORT rewrites: %s" % rewrites)
        self.check("active session of the LAN client through A: 2 PORT transfers, PORT rewritten +1 byte", active_a)
        self.check_keys("through A")

        if not self.a.external_cache:
            def replicated():
                adj = None
                deadline = time.time() + 5
                while time.time() < deadline and (not adj or adj["offset_after"] != 2):
                    adj = self.control_seqadj("b")
                    time.sleep(0.1)
                if not adj or adj["offset_after"] != 2:
                    raise AssertionError("B's kernel has seqadj %s for the control connection" % adj)
            self.check("conntrackd: B's kernel holds the control conntrack with A's sequence offset (+2)", replicated)

        # A second session reads a transfer slowly, so that its data is still crossing the gateways when A fails.
        inflight = Session(files["f1M"])
        self.sessions.append(inflight)
        inflight.send("slowpasv")
        time.sleep(1.5)
        # A data port announced through A within the last second before the failure.
        announced = old.do("announce")
        t_announce = time.time()

        # --- A fails --------------------------------------------------------
        t0 = time.time()
        lab.stop_keepalived("a", signal.SIGTERM, wait=False)
        times = {}

        def vips_move():
            times["vip"] = lab.wait_vip("b", 10, since=t0)
            if lab.has_vips("a"):
                raise AssertionError("A still holds the VIPs")
            print("  failover: B holds both VIPs %.2f s after A's keepalived was stopped" % times["vip"], flush=True)
        self.check("failover: B takes both VIPs", vips_move)

        def armed():
            def took_over():
                log = lab.notify_log("b")
                i = log.rfind("state primary")
                return i >= 0 and re.search(r"^(\d+\.\d+) ftp-alg (takeover.*)$", log[i:], re.M)
            m = lab.wait_for(took_over, 5, "B's notify script did not run ftp-alg takeover on becoming primary")
            print("  B's notify script: ftp-alg %s (done %.3f s after the failure, %.3f s after B had the VIPs)"
                  % (m.group(2), float(m.group(1)) - t0, float(m.group(1)) - t0 - times.get("vip", 0)), flush=True)
            times["rearmed"] = int(re.search(r"(\d+) pinholes re-armed", m.group(2)).group(1))
            r = old.do("fetch")
            print("  pinhole: announced %.2f s before the failure, connected %.2f s after it"
                  % (t0 - t_announce, time.time() - t0), flush=True)
            if not r.get("ok"):
                raise AssertionError("data connection to %s:%s announced by A: %s"
                                     % (announced.get("host"), announced.get("port"), r.get("error")))
        self.check("[pinhole replication] a data port announced through A within the last second before the "
                   "failure is usable through B", armed)

        def rearmed_only_unused():
            # Armed on A before the failure: the announced one (unused), the in-flight transfer's and the active
            # session's (used over a second earlier, so their records no longer name them).
            if times.get("rearmed") != 1:
                raise AssertionError("B re-armed %s pinholes, expected only the announced one" % times.get("rearmed"))
        self.check("B's takeover re-armed only the pinhole not yet used (used ones are not opened again)",
                   rearmed_only_unused)

        def first_new():
            dt = self.first_transfer_after(t0)
            print("  failover: first successful new transfer %.2f s after the failure" % dt, flush=True)
        self.check("new session on B during A's absence: first PASV transfer", first_new)

        def in_flight():
            r = inflight.result(timeout=60)
            if "start" in r:
                print("  in flight: the transfer ran from %.2f s to %.2f s around the failure"
                      % (r["start"] - t0, r["end"] - t0), flush=True)
            if not r.get("ok"):
                raise AssertionError("%s (reply %r)" % (r.get("error"), r.get("reply")))
            if r["end"] - t0 < times.get("vip", 0):
                raise AssertionError("the transfer ended before B had the VIPs")
        self.check("a PASV transfer in flight through A completes through B (sha256)", in_flight)

        self.check("new session on B: PASV and EPSV transfers", lambda: self.new_session("both"))
        self.check("new active session of the LAN client on B: 2 PORT transfers", self.new_active)
        self.old_sessions("on B")
        self.check_keys("after the failover")

        # --- fail-back ------------------------------------------------------
        t1 = time.time()
        lab.start_keepalived("a")

        def failback():
            times["back"] = lab.wait_vip("a", 15, since=t1)
            lab.wait_for(lambda: not lab.has_vips("b"), 5, "B keeps the VIPs")
            print("  fail-back: A holds both VIPs %.2f s after its keepalived was started" % times["back"],
                  flush=True)
        self.check("fail-back: A takes the VIPs back", failback)

        def first_back():
            dt = self.first_transfer_after(t1)
            print("  fail-back: first successful new transfer %.2f s after A's keepalived was started" % dt,
                  flush=True)
        self.check("new session on A after fail-back: first PASV transfer", first_back)
        self.check("new session on A after fail-back: PASV and EPSV transfers", lambda: self.new_session("both"))
        self.check("new active session of the LAN client on A after fail-back: 2 PORT transfers", self.new_active)
        self.old_sessions("after fail-back to A (A's daemon saw their start, B changed the offsets meanwhile)")
        self.check_keys("after the fail-back")

    def main(self):
        self.sessions = []
        try:
            self.run()
        except (Exception, halab.Interrupted):
            self.failed += 1
            print("FAIL lab: " + traceback.format_exc(), flush=True)
        finally:
            for s in self.sessions:
                s.close()
            if self.failed:
                for g in ("a", "b"):
                    print("--- ftp-alg on %s (tail) ---\n%s" % (g, self.lab.alg_log(g)[-2500:]))
            self.lab.cleanup()
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 0 if self.failed == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--transfers", type=int, default=20, help="transfers of each kind on the old sessions")
    ap.add_argument("--external-cache", action="store_true",
                    help="run conntrackd with DisableExternalCache Off (commit on failover) instead of the shipped On")
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    if os.geteuid() != 0:
        print("the HA lab needs root", file=sys.stderr)
        return 2
    halab.on_signals()
    return Test(a).main()


if __name__ == "__main__":
    sys.exit(main())
