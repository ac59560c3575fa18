#!/usr/bin/env python3
"""ftp-alg against the kernel's own FTP helper and against the floor, in one run, in the namespace lab.

Every figure is measured through (a) nf_conntrack_ftp + nf_nat_ftp, (b) the
floor (tests/bench/floor.c: ftp-alg's own table and queues, every packet
accepted unread, so the control-path figures only) and (c) ftp-alg, rotating
the order each round, and printed with the ratios ftp-alg / kernel and
ftp-alg / floor and each goal met or not. Writes results.json and ratios.svg
to --out if given.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import lab as lablib  # noqa: E402  the integration tests' lab: namespaces, servers, the two ALGs

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
VSFTPD_PUB = "203.0.113.1"      # vsftpd at 192.0.2.10 behind the gateway
LOAD_PUB = "203.0.113.5"        # ftpload at 192.0.2.13 behind the gateway
OUT_VSFTPD = "203.0.113.30"     # vsftpd outside, for LAN clients in active mode
BIG = "f1G"
SOURCES = ["203.0.113.%d" % i for i in range(10, 18)]  # the client namespace's addresses, for many clients
GW_OUT = "203.0.113.1"          # the gateway's outside address: what the LAN is masqueraded to
MODES = ["kernel", "floor", "ftp-alg"]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def ns_json(ns, cmd, timeout=600):
    r = lablib.nsx(ns, cmd, check=False, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("%s failed: %s %s" % (cmd, r.stdout[-500:], r.stderr[-1500:]))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def idle_share():
    """Seconds idle and total across all CPUs so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[3] + v[4], sum(v)


