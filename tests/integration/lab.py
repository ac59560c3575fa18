"""The namespace lab the integration tests and the bench share, and the check API.

Topology (documentation addresses only):

  fa-c 203.0.113.10 --+                         +-- fa-s 192.0.2.10   vsftpd    (public 203.0.113.1)
  fa-x 203.0.113.20 --+-- [br-out] fa-gw [br-lan] ----+        192.0.2.11   proftpd   (public 203.0.113.2)
                        203.0.113.1-4  192.0.2.1          192.0.2.12   pure-ftpd (public 203.0.113.3)
                                       198.51.100.1       198.51.100.100 vsftpd  (public 203.0.113.4)

The gateway forwards only port 21 of each public address, masquerades the
LAN, and runs a strict stateful forward policy. Every namespace is deleted at
the end, also on failure.

Each t_*.py file is one behaviour: GATEWAYS says which gateway setups it runs
under, checks(t) yields (name, function of t) pairs. run.py runs them.
"""
import hashlib
import json
import os
import re
import signal
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NS = ["fa-c", "fa-x", "fa-gw", "fa-s", "fa-lc", "fa-o"]
FTP_ROOT = "/srv/ftp"
DATA_DIR = "ftp-alg-test"

SERVERS = {
    # name: (public address, server address, kind)
    "vsftpd": ("203.0.113.1", "192.0.2.10", "vsftpd"),
    "proftpd": ("203.0.113.2", "192.0.2.11", "proftpd"),
    "pure-ftpd": ("203.0.113.3", "192.0.2.12", "pure-ftpd"),
    "vsftpd-short": ("203.0.113.4", "198.51.100.100", "vsftpd"),
}

# Outside servers for LAN clients in active mode (fa-o), behind nothing.
OUTSIDE = {
    "vsftpd-out": ("203.0.113.30", "vsftpd"),
    "proftpd-out": ("203.0.113.31", "proftpd"),
}
BOUNCE_SERVER = "203.0.113.32"
LAN_CLIENT = "192.0.2.50"
THIRD_HOST = "203.0.113.20"

# IPv6: the gateway routes 2001:db8:2::/64 (no NAT) and masquerades 2001:db8:3::/64 (NAT66).
# Its default route points at fa-c, which plays the Internet: the outside client
# address and an outside server live there, beyond the default route.
V6_CLIENT = "2001:db8:100::10"
V6_OUT_SERVER = "2001:db8:101::30"
V6_ROUTED_SERVER = "2001:db8:2::10"
V6_NAT_SERVER = "2001:db8:3::10"
V6_NAT_PUBLIC = "2001:db8:1::4"
V6_ROUTED_LAN = "2001:db8:2::50"
V6_NAT_LAN = "2001:db8:3::50"

GW6_RULES = """
table ip6 lab6 {
  chain port_forward { type nat hook prerouting priority dstnat; policy accept;
    iifname "br-out" ip6 daddr 2001:db8:1::4 tcp dport 21 dnat to [2001:db8:3::10]:21
  }
  chain masq { type nat hook postrouting priority srcnat; policy accept;
    oifname "br-out" ip6 saddr 2001:db8:3::/64 masquerade
  }
  chain forward { type filter hook forward priority filter; policy drop;
    ct state invalid counter drop
    ct state established,related counter accept
    ct status dnat counter accept
    iifname "br-out" ip6 daddr 2001:db8:2::10 tcp dport 21 accept
    iifname "br-lan" oifname "br-out" accept
    meta l4proto ipv6-icmp accept
  }
}
"""

GW_RULES = """
table ip lab {
  chain port_forward { type nat hook prerouting priority dstnat; policy accept;
    iifname "br-out" ip daddr 203.0.113.1 tcp dport 21 dnat to 192.0.2.10
    iifname "br-out" ip daddr 203.0.113.2 tcp dport 21 dnat to 192.0.2.11
    iifname "br-out" ip daddr 203.0.113.3 tcp dport 21 dnat to 192.0.2.12
    iifname "br-out" ip daddr 203.0.113.4 tcp dport 21 dnat to 198.51.100.100
    iifname "br-lan" ip daddr 203.0.113.1 tcp dport 21 dnat to 192.0.2.10
    iifname "br-out" ip daddr 203.0.113.5 tcp dport 21 dnat to 192.0.2.13
  }
  chain masq { type nat hook postrouting priority srcnat; policy accept;
    oifname "br-out" ip saddr { 192.0.2.0/24, 198.51.100.0/24 } masquerade
    iifname "br-lan" oifname "br-lan" masquerade
  }
  chain forward { type filter hook forward priority filter; policy drop;
    ct state invalid counter drop
    ct state established,related counter accept
    ct status dnat counter accept
    iifname "br-lan" oifname "br-out" accept
  }
}
"""

