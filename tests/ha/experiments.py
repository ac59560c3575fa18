#!/usr/bin/env python3
"""Experiments on the HA lab that establish what this kernel and these tools allow.

  python3 tests/ha/experiments.py --binary build/ftp-alg [vrrp] [seqadj] [session] [window]

Each prints what it measured, one fact a line. docs/HA.md records the results.
  vrrp     VIP failover times: keepalived stopped, links down, keepalived killed (-9); fail-back times
  seqadj   does conntrackd carry NAT and the sequence adjustments ftp-alg set on A to B's kernel?
  session  does a control session made through A survive failover, and do later transfers work on B,
           with and without ftp-alg on B, with and without DisableExternalCache?
  window   between the VIP move and conntrackd's commit: is a packet picked up mid-stream without offsets?
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import halab  # noqa: E402
from halab import CLIENT, DATA_DIR, GW, HaLab, VIP_WAN, nsx, sh  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def fail_a(lab, how):
    """Fail gateway A; returns the time of the failure."""
    t = time.time()
    if how == "stop":
        lab.stop_keepalived("a", signal.SIGTERM, wait=False)
    elif how == "kill9":
        lab.stop_keepalived("a", signal.SIGKILL, wait=False)
    elif how == "linkdown":
        nsx("fh-a", "ip link set wan down")
        nsx("fh-a", "ip link set lan down")
    return t


def restore_a(lab, how):
    if how == "linkdown":
        nsx("fh-a", "ip link set wan up")
        nsx("fh-a", "ip link set lan up")
    else:
        lab.start_keepalived("a")


def notify_times(lab, g):
    """(time, message) of every line the notify script logged."""
    out = []
    for line in lab.notify_log(g).splitlines():
        t, _, msg = line.partition(" ")
        out.append((float(t), msg))
    return out


def first_after(events, t0, text):
    for t, msg in events:
        if t >= t0 and text in msg:
            return t - t0
    return None


def control_ct(cts, port=21):
    return [c for c in cts if c["orig"].get("dport") == port and c["orig"].get("src") == CLIENT]


def brief(c):
    if c is None:
        return "none"
    return "tcp=%s status=%s seqadj_reply=%s reply_src=%s" % (c.get("tcp_state"), ",".join(s for s in c.get("status", []) if s in (
        "DST_NAT", "SRC_NAT", "SEQ_ADJUST", "ASSURED")), c.get("seqadj_reply"), c["reply"].get("src"))


def exp_vrrp(a):
    lab = HaLab()
    try:
        lab.up()
        lab.start_all()
        for how in a.how:
            for i in range(a.reps):
                t0 = fail_a(lab, how)
                dt = lab.wait_vip("b", 20, since=t0)
                time.sleep(0.5)
                a_still = lab.has_vips("a")
                t1 = time.time()
                restore_a(lab, how)
                back = lab.wait_vip("a", 20, since=t1)
                lab.wait_for(lambda: not lab.has_vips("b"), 20, "b kept the VIPs")
                b_gone = time.time() - t1
                lab.wait_for(lambda: lab.holder() == ["a"], 20, "VIPs not only on a")
                print("vrrp %-8s run %d: B holds both VIPs %.2f s after the failure; A still holds them then: %s; "
                      "fail-back: A holds them %.2f s, B dropped them %.2f s after restoring A"
                      % (how, i + 1, dt, "yes" if a_still else "no", back, b_gone), flush=True)
                time.sleep(2)
    finally:
        lab.cleanup()


def start_busy(lab):
    p = subprocess.Popen(["ip", "netns", "exec", "fh-c", "python3", os.path.join(HERE, "busy_client.py"), "--host",
                          VIP_WAN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(p.stdout.readline())
    return p, ready["ready"]


def end_busy(p):
    try:
        p.stdin.write("stop\n")
        p.stdin.flush()
    except BrokenPipeError:
        pass  # it ended on an error and says so
    res = json.loads(p.stdout.readline())
    p.wait(timeout=10)
    return res


def external_cache(lab, g):
    return lab.ctd(g, "-e", "ct").stdout


def exp_seqadj(a):
    for dec in (False, True):
        lab = HaLab(disable_external_cache=dec)
        try:
            lab.up()
            lab.start_all(a.binary, alg_on=("a",))
            p, pasv = start_busy(lab)
            print("seqadj DisableExternalCache=%s: the 227 through A: %r" % ("On" if dec else "Off", pasv))
            time.sleep(1.5)
            ca = control_ct(lab.conntracks("a"))
            cb = control_ct(lab.conntracks("b"))
            print("  A kernel: %s" % brief(ca[0] if ca else None))
            print("  B kernel before failover: %s" % brief(cb[0] if cb else None))
            ext = [l for l in external_cache(lab, "b").splitlines() if "dport=21 " in l]
            print("  B external cache: %s" % (ext[0].strip() if ext else "no entry"))
            t0 = fail_a(lab, "stop")
            lab.wait_vip("b", 10)
            lab.wait_for(lambda: "done primary" in lab.notify_log("b"), 10, "notify on b did not finish")
            cb = control_ct(lab.conntracks("b"))
            ev = notify_times(lab, "b")
            print("  B kernel after failover and commit: %s" % brief(cb[0] if cb else None))
            print("  commit done %.3f s after the failure" % (first_after(ev, t0, "conntrackd -c done") or -1))
            res = end_busy(p)
            print("  session: %d NOOPs, longest wait %.3f s, errors %s, 227 after failover %r"
                  % (res["noops"], res["max_wait"], res["errors"], res.get("pasv_after")), flush=True)
        finally:
            lab.cleanup()


def transfer(lab, files, args, timeout=60):
    r = sh(lab.client(["--path", "/%s/f1M" % DATA_DIR, "--sha256", files["f1M"]] + args), check=False,
           timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": 0, "bad": 1, "errors": [r.stdout + r.stderr]}


def exp_session(a):
    files = halab.prepare_files()
    for alg_b in (False, True):
        for dec in (False, True):
            lab = HaLab(disable_external_cache=dec)
            label = "ftp-alg on B: %s, DisableExternalCache %s" % ("yes" if alg_b else "no", "On" if dec else "Off")
            try:
                lab.up()
                lab.start_all(a.binary, alg_on=("a", "b") if alg_b else ("a",))
                p = subprocess.Popen(lab.client(["--path", "/%s/f1M" % DATA_DIR, "--sha256", files["f1M"],
                                                 "--count", "6", "--pause-after", "3", "--mode", "both"]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                first = json.loads(p.stdout.readline())
                fail_a(lab, "stop")
                lab.wait_vip("b", 10)
                lab.wait_for(lambda: "done primary" in lab.notify_log("b"), 10, "notify on b did not finish")
                p.stdin.write("go\n")
                p.stdin.flush()
                res = json.loads(p.stdout.readline())
                p.wait(timeout=30)
                new = transfer(lab, files, ["--count", "2", "--mode", "both"])
                blog = lab.alg_log("b")
                ev = sorted(set(re.findall(r"event=(\S+)", blog)))
                opaque = re.findall(r'event=opaque reason="([^"]*)"', blog)
                opaque += re.findall(r"event=open how=\S+ client=\S+", blog)
                opaque += re.findall(r'event=pasv .*? new="[^"]*"', blog)[:1]
                print("session %s: before failover %d/3 ok; after: %d/6 ok in total, errors %s; replies %s; "
                      "new session on B: %d/2 ok %s; B's ftp-alg events %s %s"
                      % (label, first.get("paused", 0), res["ok"], [e[:160] for e in res["errors"]],
                         res.get("replies"), new["ok"], [e[:120] for e in new["errors"]], ev, opaque), flush=True)
            finally:
                lab.cleanup()


def exp_pinhole(a):
    """A PASV answered through A (pinhole armed in A's table), then failover, then the data connection."""
    files = halab.prepare_files()
    for dec in (False, True):
        lab = HaLab(disable_external_cache=dec)
        try:
            lab.up()
            lab.start_all(a.binary)
            p = subprocess.Popen(lab.client(["--path", "/%s/f1M" % DATA_DIR, "--sha256", files["f1M"],
                                             "--announce-only"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            ann = json.loads(p.stdout.readline())
            armed = nsx("fh-b", "nft list set inet ftp_alg once4", check=False).stdout
            t0 = fail_a(lab, "stop")
            lab.wait_vip("b", 10, since=t0)
            lab.wait_for(lambda: "done primary" in lab.notify_log("b"), 10, "notify on b did not finish")
            p.stdin.write("go\n")
            p.stdin.flush()
            out, err = p.communicate(timeout=60)
            print("pinhole DisableExternalCache %s: 227 via A %r; B's once4 before failover has the port: %s; "
                  "data connection after failover: %s"
                  % ("On" if dec else "Off", ann["reply"], str(ann["port"]) in armed,
                     (out.strip() or err.strip().splitlines()[-1])[:200]), flush=True)
        finally:
            lab.cleanup()


def exp_data(a):
    """A data transfer running through A while A fails (curl, rate-limited to last about 5 s)."""
    files = halab.prepare_files()
    for dec in (False, True):
        for epsv in (False, True):
            lab = HaLab(disable_external_cache=dec)
            try:
                lab.up()
                lab.start_all(a.binary)
                # The server sends at 2 Mbit/s, so that 1 MiB is still crossing the gateway when A fails.
                nsx("fh-s", "tc qdisc add dev eth0 root tbf rate 2mbit burst 16kb latency 500ms")
                out = lab.path("data.out")
                p = subprocess.Popen(["ip", "netns", "exec", "fh-c", "curl", "-sS", "--max-time", "40", "-o", out] + ([] if epsv else ["--disable-epsv"]) +
                                     ["ftp://%s/%s/f1M" % (VIP_WAN, DATA_DIR)], stderr=subprocess.PIPE, text=True)
                time.sleep(2)
                t0 = fail_a(lab, "stop")
                lab.wait_vip("b", 10, since=t0)
                err = p.communicate(timeout=60)[1]
                t1 = time.time()
                ok = os.path.exists(out) and halab.sha256(out) == files["f1M"]
                print("data DisableExternalCache %s, %s: transfer across the failover: curl exit %d, sha256 %s, "
                      "ended %.1f s after the failure %s" % ("On" if dec else "Off", "EPSV" if epsv else "PASV",
                                                      p.returncode, "ok" if ok else "BAD", t1 - t0, err.strip()[:160]),
                      flush=True)
            finally:
                lab.cleanup()


def exp_arp(a):
    """When do the client's and the server's neighbour entries for the VIPs move to B's MAC?"""
    lab = HaLab()
    try:
        lab.up()
        lab.start_all()
        sh(lab.client(["--path", "/x", "--sha256", "0", "--count", "0"]), check=False)  # fill the caches
        nsx("fh-s", "ping -c1 -W1 %s" % halab.VIP_LAN, check=False)
        mac = {g: {i: nsx(GW[g][0], "cat /sys/class/net/%s/address" % i).stdout.strip() for i in ("wan", "lan")}
               for g in GW}
        def neigh(ns, ip):
            out = nsx(ns, "ip neigh show %s" % ip, check=False).stdout
            m = re.search(r"lladdr (\S+) (\S+)", out)
            return m.groups() if m else (None, out.strip())
        print("arp before: client %s, server %s; A wan %s lan %s, B wan %s lan %s"
              % (neigh("fh-c", VIP_WAN), neigh("fh-s", halab.VIP_LAN), mac["a"]["wan"], mac["a"]["lan"],
                 mac["b"]["wan"], mac["b"]["lan"]))
        t0 = fail_a(lab, "stop")
        seen = {}
        while time.time() - t0 < 12:
            for ns, ip, i in (("fh-c", VIP_WAN, "wan"), ("fh-s", halab.VIP_LAN, "lan")):
                m, st = neigh(ns, ip)
                if m == mac["b"][i] and ns not in seen:
                    seen[ns] = time.time() - t0
            if len(seen) == 2:
                break
            time.sleep(0.02)
        print("arp: the VIP's neighbour entry points at B: client %s, server %s (s after the failure)"
              % (("%.2f" % seen["fh-c"]) if "fh-c" in seen else "not within 12 s",
                 ("%.2f" % seen["fh-s"]) if "fh-s" in seen else "not within 12 s"), flush=True)
        print("arp after: client %s, server %s" % (neigh("fh-c", VIP_WAN), neigh("fh-s", halab.VIP_LAN)))
    finally:
        lab.cleanup()


LABEL_RULES = """table inet marklab {
  chain p { type filter hook prerouting priority 0;
    iifname "wan" tcp dport 21 %s ct label set 100
    iifname "wan" tcp dport 21 %s ct mark set 0x42
  }
}
"""


def exp_labels(a):
    """Could ftp-alg keep per-session state in the conntrack for conntrackd to carry? Mark and label bits."""
    for dec in (True, False):
        lab = HaLab(disable_external_cache=dec)
        try:
            lab.up()
            # B's rules never match (meta mark 0x7777), but the kernel gives conntracks a label area only
            # in a namespace where some rule sets labels.
            nsx("fh-a", ["nft", "-f", "-"], input=LABEL_RULES % ("", ""))
            nsx("fh-b", ["nft", "-f", "-"], input=LABEL_RULES % ("meta mark 0x7777", "meta mark 0x7777"))
            lab.start_all(a.binary, alg_on=("a",))
            p, pasv = start_busy(lab)
            time.sleep(1.5)
            ca = control_ct(lab.conntracks("a"))
            t0 = fail_a(lab, "stop")
            lab.wait_vip("b", 10, since=t0)
            lab.wait_for(lambda: "done primary" in lab.notify_log("b"), 10, "notify on b did not finish")
            cb = control_ct(lab.conntracks("b"))
            end_busy(p)
            pick = lambda c: {k: c.get(k) for k in ("mark", "labels")} if c else None  # noqa: E731
            print("labels DisableExternalCache %s: A's control conntrack %s; B's after failover %s"
                  % ("On" if dec else "Off", pick(ca[0] if ca else None), pick(cb[0] if cb else None)), flush=True)
        finally:
            lab.cleanup()


def exp_failback(a):
    """A session made through A, continued on B, then back on A: is A's daemon's stale session the obstacle?"""
    files = halab.prepare_files()
    sys.path.insert(0, HERE)
    from test_failover import Session
    for restart in (False, True):
        lab = HaLab()
        s = None
        try:
            lab.up()
            lab.start_all(a.binary)
            s = Session(files["f1M"])
            steps = ["A: " + ",".join("%s %s" % (c, "ok" if s.do(c).get("ok") else "FAILED") for c in ("pasv", "epsv"))]
            t0 = fail_a(lab, "stop")
            lab.wait_vip("b", 10, since=t0)
            steps.append("B: " + ",".join("%s %s" % (c, "ok" if s.do(c).get("ok") else "FAILED")
                                          for c in ("epsv", "pasv", "epsv")))
            if restart:
                lab.stop_alg("a")
                lab.start_alg("a", a.binary)
            lab.start_keepalived("a")
            lab.wait_vip("a", 15)
            lab.wait_for(lambda: not lab.has_vips("b"), 5, "B keeps the VIPs")
            steps.append("back on A: " + ",".join("%s %s" % (c, "ok" if s.do(c).get("ok") else "FAILED")
                                                  for c in ("epsv", "pasv", "epsv")))
            drops = re.findall(r"event=\S+", lab.alg_log("a").split("event=privileges ")[-1])
            print("failback, A's ftp-alg %s while A was backup: %s; A's log events since its (re)start: %s"
                  % ("restarted" if restart else "kept running", "; ".join(steps), sorted(set(drops))), flush=True)
        finally:
            if s:
                s.close()
            lab.cleanup()


def exp_idle(a):
    """An idle control session across failover and fail-back: do the conntracks outlive 'conntrackd -t'?"""
    files = halab.prepare_files()
    sys.path.insert(0, HERE)
    from test_failover import Session
    for purge in (True, False):
        exp_idle_one(a, files, purge)


def exp_idle_one(a, files, purge):
    from test_failover import Session
    lab = HaLab(purge_on_backup=purge)
    print("idle: ha-notify %s 'conntrackd -t' on becoming backup" % ("runs" if purge else "does not run"))
    s = None
    try:
        lab.up()
        lab.start_all()  # no ftp-alg: this is about the kernel state alone

        def state(label):
            out = []
            for g in GW:
                c = control_ct(lab.conntracks(g))
                c = [x for x in c if x.get("tcp_state") == "ESTABLISHED"]
                out.append("%s %s" % (g, ("timeout %s" % c[0].get("timeout")) if c else "none"))
            print("idle %s: control conntrack on %s" % (label, ", ".join(out)), flush=True)
        s = Session(files["f1M"])
        time.sleep(1)
        state("through A")
        t0 = fail_a(lab, "stop")
        lab.wait_vip("b", 10, since=t0)
        time.sleep(1)
        state("1 s after the failover")
        time.sleep(10)
        state("11 s after the failover, idle")
        r = s.do("noop")
        print("idle: NOOP on B after 11 s idle: %s" % r, flush=True)
        t1 = time.time()
        lab.start_keepalived("a")
        lab.wait_vip("a", 15, since=t1)
        lab.wait_for(lambda: not lab.has_vips("b"), 5, "B keeps the VIPs")
        time.sleep(1)
        state("1 s after the fail-back")
        time.sleep(15)
        state("16 s after the fail-back, idle")
        r = s.do("noop")
        print("idle: NOOP on A after 16 s idle: %s" % r, flush=True)
        time.sleep(2)
        state("2 s after the NOOP")
        r = s.do("pasv")
        time.sleep(2)
        state("2 s after a PASV transfer (ends in ESTABLISHED again)")
        print("idle: notify on A: %s; on B: %s" % ([m for t, m in notify_times(lab, "a") if m.startswith("state")],
                                                   [m for t, m in notify_times(lab, "b") if m.startswith("state")]))
    finally:
        if s:
            s.close()
        lab.cleanup()


def exp_window(a):
    for dec, loose in ((False, True), (True, True), (False, False)):
        lab = HaLab(disable_external_cache=dec, loose=loose)
        label = "DisableExternalCache %s, tcp_loose=%d" % ("On" if dec else "Off", 1 if loose else 0)
        try:
            lab.up()
            if not loose:
                # With tcp_loose=0 a mid-stream packet is INVALID; the ruleset drops invalid forward traffic.
                pass
            lab.start_all(a.binary, alg_on=("a",))
            p, pasv = start_busy(lab)
            time.sleep(1.5)
            events = subprocess.Popen(["ip", "netns", "exec", "fh-b", "conntrack", "-E", "-p", "tcp", "-o",
                                       "timestamp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(0.3)
            t0 = fail_a(lab, "stop")
            dvip = lab.wait_vip("b", 10, since=t0)
            lab.wait_for(lambda: "done primary" in lab.notify_log("b"), 10, "notify on b did not finish")
            time.sleep(1)
            res = end_busy(p)
            events.terminate()
            evlines = [l for l in events.communicate()[0].splitlines() if "port=21 " in l]
            ev = notify_times(lab, "b")
            cb = control_ct(lab.conntracks("b"))
            stalls = [(round(t - t0, 3), d) for t, d in res["stalls"]]
            inval = re.search(r"ct state invalid counter packets (\d+)", nsx("fh-b", "nft list chain ip lab forward")
                              .stdout)
            commit_log = [l for l in lab.read(lab.path("conntrackd-b.log")).splitlines() if "commit" in l.lower()]
            print("window %s: VIP on B %.3f s, notify 'primary' %.3f s, commit done %.3f s after the failure; "
                  "B's control conntrack %s; NOOPs %d, stalls (start after failure, length) %s, errors %s; "
                  "227 after %r; invalid drops on B %s; conntrackd: %s"
                  % (label, dvip, first_after(ev, t0, "state primary") or -1,
                     first_after(ev, t0, "conntrackd -c done") or -1, brief(cb[0] if cb else None), res["noops"],
                     stalls, res["errors"], res.get("pasv_after"), inval.group(1) if inval else "?",
                     commit_log[-3:]), flush=True)
            for line in evlines[:12]:
                m = re.match(r"\[(\d+\.\d+)\]\s*(.*)", line)
                print("    B conntrack event %+.3f s: %s" % (float(m.group(1)) - t0, m.group(2)) if m else line)
        finally:
            lab.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--how", action="append", help="vrrp: only this failure (stop, linkdown, kill9)")
    ap.add_argument("which", nargs="*", default=["vrrp", "seqadj", "session", "window", "pinhole", "data", "arp", "labels", "failback", "idle"])
    a = ap.parse_args()
    a.binary = os.path.abspath(a.binary)
    a.how = a.how or ["stop", "linkdown", "kill9"]
    if os.geteuid() != 0:
        print("the HA lab needs root", file=sys.stderr)
        return 2
    halab.on_signals()
    halab.prepare_files()
    for w in a.which:
        globals()["exp_" + w](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