def queued(queues=(21, 22)):
    """Packets the gateway's queues have carried so far: the ids nfnetlink_queue handed out."""
    out = lablib.nsx("fa-gw", "cat /proc/net/netfilter/nfnetlink_queue", check=False).stdout
    return sum(int(f[7]) for f in (line.split() for line in out.splitlines()) if len(f) > 7 and int(f[0]) in queues)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Bench:
    def __init__(self, lab, binary, ftpload, short, conf):
        self.lab, self.binary, self.ftpload, self.short, self.conf = lab, binary, ftpload, short, conf
        self.ctl = os.path.join(lab.work, "ctl.sock")
        self.res = {m: {} for m in MODES}

    def add(self, mode, key, value):
        self.res[mode].setdefault(key, []).append(value)

    def on(self, mode, workers=1):
        lablib.nsx("fa-gw", "conntrack -F", check=False)
        if mode == "kernel":
            self.lab.helper(True)
        elif mode == "floor":
            starts = self.lab.log().count("floor started: ")
            self.lab.start_alg(self.floor, ["--config", self.conf],
                               ready=lambda: self.lab.log().count("floor started: ") > starts)
        else:
            # Quiet (LogLevel warning): up when the control socket answers, not at a log line.
            self.lab.start_alg(self.binary, ["--config", self.conf, "--control-socket", self.ctl,
                                             "--workers", str(workers)],
                               ready=lambda: lablib.sh([self.binary, "status", "--control-socket", self.ctl],
                                                       check=False).returncode == 0)

    def off(self, mode):
        if mode == "kernel":
            self.lab.helper(False)
        else:
            self.lab.stop_alg()
        lablib.nsx("fa-gw", "conntrack -F", check=False)

    def status(self):
        return json.loads(lablib.sh([self.binary, "status", "--json", "--control-socket", self.ctl]).stdout)

    def round(self, mode):
        n = 60 if self.short else 400
        lat = os.path.join(HERE, "latency.py")
        clocks = self.status()["timing"] if mode == "ftp-alg" else None
        s = ns_json("fa-c", ["python3", lat, "pasv", "--host", VSFTPD_PUB, "--count", str(n)])["samples_ms"]
        self.add(mode, "pasv_p50", pct(s, 0.5))
        self.add(mode, "pasv_p99", pct(s, 0.99))
        # Through the floor nothing rewrites the PORT: the client names the gateway's address itself.
        s = ns_json("fa-lc", ["python3", lat, "port", "--host", OUT_VSFTPD, "--source", lablib.LAN_CLIENT,
                              "--count", str(n)] + (["--announce", GW_OUT] if mode == "floor" else []))["samples_ms"]
        self.add(mode, "port_p50", pct(s, 0.5))
        self.add(mode, "port_p99", pct(s, 0.99))
        if mode == "floor":
            # No pinholes: no data connection works through the floor, so its figures end here.
            self.rate(mode)
            return
        s = ns_json("fa-c", ["python3", lat, "setup", "--host", VSFTPD_PUB, "--count", str(n // 2)])["samples_ms"]
        self.add(mode, "setup_p50", pct(s, 0.5))
        # A mirror job: one control connection, a transfer after each PASV, far past the per-session
        # pinhole limit, so every announcement replaces a pinhole its data connection has used.
        s = ns_json("fa-c", ["python3", lat, "long", "--host", VSFTPD_PUB, "--count", "120"])["samples_ms"]
        self.add(mode, "long_pasv_p50", pct(s, 0.5))
        self.add(mode, "long_pasv_p99", pct(s, 0.99))
        if clocks:
            # The daemon's own clocks over the latency runs: the average cost of each kind of operation.
            now = self.status()["timing"]
            for k, v in now.items():
                dn = v["count"] - clocks[k]["count"]
                if dn:
                    self.add(mode, "us_per_" + k, (v["total_us"] - clocks[k]["total_us"]) / dn)
                    self.add(mode, "count_" + k, dn)
        for _ in range(1 if self.short else 2):  # a shared 2-core VM is noisy: more samples
            r = ns_json("fa-c", ["python3", lat, "retr", "--host", VSFTPD_PUB, "--path",
                                 "/%s/%s" % (lablib.DATA_DIR, BIG)])
            if r["bytes"] != self.big_size:
                raise RuntimeError("transfer short: %d of %d bytes" % (r["bytes"], self.big_size))
            self.add(mode, "throughput_mib_s", r["mib_s"])
        self.rate(mode)

    def rate(self, mode):
        pid = self.lab.alg.pid if mode != "kernel" else None
        t0 = cpu_ticks(pid) if pid else 0
        p0 = queued() if pid else 0
        # The kernel helper keeps each session's expectation until the session's conntrack is gone
        # (TIME_WAIT: 120 s), and at most nf_conntrack_expect_max of them (4096 here, read-only in
        # a namespace): past that it drops the 227s. So each run is 3,500 sessions from a flushed
        # table, timed, in every mode.
        lablib.nsx("fa-gw", "conntrack -F", check=False)
        i0, m0 = idle_share()
        r = ns_json("fa-c", [self.ftpload, "rate", LOAD_PUB, "21", "8", "20", "500" if self.short else "3500"])
        i1, m1 = idle_share()
        self.add(mode, "session_errors", r["errors"])
        self.add(mode, "sessions_per_s", r["sessions"] / r["seconds"])
        hz = os.sysconf("SC_CLK_TCK")
        # Every CPU's busy time over the run (clients, servers, kernel, daemon), per session.
        self.add(mode, "machine_us_per_session", ((m1 - m0) - (i1 - i0)) / hz / max(r["sessions"], 1) * 1e6)
        if pid:
            cpu = (cpu_ticks(pid) - t0) / hz
            pk = queued() - p0
            self.add(mode, "cpu_us_per_session", cpu / r["sessions"] * 1e6)
            self.add(mode, "cpu_us_per_packet", cpu / max(pk, 1) * 1e6)

    def multicore(self, workers):
        """Session rate from 8 client addresses (the queue rules balance by client) with 1 or 2 workers."""
        self.on("ftp-alg", workers)
        try:
            lablib.nsx("fa-gw", "conntrack -F", check=False)
            i0, t0 = idle_share()
            r = ns_json("fa-c", ["env", "FTPLOAD_SOURCES=" + ",".join(SOURCES), self.ftpload, "rate", LOAD_PUB, "21",
                                 "8", "20", "500" if self.short else "3500"])
            i1, t1 = idle_share()
            self.add("ftp-alg", "idle_%dw" % workers, (i1 - i0) / max(t1 - t0, 1))
            per = [w["sessions_opened"] for w in self.status()["per_worker"]]
            self.add("ftp-alg", "sessions_per_s_%dw" % workers, r["sessions"] / r["seconds"])
            self.add("ftp-alg", "session_errors_%dw" % workers, r["errors"])
            return per
        finally:
            self.off("ftp-alg")

    def scale(self, mode, n):
        """n control sessions held open, each with an armed pinhole; then a transfer through each."""
        lablib.nsx("fa-gw", "conntrack -F", check=False)
        self.on(mode)
        try:
            pid = self.lab.alg.pid if mode == "ftp-alg" else None
            base = rss_kib(pid) if pid else 0
            p = subprocess.Popen(["ip", "netns", "exec", "fa-c", "env", "FTPLOAD_PAUSE=2", self.ftpload, "hold", LOAD_PUB,
                                  "21", str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            peak = base
            while p.poll() is None:
                if pid:
                    peak = max(peak, rss_kib(pid))
                time.sleep(0.2)
            out, err = p.communicate()
            r = json.loads(out.strip().splitlines()[-1])
            r["rss_base_kib"] = base
            r["rss_peak_kib"] = peak
            if pid:
                r["kib_per_session"] = (peak - base) / n
            return r
        finally:
            self.off(mode)


def write_svg(path, rows):
    """Two bars per figure, (name, ftp-alg / kernel[, ftp-alg / floor]), with a line at 1.0."""
    w, bar, left = 760, 34, 280
    colors = ("#4a7bb7", "#e08a2c")
    h = 58 + bar * len(rows) + 30
    scale = (w - left - 60) / 2.0  # ratios 0..2; a longer one ends at 2 with its value written
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="12">' % (w, h),
           '<text x="10" y="20" font-size="14">ftp-alg / kernel FTP helper and ftp-alg / floor (1.0 = same; lower '
           'is better for times, higher for rates)</text>',
           '<rect x="10" y="30" width="12" height="10" fill="%s"/><text x="26" y="39">ftp-alg / kernel</text>'
           % colors[0],
           '<rect x="140" y="30" width="12" height="10" fill="%s"/><text x="156" y="39">ftp-alg / floor (every '
           'queued packet accepted unread)</text>' % colors[1]]
    for i, row in enumerate(rows):
        y = 53 + i * bar
        out.append('<text x="10" y="%d">%s</text>' % (y + 20, row[0]))
        for j, ratio in enumerate(row[1:3]):
            if ratio is None:
                continue
            yy = y + 3 + j * (bar - 6) // 2
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>'
                       % (left, yy, min(ratio, 2.0) * scale, (bar - 6) // 2 - 1, colors[j]))
            out.append('<text x="%.1f" y="%d" font-size="11">%.3f</text>'
                       % (left + min(ratio, 2.0) * scale + 4, yy + 11, ratio))
    x1 = left + scale
    out.append('<line x1="%.1f" y1="48" x2="%.1f" y2="%d" stroke="#b33" stroke-dasharray="4,3"/>'
               % (x1, x1, h - 25))
    out.append('<text x="%.1f" y="%d">1.0</text></svg>' % (x1 - 8, h - 10))
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def cell(v):
    return "-" if v is None else "%.3f" % v if abs(v) < 100 else "%.0f" % v


def judge(goal, kernel, floor, alg):
    """A goal "[kernel|floor|value] OP LIMIT" (no word: kernel) for ftp-alg's figure: (text, met or None)."""
    if not goal:
        return "", None
    words = goal.split()
    base = words.pop(0) if words[0] in ("kernel", "floor", "value") else "kernel"
    op, limit = words[0], float(words[1])
    ref = {"kernel": kernel, "floor": floor, "value": 1.0}[base]
    text = "%s %s %s" % ("ftp-alg" if base == "value" else "ftp-alg/" + base, op, words[1])
    if alg is None or not ref:
        return text + ": -", None
    met = alg / ref <= limit if op == "<=" else alg / ref >= limit
    return text + (": met" if met else ": NOT met"), met


def main():
    # A TERM (timeout, ^C from a wrapper) still removes the lab.
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--ftpload", required=True)
    ap.add_argument("--floor", help="the floor consumer (default: floor next to --ftpload)")
    ap.add_argument("--pkgroot", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--short", action="store_true", help="one small round: proves the bench works")
    ap.add_argument("--out", help="folder for results.json and ratios.svg")
    a = ap.parse_args()
    if a.short:
        a.rounds, a.sessions = 1, 200
    work = tempfile.mkdtemp(prefix="ftp-alg-bench.")
    os.chmod(work, 0o755)
    conf = os.path.join(work, "bench.conf")
    with open(conf, "w") as f:
        # One client address opens every session here, so the per-client limits are the global ones.
        f.write("MaxSessions = 40000\nMaxSessionsPerClient = 40000\nMaxPinholesPerClient = 40000\n"
                "MaxPinholes = 40000\nLogLevel = warning\n")
    lablib.prepare_files()  # the folder vsftpd serves
    big = os.path.join(lablib.FTP_ROOT, lablib.DATA_DIR, BIG)
    size = (64 << 20) if a.short else (1 << 30)
    if not os.path.exists(big) or os.path.getsize(big) != size:
        with open(big, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
        os.chmod(big, 0o644)
    lab = lablib.Lab(work, a.pkgroot)
    lab.verbose = False
    b = Bench(lab, os.path.abspath(a.binary), os.path.abspath(a.ftpload), a.short, conf)
    b.big_size = size
    b.floor = os.path.abspath(a.floor or os.path.join(os.path.dirname(a.ftpload), "floor"))
    failed = False
    try:
        lab.up()
        lablib.nsx("fa-s", "sysctl -qw net.core.somaxconn=8192")
        # Thousands of short sessions a second: use the whole port range before reusing one.
        lablib.nsx("fa-c", "sysctl -qw net.ipv4.ip_local_port_range='1024 65535'")
        os.makedirs(os.path.join(work, "run"), exist_ok=True)
        os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
        lab.start_server("fa-s", "vsftpd", "192.0.2.10", "vsftpd")
        lab.start_server("fa-o", "vsftpd-out", OUT_VSFTPD, "vsftpd")
        for _ in range(4):  # sharing the port: two descriptors per held session, 20,000 per process here
            lab.procs.append(subprocess.Popen(["ip", "netns", "exec", "fa-s", os.path.abspath(a.ftpload), "serve",
                                               "192.0.2.13", "21"]))
        for src in SOURCES[1:]:
            lablib.nsx("fa-c", "ip addr add %s/24 dev eth0" % src)
        time.sleep(1)
        for i in range(a.rounds):
            order = MODES[i % 3:] + MODES[:i % 3]
            for mode in order:
                print("round %d/%d: %s" % (i + 1, a.rounds, mode), flush=True)
                b.on(mode)
                try:
                    b.round(mode)
                finally:
                    b.off(mode)
        spread = {}
        for i in range(a.rounds):
            for w in ((1, 2) if i % 2 == 0 else (2, 1)):
                print("multi-core round %d/%d: %d worker%s" % (i + 1, a.rounds, w, "s" if w > 1 else ""), flush=True)
                spread[w] = b.multicore(w)
        # The kernel helper keeps one expectation per announced port, and a namespace cannot raise
        # nf_conntrack_expect_max: beyond it the helper drops the 227. Its run stays below that.
        with open("/proc/sys/net/netfilter/nf_conntrack_expect_max") as f:
            expect_max = int(f.read())
        kernel_n = min(a.sessions, expect_max - 96)
        print("scale: %d sessions (kernel helper: %d, its expectation limit is %d)"
              % (a.sessions, kernel_n, expect_max), flush=True)
        scale = {"kernel": b.scale("kernel", kernel_n), "ftp-alg": b.scale("ftp-alg", a.sessions)}
        scale["kernel"]["expect_max"] = expect_max
        small = b.scale("ftp-alg", 10)
    except Exception:
        import traceback
        traceback.print_exc()
        failed = True
    finally:
        lab.down()
    if failed:
        print("bench: FAILED")
        return 1

    med = {m: {k: statistics.median(v) for k, v in b.res[m].items()} for m in b.res}
    rows = [
        ("PASV->227 p50 (ms)", "pasv_p50", "floor <= 1.05"), ("PASV->227 p99 (ms)", "pasv_p99", "kernel <= 2"),
        ("PORT->200 p50 (ms)", "port_p50", "floor <= 1.05"), ("PORT->200 p99 (ms)", "port_p99", "kernel <= 2"),
        ("data connection setup p50 (ms)", "setup_p50", "<= 1.10"),
        ("PASV p50, 120 transfers/session (ms)", "long_pasv_p50", ""),
        ("PASV p99, 120 transfers/session (ms)", "long_pasv_p99", "kernel <= 2"),
        ("throughput, %d MiB (MiB/s)" % (size >> 20), "throughput_mib_s", ">= 0.97"),
        ("sessions/s, ftpload responder", "sessions_per_s", "floor >= 1"),
    ]
    rows += [
        ("daemon CPU per session (us)", "cpu_us_per_session", "value <= 250"),
        ("daemon CPU per control packet (us)", "cpu_us_per_packet", ""),
        ("machine CPU per session (us)", "machine_us_per_session", "kernel <= 1.4"),
    ]
    table = []
    print()
    print("%-38s %9s %9s %9s %14s %13s  %s" % ("figure", "kernel", "floor", "ftp-alg", "ftp-alg/kernel",
                                              "ftp-alg/floor", "goal"))

    def show(title, k, fl, f, goal):
        rk = f / k if f is not None and k else None
        rf = f / fl if f is not None and fl else None
        text, met = judge(goal, k, fl, f)
        table.append({"figure": title, "kernel": k, "floor": fl, "ftp-alg": f, "ratio": rk, "ratio_floor": rf,
                      "goal": text, "met": met})
        print("%-38s %9s %9s %9s %14s %13s  %s" % (title, cell(k), cell(fl), cell(f), cell(rk), cell(rf), text))
    for title, key, goal in rows:
        show(title, *(med[m].get(key) for m in MODES), goal)
    # ftp-alg's own figures from the scale runs below.
    s10, sn = small["pasv_at_n_p50_ms"], scale["ftp-alg"]["pasv_at_n_p50_ms"]
    show("pinhole install, PASV p50 %d / 10" % a.sessions, None, None, sn / s10 if s10 > 0 else None, "value <= 1.5")
    show("RSS per held session (KiB)", None, None, scale["ftp-alg"].get("kib_per_session"), "value <= 10")
    judged = [t for t in table if t["met"] is not None]
    print("goals met: %d of %d; not met: %s" % (sum(t["met"] for t in judged), len(judged),
                                                ", ".join(t["figure"] for t in judged if not t["met"]) or "none"))
    ops = [k for k in ("packet", "verdict", "nft", "ctnetlink", "rtnetlink") if "us_per_" + k in med["ftp-alg"]]
    print("\nwhere ftp-alg's time went in the latency runs (its own clocks; average per operation, count per round):")
    print("  " + ", ".join("%s %.1f us (%d)" % (k, med["ftp-alg"]["us_per_" + k], med["ftp-alg"]["count_" + k])
                           for k in ops))
    print("  (packet: handling one queued packet, its nft and ctnetlink calls included; verdict: the verdicts\n"
          "   of one burst of packets, sent in one message, in which the kernel carries each packet on)")
    # A session that failed was left out of its rate; none should fail (a port-reuse bug once hid here).
    failed_sessions = {k: sum(v) for m in b.res for k, v in b.res[m].items() if k.startswith("session_errors")}
    print("\nsessions that failed in the rate runs: %s" % failed_sessions)
    r1, r2 = med["ftp-alg"]["sessions_per_s_1w"], med["ftp-alg"]["sessions_per_s_2w"]
    print("\nmulti-core: sessions/s from %d client addresses (ftpload responder), 1 worker %.0f, 2 workers %.0f: "
          "scaling %.3f; sessions per worker with 2: %s; CPUs idle during the runs: %.0f%% and %.0f%%"
          % (len(SOURCES), r1, r2, r2 / r1, spread.get(2), 100 * med["ftp-alg"]["idle_1w"],
             100 * med["ftp-alg"]["idle_2w"]))
    table.append({"figure": "sessions/s, 2 workers / 1 worker", "kernel": None, "ftp-alg": r2 / r1, "ratio": None,
                  "goal": ""})
    sa, sk = scale["ftp-alg"], scale["kernel"]
    print("\nscale: %d concurrent sessions, each with an armed pinhole, then a transfer through each" % a.sessions)
    for name, r in (("kernel", sk), ("ftp-alg", sa)):
        print("  %-8s transfers ok %d/%d, PASV p50 at 10: %.3f ms, at %d: %.3f ms (p99 %.3f)"
              % (name, r["transfers_ok"], r["sessions"], r["pasv_first10_p50_ms"], r["sessions"],
                 r["pasv_at_n_p50_ms"], r["pasv_at_n_p99_ms"]))
    grow = sa["pasv_at_n_p50_ms"] / small["pasv_at_n_p50_ms"] if small["pasv_at_n_p50_ms"] > 0 else None
    print("  ftp-alg pinhole install (PASV p50 over 100 announcements) at 10: %.3f ms, at %d: %.3f ms, ratio %.3f "
          "(goal <= 1.5)" % (small["pasv_at_n_p50_ms"], a.sessions, sa["pasv_at_n_p50_ms"], grow))
    print("  ftp-alg RSS %d KiB at start, %d KiB at %d sessions: %.1f KiB per session"
          % (sa["rss_base_kib"], sa["rss_peak_kib"], a.sessions, sa["kib_per_session"]))
    ok = (sa["transfers_ok"] == a.sessions and sa["transfers_bad"] == 0 and sa["open_errors"] == 0
          and not any(failed_sessions.values()))
    print("  every ftp-alg transfer correct: %s (%d opened, %d failed to open, %d bad bytes)"
          % ("yes" if ok else "NO", sa["transfers_ok"], sa["open_errors"], sa["transfers_bad"]))
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump({"table": table, "scale": scale, "scale_10": small, "install_ratio": grow,
                       "raw": b.res, "rounds": a.rounds}, f, indent=1)
        write_svg(os.path.join(a.out, "ratios.svg"), [(t["figure"], t["ratio"], t.get("ratio_floor")) for t in table
                                                       if t["ratio"] is not None or t.get("ratio_floor")] +
                  [("PASV at %d vs 10 sessions" % a.sessions, grow)])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