HELPER_RULES = """
table inet labhelper {
  ct helper ftp-standard { type "ftp" protocol tcp; }
  chain pre { type filter hook prerouting priority filter; policy accept;
    tcp dport 21 ct helper set "ftp-standard"
  }
}
"""


def sh(cmd, check=True, timeout=60, input=None):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=timeout,
                       input=input)
    if check and r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (r.returncode, cmd, r.stdout, r.stderr))
    return r


def nsx(ns, cmd, **kw):
    if isinstance(cmd, str):
        return sh("ip netns exec %s %s" % (ns, cmd), **kw)
    return sh(["ip", "netns", "exec", ns] + cmd, **kw)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


class Lab:
    def __init__(self, workdir, pkgroot):
        self.wrapper = []  # a command the daemon runs under (valgrind)
        self.verbose = True  # debug logs; the bench turns them off
        self.work = workdir
        self.pkgroot = pkgroot
        self.procs = []
        self.alg = None
        self.alg_log = None
        self.helper_on = False

    def down(self):
        self.stop_alg(check=False)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.procs = []
        for n in NS:
            # Servers fork; whatever still runs in the namespace goes with it.
            pids = sh(["ip", "netns", "pids", n], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            sh(["ip", "netns", "del", n], check=False)

    def up(self):
        self.down()
        for n in NS:
            sh(["ip", "netns", "add", n])
            nsx(n, "ip link set lo up")
        g = "fa-gw"
        nsx(g, "ip link add br-out type bridge")
        nsx(g, "ip link add br-lan type bridge")
        for br in ("br-out", "br-lan"):
            nsx(g, "ip link set %s up" % br)
        for a in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4", "203.0.113.5"):
            nsx(g, "ip addr add %s/24 dev br-out" % a)
        nsx(g, "ip addr add 192.0.2.1/24 dev br-lan")
        nsx(g, "ip addr add 198.51.100.1/24 dev br-lan")
        for n, br, addrs, gw in (("fa-c", "br-out", ["203.0.113.10"], "203.0.113.1"),
                                 ("fa-x", "br-out", ["203.0.113.20"], "203.0.113.1"),
                                 ("fa-s", "br-lan", ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"],
                                  "192.0.2.1"),
                                 ("fa-lc", "br-lan", [LAN_CLIENT], "192.0.2.1"),
                                 ("fa-o", "br-out", ["203.0.113.30", "203.0.113.31", BOUNCE_SERVER], "203.0.113.1")):
            peer = "v" + n[3:].replace("-", "")
            sh(["ip", "link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", peer, "netns", g])
            nsx(g, "ip link set %s master %s up" % (peer, br))
            for a in addrs:
                nsx(n, "ip addr add %s/24 dev eth0" % a)
            nsx(n, "ip link set eth0 up")
            nsx(n, "ip route add default via %s" % gw)
        nsx("fa-s", "ip addr add 198.51.100.100/24 dev eth0")
        nsx(g, "sysctl -qw net.ipv4.ip_forward=1")
        nsx(g, ["nft", "-f", "-"], input=GW_RULES)
        # IPv6
        nsx(g, "sysctl -qw net.ipv6.conf.all.forwarding=1")
        for a in ("2001:db8:1::1/64", V6_NAT_PUBLIC + "/64"):
            nsx(g, "ip addr add %s dev br-out nodad" % a)
        for a in ("2001:db8:2::1/64", "2001:db8:3::1/64"):
            nsx(g, "ip addr add %s dev br-lan nodad" % a)
        v6 = {"fa-c": ["2001:db8:1::10/64", V6_CLIENT + "/128", V6_OUT_SERVER + "/128"],
              "fa-s": [V6_ROUTED_SERVER + "/64", V6_NAT_SERVER + "/64"],
              "fa-lc": [V6_ROUTED_LAN + "/64", V6_NAT_LAN + "/64"]}
        for n, addrs in v6.items():
            for a in addrs:
                nsx(n, "ip addr add %s dev %s nodad" % (a, "lo" if a.endswith("/128") else "eth0"))
        nsx("fa-c", "ip -6 route add 2001:db8::/32 via 2001:db8:1::1")
        for n in ("fa-s", "fa-lc"):
            nsx(n, "ip -6 route add default via 2001:db8:2::1")
        nsx(g, "ip -6 route add default via 2001:db8:1::10")
        nsx(g, ["nft", "-f", "-"], input=GW6_RULES)

    def start_server(self, ns, name, addr, kind):
        run = os.path.join(self.work, "run")
        log = open(os.path.join(self.work, name + ".log"), "w")
        if kind == "vsftpd":
            conf = os.path.join(run, name + ".conf")
            with open(conf, "w") as f:
                listen = ("listen=NO\nlisten_ipv6=YES\nlisten_address6=%s\n" % addr if ":" in addr else
                          "listen=YES\nlisten_ipv6=NO\nlisten_address=%s\n" % addr)
                f.write(listen + "background=NO\n"
                        "anonymous_enable=YES\nlocal_enable=NO\nwrite_enable=NO\nanon_root=%s\n"
                        "no_anon_password=YES\npasv_enable=YES\nport_enable=YES\nseccomp_sandbox=NO\n"
                        "secure_chroot_dir=/var/run/vsftpd/empty\nxferlog_enable=NO\n"
                        "ftp_username=ftp\nmax_per_ip=200\nmax_clients=200\n" % FTP_ROOT)
            cmd = ["vsftpd", conf]
        elif kind == "proftpd":
            conf = os.path.join(run, name + ".conf")
            with open(conf, "w") as f:
                f.write('ServerName "lab"\nServerType standalone\nDefaultServer on\nPort 21\n'
                        "DefaultAddress %s\nSocketBindTight on\nUseIPv6 off\nUser nobody\n"
                        "Group nogroup\nScoreboardFile %s/%s.scoreboard\nPidFile %s/%s.pid\n"
                        "WtmpLog off\nDelayEngine off\nUseReverseDNS off\n"
                        "RequireValidShell off\nMaxInstances 200\n<Anonymous %s>\n User ftp\n Group ftp\n"
                        " UserAlias anonymous ftp\n RequireValidShell off\n MaxClients 200\n"
                        "</Anonymous>\n" % (addr, run, name, run, name, FTP_ROOT))
            cmd = [os.path.join(self.pkgroot, "usr/sbin/proftpd"), "-n", "-q", "-c", conf]
        elif kind == "pure-ftpd":
            cmd = [os.path.join(self.pkgroot, "usr/sbin/pure-ftpd"), "-S", addr + ",21", "-e", "-H", "-A",
                   "-c", "200", "-C", "200"]
        elif kind == "evil":
            cmd = ["python3", os.path.join(HERE, "evil_server.py"), "--addr", addr]
        else:
            self.bounce_log = os.path.join(self.work, "bounce.jsonl")
            cmd = ["python3", os.path.join(HERE, "bounce_server.py"), "--addr", addr, "--log", self.bounce_log]
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdout=log, stderr=subprocess.STDOUT))
        return (ns, name, addr)

    def start_servers(self):
        os.makedirs(os.path.join(self.work, "run"), exist_ok=True)
        os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
        started = [self.start_server("fa-s", name, addr, kind) for name, (pub, addr, kind) in SERVERS.items()]
        started += [self.start_server("fa-o", name, addr, kind) for name, (addr, kind) in OUTSIDE.items()]
        started.append(self.start_server("fa-o", "bounce", BOUNCE_SERVER, "bounce"))
        started.append(self.start_server("fa-s", "evil", "192.0.2.13", "evil"))
        for ns, name, addr in (("fa-s", "vsftpd6-routed", V6_ROUTED_SERVER), ("fa-s", "vsftpd6-nat", V6_NAT_SERVER),
                               ("fa-c", "vsftpd6-out", V6_OUT_SERVER)):
            started.append(self.start_server(ns, name, addr, "vsftpd"))
        deadline = time.time() + 10
        for ns, name, addr in started:
            while True:
                r = nsx(ns, "ss -Hltn src %s:21" % ("[%s]" % addr if ":" in addr else addr), check=False)
                if r.stdout.strip():
                    break
                if time.time() > deadline:
                    with open(os.path.join(self.work, name + ".log")) as f:
                        raise RuntimeError("%s did not start:\n%s" % (name, f.read()[-2000:]))
                time.sleep(0.1)

    def start_alg(self, binary, args=(), ready=None):
        """Start the daemon in the gateway; ready() says it is up (default: its start-up log line)."""
        self.alg_log = os.path.join(self.work, "ftp-alg.log")
        starts = self.log().count("event=start ")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1")
        self.alg = subprocess.Popen(["ip", "netns", "exec", "fa-gw"] + self.wrapper + [binary] +
                                    (["-v"] if self.verbose else []) + list(args),
                                    stdout=subprocess.DEVNULL, stderr=open(self.alg_log, "a"), env=env)
        deadline = time.time() + (60 if self.wrapper else 10)
        while not (ready() if ready else self.log().count("event=start ") > starts):
            if self.alg.poll() is not None or time.time() > deadline:
                raise RuntimeError("ftp-alg did not start:\n" + self.log())
            time.sleep(0.05)

    def stop_alg(self, check=True):
        if not self.alg:
            return None
        self.alg.send_signal(signal.SIGTERM)
        try:
            rc = self.alg.wait(timeout=60 if self.wrapper else 10)
        except subprocess.TimeoutExpired:
            self.alg.kill()
            rc = self.alg.wait()
        self.alg = None
        return rc

    def kill_alg(self):
        """kill -9 the daemon, as a crash would."""
        self.alg.kill()
        self.alg.wait()
        self.alg = None

    def log(self):
        try:
            with open(self.alg_log) as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def helper(self, on):
        if on:
            nsx("fa-gw", ["nft", "-f", "-"], input=HELPER_RULES)
        else:
            nsx("fa-gw", "nft delete table inet labhelper", check=False)
        self.helper_on = on

    def gateway(self, setup, binary):
        """Bring the gateway to one setup: none (no ALG), kernel (the kernel's ftp helper), ftp-alg (the
        daemon with defaults, running), own (no daemon: the checks start their own)."""
        if setup != "ftp-alg" and self.alg:
            self.stop_alg()
        if setup != "kernel" and self.helper_on:
            self.helper(False)
            # The helper's conntrack entries would keep its expectations alive.
            nsx("fa-gw", "conntrack -F", check=False)
        if setup == "kernel" and not self.helper_on:
            self.helper(True)
        if setup == "ftp-alg" and not self.alg:
            self.start_alg(binary)


def prepare_files():
    d = os.path.join(FTP_ROOT, DATA_DIR)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    files = {}
    for name, size in (("f1M", 1 << 20), ("f100M", 100 << 20)):
        p = os.path.join(d, name)
        if not os.path.exists(p) or os.path.getsize(p) != size:
            with open(p, "wb") as f:
                left = size
                while left:
                    n = min(left, 1 << 20)
                    f.write(os.urandom(n))
                    left -= n
        os.chmod(p, 0o644)
        files[name] = sha256(p)
    return files


def valgrind_clean(lab, work):
    """Stop the daemon and read every valgrind report it left."""
    rc = lab.stop_alg()
    reports = sorted(f for f in os.listdir(work) if f.startswith("valgrind."))
    if not reports:
        raise AssertionError("valgrind wrote no report")
    for f in reports:
        with open(os.path.join(work, f)) as fh:
            text = fh.read()
        m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
        # Definite and indirect leaks count as errors (--errors-for-leak-kinds).
        if not m or m.group(1) != "0":
            raise AssertionError("%s:\n%s" % (f, text[-3000:]))
    if rc == 97:
        raise AssertionError("valgrind exit code 97")


def last_json(r, what="client"):
    """The JSON object a helper script printed last, from a finished sh()/nsx() result."""
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError("%s failed: %s %s" % (what, r.stdout[-600:], r.stderr[-1200:]))


def public(server):
    return SERVERS[server][0] if server in SERVERS else OUTSIDE[server][0]


def ftpclient_args(host, files, *extra, name="f1M"):
    return ["python3", os.path.join(HERE, "ftpclient.py"), "--host", host, "--path", "/%s/%s" % (DATA_DIR, name),
            "--sha256", files[name]] + list(extra)


class Held:
    """A client process held open in a namespace: it prints one JSON line per step and waits on stdin.

    Use it in a with block: the process is killed on the way out, whatever happened.
    """

    def __init__(self, ns, cmd):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)

    def read(self):
        line = self.p.stdout.readline()
        try:
            return json.loads(line)
        except ValueError:
            raise AssertionError("held client said %r" % line)

    def say(self, word):
        """Send one word ("go", "quit") and return the client's next JSON line."""
        self.p.stdin.write(word + "\n")
        self.p.stdin.flush()
        return self.read()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class T:
    """What a check gets: the lab, the test files' digests, the daemon binary, and the clients."""

    def __init__(self, lab, files, binary, quick):
        self.lab = lab
        self.files = files
        self.binary = binary
        self.quick = quick
        self.ctl = os.path.join(lab.work, "ctl.sock")
        self.last_curl6 = ""

    def log(self):
        return self.lab.log()

    def held(self, ns, host, *extra):
        """ftpclient.py against host, held at the step its flags name (--announce-only, --pause-after N...)."""
        return Held(ns, ftpclient_args(host, self.files, *extra))

    def status(self, ctl=None):
        return json.loads(sh([self.binary, "status", "--json", "--control-socket", ctl or self.ctl]).stdout)

    def elements(self, name):
        """The elements of one of the daemon's sets or maps (pasv4 is a map)."""
        kind = "map" if name in ("pasv4", "publish4") else "set"
        r = nsx("fa-gw", "nft -j list %s inet ftp_alg %s" % (kind, name))
        for item in json.loads(r.stdout)["nftables"]:
            s = item.get("set") or item.get("map")
            if s:
                return s.get("elem", [])
        return []

    def tables(self):
        return nsx("fa-gw", "nft list tables").stdout

    def connects(self, ns, host, port, timeout=3):
        """Whether a TCP connection from ns to host:port is accepted."""
        r = nsx(ns, ["python3", "-c", "import socket\ntry:\n socket.create_connection(('%s',%d),timeout=%d).close()\n"
                     " print('connected')\nexcept OSError as e:\n print('refused', e)" % (host, port, timeout)],
                check=False)
        return "connected" in r.stdout

    # --- clients: each raises AssertionError unless the file arrived whole -------------
    def curl(self, server, epsv, name="f1M", ns="fa-c", timeout=20, active=False, eprt=True, source=None):
        out = os.path.join(self.lab.work, "curl.out")
        args = ["curl", "-sS", "--no-ftp-skip-pasv-ip", "--max-time", str(timeout), "-o", out,
                "ftp://%s/%s/%s" % (public(server), DATA_DIR, name)]
        if source:
            args[1:1] = ["--interface", source]
        if not epsv:
            args.insert(1, "--disable-epsv")
        if active:
            args[1:1] = ["-P", "-"] + ([] if eprt else ["--disable-eprt"])
        r = nsx(ns, args, check=False, timeout=timeout + 10)
        if r.returncode != 0:
            raise AssertionError("curl exit %d: %s" % (r.returncode, r.stderr.strip()))
        got = sha256(out)
        os.unlink(out)
        if got != self.files[name]:
            raise AssertionError("sha256 mismatch for %s" % name)

    def curl6(self, ns, source, host, active, timeout=20):
        out = os.path.join(self.lab.work, "curl6.out")
        args = ["curl", "-sS", "--max-time", str(timeout), "--interface", source, "-o", out, "-v",
                "ftp://[%s]/%s/f1M" % (host, DATA_DIR)]
        if active:
            args[1:1] = ["-P", source]
        r = nsx(ns, args, check=False, timeout=40)
        self.last_curl6 = r.stderr
        if r.returncode != 0:
            raise AssertionError("curl exit %d: %s" % (r.returncode, r.stderr.strip().splitlines()[-1]))
        if sha256(out) != self.files["f1M"]:
            raise AssertionError("sha256 mismatch")
        os.unlink(out)

    def lftp(self, server, epsv, active=False):
        out = os.path.join(self.lab.work, "lftp.out")
        # fix-pasv-address would replace a private 227 address and hide a broken rewrite.
        script = ("set net:max-retries 1; set net:timeout 10; set ftp:passive-mode %s; "
                  "set ftp:fix-pasv-address no; set ftp:prefer-epsv %s; get %s/f1M -o %s; bye"
                  % ("off" if active else "on", "yes" if epsv else "no", DATA_DIR, out))
        r = nsx("fa-lc" if active else "fa-c",
                ["timeout", "40", "lftp", "-u", "anonymous,test@", "-e", script, "ftp://" + public(server)],
                check=False, timeout=60)
        if r.returncode != 0:
            raise AssertionError("lftp exit %d: %s" % (r.returncode, (r.stderr or r.stdout).strip()[-300:]))
        if sha256(out) != self.files["f1M"]:
            raise AssertionError("sha256 mismatch")
        os.unlink(out)

    def ftplib(self, server, count, mode):
        """count transfers on one connection; mode pasv, epsv, both (PASV to a public address) or port (LAN)."""
        return self.ftpclient("fa-lc" if mode == "port" else "fa-c", public(server), count, mode)

    def ftplib6(self, ns, source, host, count, mode):
        return self.ftpclient(ns, host, count, mode, "--source", source)

    def ftpclient(self, ns, host, count, mode, *extra):
        r = nsx(ns, ftpclient_args(host, self.files, "--count", str(count), "--mode", mode, *extra),
                check=False, timeout=300)
        res = last_json(r)
        if res["ok"] != count or res["bad"]:
            raise AssertionError("%d/%d ok: %s" % (res["ok"], count, "; ".join(res["errors"])[:400]))
        return res


def expect(cond, message, *args):
    """Fail the check with message % args unless cond holds."""
    if not cond:
        raise AssertionError(message % args if args else message)
