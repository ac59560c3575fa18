#!/usr/bin/env python3
"""Integration tests for ftp-alg in a throwaway network-namespace lab.

Topology (documentation addresses only):

  fa-c 203.0.113.10 --+                         +-- fa-s 192.0.2.10   vsftpd    (public 203.0.113.1)
  fa-x 203.0.113.20 --+-- [br-out] fa-gw [br-lan] ----+        192.0.2.11   proftpd   (public 203.0.113.2)
                        203.0.113.1-4  192.0.2.1          192.0.2.12   pure-ftpd (public 203.0.113.3)
                                       198.51.100.1       198.51.100.100 vsftpd  (public 203.0.113.4)

The gateway forwards only port 21 of each public address, masquerades the
LAN, and runs a strict stateful forward policy. Every namespace is deleted at
the end, also on failure. Output ends with "N passed, N failed".
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

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
        starts = self.log().count(" started: ")
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="print_stacktrace=1")
        self.alg = subprocess.Popen(["ip", "netns", "exec", "fa-gw"] + self.wrapper + [binary] +
                                    (["-v"] if self.verbose else []) + list(args),
                                    stdout=subprocess.DEVNULL, stderr=open(self.alg_log, "a"), env=env)
        deadline = time.time() + (60 if self.wrapper else 10)
        while not (ready() if ready else self.log().count(" started: ") > starts):
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


class Suite:
    def __init__(self, lab, files, binary, quick):
        self.lab = lab
        self.files = files
        self.binary = binary
        self.quick = quick
        self.passed = 0
        self.failed = 0
        self.mode = ""

    def check(self, name, fn):
        full = "%s: %s" % (self.mode, name) if self.mode else name
        t0 = time.time()
        try:
            fn()
            self.passed += 1
            print("PASS %s (%.1fs)" % (full, time.time() - t0), flush=True)
        except Exception as e:
            self.failed += 1
            print("FAIL %s: %s" % (full, e), flush=True)
            if os.environ.get("FTP_ALG_TEST_TRACE"):
                traceback.print_exc()

    # --- clients -------------------------------------------------------
    def curl(self, server, epsv, name="f1M", ns="fa-c", timeout=20, active=False, eprt=True, source=None):
        pub = SERVERS[server][0] if server in SERVERS else OUTSIDE[server][0]
        out = os.path.join(self.lab.work, "curl.out")
        args = ["curl", "-sS", "--no-ftp-skip-pasv-ip", "--max-time", str(timeout), "-o", out,
                "ftp://%s/%s/%s" % (pub, DATA_DIR, name)]
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

    def ftplib6(self, ns, source, host, count, mode):
        r = nsx(ns, ["python3", os.path.join(HERE, "ftpclient.py"), "--host", host, "--source", source, "--path",
                     "/%s/f1M" % DATA_DIR, "--sha256", self.files["f1M"], "--count", str(count), "--mode", mode],
                check=False, timeout=300)
        try:
            res = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError("client output: %s %s" % (r.stdout, r.stderr))
        if res["ok"] != count or res["bad"]:
            raise AssertionError("%d/%d ok: %s" % (res["ok"], count, "; ".join(res["errors"])[:400]))

    def ipv6(self):
        self.check("IPv6 routed: curl EPSV outside -> LAN server",
                   lambda: self.curl6("fa-c", V6_CLIENT, V6_ROUTED_SERVER, active=False))
        self.check("IPv6 routed: ftplib 20 EPSV transfers outside -> LAN server",
                   lambda: self.ftplib6("fa-c", V6_CLIENT, V6_ROUTED_SERVER, 20, "epsv"))
        self.check("IPv6 NAT66: curl EPSV outside -> port-forwarded server",
                   lambda: self.curl6("fa-c", V6_CLIENT, V6_NAT_PUBLIC, active=False))
        self.check("IPv6 routed: curl EPRT LAN client -> outside server",
                   lambda: self.curl6("fa-lc", V6_ROUTED_LAN, V6_OUT_SERVER, active=True))
        self.check("IPv6 routed: ftplib 20 EPRT transfers LAN client -> outside server",
                   lambda: self.ftplib6("fa-lc", V6_ROUTED_LAN, V6_OUT_SERVER, 20, "port"))
        self.check("IPv6 NAT66: curl EPRT masqueraded LAN client -> outside server",
                   lambda: self.curl6("fa-lc", V6_NAT_LAN, V6_OUT_SERVER, active=True))

    def lftp(self, server, epsv, active=False):
        pub = SERVERS[server][0] if server in SERVERS else OUTSIDE[server][0]
        out = os.path.join(self.lab.work, "lftp.out")
        # fix-pasv-address would replace a private 227 address and hide a broken rewrite.
        script = ("set net:max-retries 1; set net:timeout 10; set ftp:passive-mode %s; "
                  "set ftp:fix-pasv-address no; set ftp:prefer-epsv %s; get %s/f1M -o %s; bye"
                  % ("off" if active else "on", "yes" if epsv else "no", DATA_DIR, out))
        r = nsx("fa-lc" if active else "fa-c", ["timeout", "40", "lftp", "-u", "anonymous,test@", "-e", script, "ftp://" + pub],
                check=False, timeout=60)
        if r.returncode != 0:
            raise AssertionError("lftp exit %d: %s" % (r.returncode, (r.stderr or r.stdout).strip()[-300:]))
        if sha256(out) != self.files["f1M"]:
            raise AssertionError("sha256 mismatch")
        os.unlink(out)

    def ftplib(self, server, count, mode):
        pub = SERVERS[server][0] if server in SERVERS else OUTSIDE[server][0]
        r = nsx("fa-lc" if mode == "port" else "fa-c", ["python3", os.path.join(HERE, "ftpclient.py"), "--host", pub, "--path",
                         "/%s/f1M" % DATA_DIR, "--sha256", self.files["f1M"], "--count", str(count),
                         "--mode", mode], check=False, timeout=300)
        try:
            res = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise AssertionError("client output: %s %s" % (r.stdout, r.stderr))
        if res["ok"] != count or res["bad"]:
            raise AssertionError("%d/%d ok: %s" % (res["ok"], count, "; ".join(res["errors"])[:400]))
        return res

    # --- tests ---------------------------------------------------------
    def negative_control(self):
        """Without any ALG the seed's problem shows: the 227 carries a private address."""
        self.mode = "no ALG"

        def v6():
            try:
                self.curl6("fa-c", V6_CLIENT, V6_ROUTED_SERVER, active=False, timeout=4)
            except AssertionError:
                # The control connection works; it is the data connection the firewall stops.
                if "< 229 " not in self.last_curl6:
                    raise AssertionError("the control connection itself failed:\n" + self.last_curl6[-800:])
                return
            raise AssertionError("IPv6 EPSV passed the routed firewall without an ALG")
        self.check("IPv6 EPSV through the routed stateful firewall fails without an ALG", v6)

        def t():
            try:
                self.curl("vsftpd", epsv=False, timeout=4)
            except AssertionError as e:
                if "timed out" not in str(e) and "Failed to connect" not in str(e):
                    raise
                return
            raise AssertionError("passive FTP worked without an ALG: the lab does not reproduce NAT")
        self.check("PASV through NAT fails without an ALG", t)

    def transfers(self, label):
        self.mode = label
        for s in SERVERS:
            self.check("curl PASV %s 1MiB" % s, lambda s=s: self.curl(s, epsv=False))
            self.check("curl EPSV %s 1MiB" % s, lambda s=s: self.curl(s, epsv=True))
            self.check("lftp PASV %s 1MiB" % s, lambda s=s: self.lftp(s, epsv=False))
        self.check("lftp EPSV vsftpd 1MiB", lambda: self.lftp("vsftpd", epsv=True))
        count = 20 if self.quick else 60
        for s in ("vsftpd", "vsftpd-short", "proftpd", "pure-ftpd"):
            self.check("ftplib %d transfers on one connection, %s, PASV" % (count, s),
                       lambda s=s: self.ftplib(s, count, "pasv"))
        self.check("ftplib %d transfers on one connection, vsftpd, PASV+EPSV" % count,
                   lambda: self.ftplib("vsftpd", count, "both"))
        if not self.quick:
            self.check("curl PASV vsftpd 100MiB", lambda: self.curl("vsftpd", epsv=False, name="f100M", timeout=120))
        # Active mode from a LAN client behind masquerade to outside servers.
        for s in OUTSIDE:
            self.check("curl active EPRT LAN->%s 1MiB" % s, lambda s=s: self.curl(s, True, ns="fa-lc", active=True))
            self.check("curl active PORT LAN->%s 1MiB" % s,
                       lambda s=s: self.curl(s, True, ns="fa-lc", active=True, eprt=False))
            self.check("ftplib 20 active transfers on one connection LAN->%s" % s,
                       lambda s=s: self.ftplib(s, 20, "port"))
        self.check("lftp active LAN->vsftpd-out 1MiB", lambda: self.lftp("vsftpd-out", epsv=False, active=True))
        self.check("hairpin: LAN client PASV to the public address", lambda: self.curl("vsftpd", False, ns="fa-lc"))
        self.check("hairpin: LAN client EPSV to the public address", lambda: self.curl("vsftpd", True, ns="fa-lc"))
        self.ipv6()
        if not self.quick:
            self.check("curl active PORT LAN->vsftpd-out 100MiB",
                       lambda: self.curl("vsftpd-out", True, name="f100M", ns="fa-lc", active=True, eprt=False,
                                         timeout=120))

    def alg_specific(self):
        self.mode = "ftp-alg"
        lab = self.lab

        def rewritten_lines():
            self.ftplib("vsftpd", 1, "pasv")
            self.ftplib("vsftpd-short", 1, "pasv")
            lines = re.findall(r'event=pasv client=203\.0\.113\.10 public=(\S+) server=(\S+) pinhole=\d+s '
                               r'old="([^"]*)" new="([^"]*)"', lab.log())
            longer = [l for l in lines if l[1] == "192.0.2.10"]
            shorter = [l for l in lines if l[1] == "198.51.100.100"]
            if not longer or not shorter:
                raise AssertionError("no rewrite logged for both servers")
            for pub, srv, old, new in (longer[-1], shorter[-1]):
                m_old = re.match(r"227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)\.\\x0d\\x0a$", old)
                m_new = re.match(r"227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)\.\\x0d\\x0a$", new)
                if not m_old or not m_new:
                    raise AssertionError("unexpected lines %r -> %r" % (old, new))
                if ".".join(m_old.group(1, 2, 3, 4)) != srv:
                    raise AssertionError("old line does not name the server: %r" % old)
                pub_addr, pub_port = pub.rsplit(":", 1)
                if ".".join(m_new.group(1, 2, 3, 4)) != pub_addr:
                    raise AssertionError("new line does not name the public address: %r" % new)
                if int(m_new.group(5)) * 256 + int(m_new.group(6)) != int(pub_port):
                    raise AssertionError("new line's port differs from the published one")
            if len(longer[-1][3]) - len(longer[-1][2]) != 1:
                raise AssertionError("expected the vsftpd rewrite to lengthen by 1")
            if len(shorter[-1][3]) - len(shorter[-1][2]) != -3:
                raise AssertionError("expected the 198.51.100.100 rewrite to shorten by 3")
        self.check("exact rewritten 227 lines (lengthen +1, shorten -3)", rewritten_lines)

        def elements(name):
            kind = "map" if name == "pasv4" else "set"
            r = nsx("fa-gw", "nft -j list %s inet ftp_alg %s" % (kind, name))
            data = json.loads(r.stdout)
            for item in data["nftables"]:
                if "set" in item or "map" in item:
                    s = item.get("set") or item.get("map")
                    return s.get("elem", [])
            return []

        def many_rewrites(pipeline, loss):
            # Loss at the client both ways: retransmissions, SACK and partial ACKs around length-changing
            # rewrites. Pipelined: 30 rewrites in flight at once, many in one segment.
            if loss:
                nsx("fa-c", "nft -f -", input="table inet loss {\n"
                    " chain i { type filter hook input priority 0; tcp sport 21 numgen random mod 5 == 0 counter drop; }\n"
                    " chain o { type filter hook output priority 0; tcp dport 21 numgen random mod 8 == 0 counter drop; }\n"
                    "}\n")
            try:
                r = nsx("fa-c", ["python3", os.path.join(HERE, "pipelined.py"), "--host", "203.0.113.1", "--path",
                                 "/%s/f1M" % DATA_DIR, "--count", "30"] + (["--pipeline"] if pipeline else []),
                        check=False, timeout=240)
                dropped = nsx("fa-c", "nft list table inet loss").stdout if loss else ""
            finally:
                if loss:
                    nsx("fa-c", "nft delete table inet loss", check=False)
            try:
                res = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                raise AssertionError("client failed: %s %s" % (r.stdout, r.stderr[-1200:]))
            bad = [l for l in res["lines"] if not re.match(r"227 Entering Passive Mode \(203,0,113,1,\d+,\d+\)\.\r\n$", l)]
            if len(res["lines"]) != 30 or bad:
                raise AssertionError("%d replies (%s), wrong ones: %r" % (len(res["lines"]), res.get("error"), bad[:3]))
            if res["sha256"] != self.files["f1M"]:
                raise AssertionError("the transfer through the last one failed: %s" % res.get("error"))
            if loss and not re.search(r"packets [1-9]\d* bytes", dropped):
                raise AssertionError("the loss rules dropped nothing: the test proved nothing")
            # The client has quit; its unused pinholes must go with the connection, even if the
            # close itself needed retransmissions. Later tests count the armed pinholes.
            deadline = time.time() + 15
            while elements("once4") and time.time() < deadline:
                time.sleep(0.1)
            if elements("once4"):
                ct = nsx("fa-gw", "conntrack -L -p tcp --dport 21", check=False).stdout
                raise AssertionError("pinholes outlived the control connection: %s; conntrack: %s" %
                                     (elements("once4"), ct))
        self.check("30 PASV on one connection under random loss both ways: every 227 rewritten, then a transfer",
                   lambda: many_rewrites(False, True))
        self.check("30 PASV pipelined in one write: every 227 rewritten, then a transfer",
                   lambda: many_rewrites(True, False))

        def stranger():
            p = subprocess.Popen(["ip", "netns", "exec", "fa-c", "python3", os.path.join(HERE, "ftpclient.py"),
                                  "--host", "203.0.113.1", "--path", "/%s/f1M" % DATA_DIR, "--sha256",
                                  self.files["f1M"], "--announce-only"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            try:
                ann = json.loads(p.stdout.readline())
                if ann["host"] != "203.0.113.1":
                    raise AssertionError("227 names %s, not the public address" % ann["host"])
                if len(elements("once4")) != 1:
                    raise AssertionError("expected exactly one armed pinhole, found %s" % elements("once4"))
                r = nsx("fa-x", ["python3", "-c",
                                 "import socket,sys\ntry:\n socket.create_connection(('%s',%d),timeout=3).close()\n"
                                 " print('connected')\nexcept OSError as e:\n print('refused', e)" %
                                 (ann["host"], ann["port"])], check=False)
                if "connected" in r.stdout:
                    raise AssertionError("the stranger reached the announced port")
                if len(elements("once4")) != 1:
                    raise AssertionError("the stranger's attempt consumed the pinhole")
                p.stdin.write("go\n")
                p.stdin.flush()
                res = json.loads(p.stdout.readline())
                if not res.get("sha256_ok"):
                    raise AssertionError("rightful client's transfer failed")
                if elements("once4") or elements("pasv4"):
                    raise AssertionError("pinhole still armed after its one use: once4=%s pasv4=%s" %
                                         (elements("once4"), elements("pasv4")))
                r = nsx("fa-c", ["python3", "-c",
                                 "import socket\ntry:\n socket.create_connection(('%s',%d),timeout=3).close()\n"
                                 " print('connected')\nexcept OSError as e:\n print('refused', e)" %
                                 (ann["host"], ann["port"])], check=False)
                if "connected" in r.stdout:
                    raise AssertionError("the pinhole opened twice")
            finally:
                if p.poll() is None:
                    p.kill()
                p.wait()
        self.check("stranger refused, rightful client served, pinhole single-use", stranger)

        def closed_with_session():
            p = subprocess.Popen(["ip", "netns", "exec", "fa-c", "python3", os.path.join(HERE, "ftpclient.py"),
                                  "--host", "203.0.113.2", "--path", "/%s/f1M" % DATA_DIR, "--sha256",
                                  self.files["f1M"], "--announce-then-quit"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            try:
                ann = json.loads(p.stdout.readline())
                if len(elements("once4")) != 1 or len(elements("pasv4")) != 1:
                    raise AssertionError("expected one armed pinhole after %r: once4=%s pasv4=%s" % (ann["reply"], elements("once4"), elements("pasv4")))
                p.stdin.write("quit\n")
                p.stdin.flush()
                json.loads(p.stdout.readline())
                deadline = time.time() + 3
                while (elements("once4") or elements("pasv4")) and time.time() < deadline:
                    time.sleep(0.05)
                if elements("once4") or elements("pasv4"):
                    raise AssertionError("pinhole outlived its control connection")
            finally:
                if p.poll() is None:
                    p.kill()
                p.wait()
        self.check("an unused pinhole is removed when its control connection ends", closed_with_session)

        def dnat_counter():
            r = nsx("fa-gw", "nft -j list chain ip lab forward")
            for x in json.loads(r.stdout)["nftables"]:
                if "rule" in x and "dnat" in json.dumps(x["rule"]["expr"]):
                    return [e for e in x["rule"]["expr"] if "counter" in e][0]["counter"]["packets"]
            raise AssertionError("no 'ct status dnat' rule in the lab")

        def data_path():
            # One PASV transfer: the control SYN and the data SYN are each a new DNAT flow
            # (a RELATED data connection, as the kernel helper makes, would count once).
            before = dnat_counter()
            self.curl("vsftpd", epsv=False)
            if dnat_counter() - before != 2:
                raise AssertionError("'ct status dnat accept' saw %d new flows, want 2 (control and data)"
                                     % (dnat_counter() - before))
        self.check("data connections pass the stateful firewall as DNAT flows", data_path)

        def no_data_in_userspace():
            # Only control packets cross the queue: a 100 MiB transfer (about 70,000 data
            # packets) costs its control session a few dozen queued packets.
            before = set(re.findall(r"session=(\d+) event=close", lab.log()))
            name = "f1M" if self.quick else "f100M"
            self.curl("vsftpd", epsv=False, name=name, timeout=120)
            time.sleep(0.5)
            closes = [(sid, int(n)) for sid, n in re.findall(r"session=(\d+) event=close rewrites=\d+ packets=(\d+)",
                                                             lab.log()) if sid not in before]
            if not closes:
                raise AssertionError("no session close logged")
            sid, n = closes[-1]
            if n >= 100:
                raise AssertionError("session %s queued %d packets for one transfer" % (sid, n))
            if "pasv4" not in nsx("fa-gw", "nft list table inet ftp_alg").stdout:
                raise AssertionError("table contents unexpected")
        self.check("data bytes never reach user space (<100 queued packets for a %s transfer)" %
                   ("1 MiB" if self.quick else "100 MiB"), no_data_in_userspace)

    def bounce(self):
        """PORT/EPRT naming a third host, the gateway, or port 25 never reach a PORT-obeying server."""
        self.mode = "ftp-alg"
        lab = self.lab

        def listener(ns, addr, port):
            code = ("import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                    "s.bind(('%s',%d))\ns.listen(5)\ns.settimeout(8)\n"
                    "try:\n c,a=s.accept()\n print('CONNECTED', a, c.recv(100))\nexcept OSError:\n print('NONE')\n"
                    % (addr, port))
            return subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", code], stdout=subprocess.PIPE,
                                    text=True)

        def session(commands):
            code = ("import socket,sys\ns=socket.create_connection(('%s',21),timeout=10)\nf=s.makefile('rb')\n"
                    "f.readline()\nfor c in sys.argv[1:]:\n"
                    "    s.sendall(c.encode()+b'\\r\\n')\n"
                    "    r=f.readline().decode().strip()\n"
                    "    if c.startswith('RETR') and r.startswith('150'):\n        r += ' / ' + f.readline().decode().strip()\n"
                    "    print(c, '=>', r)\n" % BOUNCE_SERVER)
            return nsx("fa-lc", ["python3", "-c", code] + commands, check=False, timeout=30)

        def lines():
            try:
                with open(lab.bounce_log) as f:
                    return [json.loads(l) for l in f]
            except OSError:
                return []

        def not_reached(third):
            # Give a bounced connection time to arrive, then read what the third host's listener saw.
            time.sleep(0.5)
            third.terminate()
            out, _ = third.communicate(timeout=15)
            if "CONNECTED" in out:
                raise AssertionError("the third host was reached: %s" % out)

        def hostile():
            third = listener("fa-x", THIRD_HOST, 6000)
            try:
                time.sleep(0.3)
                cmds = ["USER anonymous", "PASS x",
                        "PORT 203,0,113,20,23,112", "RETR f",      # a third host
                        "EPRT |1|203.0.113.20|6000|", "RETR f",    # the same with EPRT
                        "PORT 192,0,2,1,23,112", "RETR f",         # the gateway's own LAN address
                        "PORT 192,0,2,50,0,25", "RETR f",          # the client, but port 25
                        "QUIT"]
                r = session(cmds)
                got = [l for l in lines() if l[:4].upper() in ("PORT", "EPRT", "XXXX")]
                if len(got) != 4:
                    raise AssertionError("server saw %r\n%s" % (got, r.stdout))
                for l in got:
                    if not l.startswith("XXXX") or "203,0,113,1," in l or "|203.0.113.1|" in l:
                        raise AssertionError("server received %r" % l)
                not_reached(third)
            finally:
                if third.poll() is None:
                    third.kill()
        self.check("bounce: PORT/EPRT to a third host, the gateway, port 25 never reach the server", hostile)

        def control():
            # The same server and client with a legitimate PORT: rewritten, and the data arrives.
            own = listener("fa-lc", LAN_CLIENT, 6001)
            try:
                time.sleep(0.3)
                open(lab.bounce_log, "w").close()
                r = session(["USER anonymous", "PASS x", "PORT 192,0,2,50,23,113", "RETR f", "QUIT"])
                got = [l for l in lines() if l[:4].upper() == "PORT"]
                if got != ["PORT 203,0,113,1,23,113\r\n"]:
                    raise AssertionError("server saw %r (%s)" % (got, r.stdout))
                out, _ = own.communicate(timeout=15)
                if "bounced data" not in out:
                    raise AssertionError("the data connection did not arrive: %s / %s %s" % (out, r.stdout, r.stderr[-500:]))
            finally:
                if own.poll() is None:
                    own.kill()
        self.check("bounce control: the client's own PORT is rewritten and its data arrives", control)

        def split_port():
            # A bounce PORT sent one byte per segment stalls on the sender's window while held;
            # it must still reach the server neutralized, and nothing may reach the third host.
            third = listener("fa-x", THIRD_HOST, 6000)
            try:
                time.sleep(0.3)
                open(lab.bounce_log, "w").close()
                code = ("import socket,time\ns=socket.create_connection(('%s',21),timeout=10)\n"
                        "s.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\nf=s.makefile('rb')\nf.readline()\n"
                        "for c in (b'USER anonymous\\r\\n',b'PASS x\\r\\n'):\n s.sendall(c)\n f.readline()\n"
                        "for b in b'PORT 203,0,113,20,23,112\\r\\n':\n s.sendall(bytes([b]))\n time.sleep(0.01)\n"
                        "print(f.readline())\ns.sendall(b'RETR f\\r\\n')\nprint(f.readline())\n" % BOUNCE_SERVER)
                r = nsx("fa-lc", ["python3", "-c", code], check=False, timeout=30)
                got = [l for l in lines() if "203,0,113,20" in l]
                if len(got) != 1 or not got[0].startswith("XX") or "203,0,113,1," in got[0]:
                    raise AssertionError("server saw %r (%s %s)" % (got, r.stdout, r.stderr[-300:]))
                not_reached(third)
            finally:
                if third.poll() is None:
                    third.kill()
        self.check("bounce: a PORT sent one byte per segment still reaches the server neutralized", split_port)

    def hostile(self):
        """Hostile server replies through the real gateway: what the client gets, which pinholes exist."""
        self.mode = "hostile"

        def talk(case, commands):
            code = ("import socket,sys,json,time\ns=socket.create_connection(('203.0.113.5',21),timeout=5)\n"
                    "s.settimeout(0.2)\n"
                    "def rd():\n b=b''\n end=time.time()+4\n while time.time()<end:\n  try:\n   d=s.recv(65536)\n"
                    "  except OSError:\n   if b:\n    return b\n   continue\n"
                    "  if not d:\n   return b\n  b+=d\n return b\n"
                    "out=[]\nrd()\n"
                    "for c in sys.argv[1:]:\n s.sendall(c.encode('latin-1')+b'\\r\\n')\n out.append(rd().decode('latin-1'))\n"
                    "print(json.dumps(out))\n")
            login = ["USER " + case, "PASS x"] if case else []
            r = nsx("fa-c", ["python3", "-c", code] + login + commands, check=False, timeout=30)
            try:
                return json.loads(r.stdout.strip().splitlines()[-1])[len(login):]
            except (ValueError, IndexError):
                raise AssertionError("client failed: %s %s" % (r.stdout, r.stderr))

        def armed():
            r = nsx("fa-gw", "nft -j list set inet ftp_alg once4")
            for item in json.loads(r.stdout)["nftables"]:
                if "set" in item:
                    return item["set"].get("elem", [])
            return []

        sent = {}
        import importlib.util
        spec = importlib.util.spec_from_file_location("evil", os.path.join(HERE, "evil_server.py"))
        evil = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(evil)
        for name, case in evil.CASES.items():
            for verb, (data, _) in case.items():
                sent[(name, verb)] = data.decode("latin-1")

        untouched = {
            "thirdhost": "a 227 naming a third host", "loopback": "a 227 naming loopback",
            "broadcast": "a 227 naming broadcast", "gateway": "a 227 naming the gateway",
            "multicast": "a 227 naming a multicast group", "unspecified": "a 227 naming 0.0.0.0",
            "shorthand": "a 227 with five numbers (inet_aton shorthand)", "nul": "a 227 with a NUL in it",
            "octet256": "octet 256", "fourdigits": "a four-digit octet", "hex": "hexadecimal",
            "sign": "a sign", "fullwidth": "full-width digits", "port0": "port 0",
            "intext": "227 inside a 150 reply's text", "multiline": "a multi-line 227",
            "barecr": "227 after a bare CR", "longline": "a line over 4096 bytes",
        }
        for name, what in untouched.items():
            def t(name=name):
                got = talk(name, ["PASV"])
                if got[0] != sent[(name, "PASV")]:
                    raise AssertionError("client got %r, server sent %r" % (got[0][:120], sent[(name, "PASV")][:120]))
                if armed():
                    raise AssertionError("a pinhole was opened: %s" % armed())
            self.check("%s: passed untouched, nothing opened" % what, t)

        def port65536():
            got = talk("port65536", ["EPSV"])
            if got[0] != sent[("port65536", "EPSV")] or armed():
                raise AssertionError("got %r, armed %s" % (got[0], armed()))
        self.check("229 with port 65536: passed untouched, nothing opened", port65536)

        def unsolicited():
            got = talk("unsolicited", ["NOOP"])
            if got[0] != sent[("unsolicited", "NOOP")] or armed():
                raise AssertionError("got %r, armed %s" % (got[0], armed()))
        self.check("a 227 that answers no PASV: passed untouched, nothing opened", unsolicited)

        def tls():
            got = talk("tls", ["AUTH TLS", "PASV"])
            if got[1] != sent[("tls", "PASV")] or armed():
                raise AssertionError("after 234 the connection was parsed: %r, armed %s" % (got[1], armed()))
            if "event=opaque" not in self.lab.log():
                raise AssertionError("going opaque was not logged")
        self.check("after AUTH TLS (234) nothing is parsed", tls)

        def fromclient():
            talk("fromclient", ["227 Entering Passive Mode (192,0,2,13,195,80)."])
            if armed():
                raise AssertionError("a 227 from the client opened %s" % armed())
        self.check("a 227 sent by the client opens nothing", fromclient)

        def not_ftp():
            # NAT slipstreaming: an HTTP request to the control port, then the server "answers" a PASV.
            got = talk(None, ["GET / HTTP/1.1", "PASV"])
            if got[1] != sent[("default", "PASV")] or armed():
                raise AssertionError("a connection that opened with HTTP was parsed: %r, armed %s" % (got[1], armed()))
            got = talk(None, ["NOOP", "PASV"])
            if got[1] != "227 Entering Passive Mode (203,0,113,5,195,80).\r\n":
                raise AssertionError("control: an FTP opening was not parsed: %r" % got[1])
        self.check("a connection whose first client line is not FTP is never parsed (control: NOOP is)", not_ftp)

        def split():
            before = self.lab.log().count("public=203.0.113.5:")
            got = talk("sevenbytes", ["PASV"])
            if got[0] != "227 Entering Passive Mode (203,0,113,5,195,80).\r\n":
                raise AssertionError("client got %r" % got[0])
            if self.lab.log().count("public=203.0.113.5:") != before + 1:
                raise AssertionError("no pinhole armed for it")
        self.check("a 227 split seven bytes per segment is rewritten whole and arms one pinhole", split)

        def injected():
            # Forged by raw socket from the server's own address and sequence space (tests/integration/inject.py).
            # Conntrack would mark the bad checksum invalid and keep it from the queue; with its check
            # off (as some gateways run) the daemon's own check is what stands.
            log0 = len(self.lab.log())
            nsx("fa-gw", "sysctl -qw net.netfilter.nf_conntrack_checksum=0")
            try:
                got = talk("inject", ["PASV", "PASV"])
            finally:
                nsx("fa-gw", "sysctl -qw net.netfilter.nf_conntrack_checksum=1")
            log = self.lab.log()[log0:]
            want = ["227 Entering Passive Mode (203,0,113,5,195,80).\r\n",
                    "227 Entering Passive Mode (203,0,113,5,195,84).\r\n"]
            if got != want:
                raise AssertionError("client got %r, want %r" % (got, want))
            opened = sorted(set(re.findall(r"public=203\.0\.113\.5:(\d+)", log)))
            if opened != ["50000", "50004"]:
                raise AssertionError("pinholes opened for ports %s, want 50000 and 50004 only" % opened)
            if "event=dropped reason=bad-checksum" not in log:
                raise AssertionError("the bad-checksum segment was not dropped and logged")
        self.check("forged segments: a retransmission with other bytes, a bad checksum and an out-of-window 227 "
                   "open nothing; a 227 in IP fragments is rewritten", injected)

        def full_segment():
            # The 227 ends a segment the server filled to its MSS; growing it must not push it past the MTU.
            got = talk("fullmss", ["HELP\r\nPASV"])[0]
            m = re.match(r"214-mss=(\d+)\r\n", got)
            if not m:
                raise AssertionError("client got %r" % got[:200])
            mss = int(m.group(1))
            if mss != 1460 - 64 - 12:
                raise AssertionError("the server's MSS is %d, not the client's 1460 lowered by 64 (and 12 for "
                                     "timestamps)" % mss)
            want = "227 Entering Passive Mode (203,0,113,5,195,80).\r\n"
            if not got.endswith("214 end\r\n" + want) or len(got) != mss + 1:
                raise AssertionError("client got %d bytes ending %r" % (len(got), got[-80:]))
        self.check("a 227 at the end of a full-MSS segment is rewritten and still fits (MSS lowered by 64)",
                   full_segment)

        def onebyte():
            # Finer than the sender's window lets it go unacknowledged: held 2 s, then released untouched.
            got = talk("onebyte", ["PASV"])
            if got[0] != sent[("onebyte", "PASV")] or armed():
                raise AssertionError("got %r, armed %s" % (got[0], armed()))
        self.check("a 227 split one byte per segment: released untouched after the hold limit, nothing opened",
                   onebyte)

    def shutdown(self):
        self.mode = "ftp-alg"

        def least_privilege():
            with open("/proc/%d/status" % self.lab.alg.pid) as f:
                st = dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)
            uid = st["Uid"].split()[1]
            if uid != str(65534):
                raise AssertionError("runs as uid %s, not nobody" % uid)
            cap_net_admin = 1 << 12
            for key in ("CapEff", "CapPrm"):
                if int(st[key], 16) != cap_net_admin:
                    raise AssertionError("%s is %s, not CAP_NET_ADMIN alone" % (key, st[key]))
            if int(st["CapBnd"], 16) & ~cap_net_admin:
                raise AssertionError("bounding set %s holds more than CAP_NET_ADMIN" % st["CapBnd"])
            sanitized = "sanitizer build: no seccomp filter" in self.lab.log()
            if not sanitized and st["Seccomp"].strip() != "2":
                raise AssertionError("no seccomp filter (Seccomp: %s)" % st["Seccomp"])
        self.check("least privilege: nobody, CAP_NET_ADMIN only, seccomp filter (plain build)", least_privilege)

        def second_daemon():
            r = nsx("fa-gw", [self.binary, "--control-socket", os.path.join(self.lab.work, "second.sock")],
                    check=False, timeout=10)
            if r.returncode != 1 or "another ftp-alg" not in r.stderr:
                raise AssertionError("rc=%d %r" % (r.returncode, r.stderr[-400:]))
            if "ftp_alg" not in nsx("fa-gw", "nft list tables").stdout:
                raise AssertionError("the second daemon removed the first one's table")
            self.curl("vsftpd", epsv=False)
        self.check("a second daemon in the same namespace refuses to start, the first keeps working", second_daemon)

        def t():
            rc = self.lab.stop_alg()
            if rc != 0:
                raise AssertionError("exit status %s after SIGTERM" % rc)
            r = nsx("fa-gw", "nft list tables")
            if "ftp_alg" in r.stdout:
                raise AssertionError("table ftp_alg left behind: %s" % r.stdout)
            for bad in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
                if bad in self.lab.log():
                    raise AssertionError("sanitizer report in the daemon log:\n" + self.lab.log()[-2000:])
        self.check("SIGTERM: exit 0, no ftp-alg object left in the kernel, no sanitizer report", t)

        def kill9():
            self.lab.start_alg(self.binary)
            self.lab.alg.kill()
            self.lab.alg.wait()
            self.lab.alg = None
            time.sleep(0.2)
            r = nsx("fa-gw", "nft list tables")
            if "ftp_alg" in r.stdout:
                raise AssertionError("kill -9 left table ftp_alg (and its pinholes) behind")
        self.check("kill -9: the owned table vanishes with the daemon", kill9)

        def restart_keeps_sessions():
            # Sessions whose rewrites changed the length (both signs) survive kill -9 and a restart,
            # and PASV on them works afterwards: the offsets live in the kernel.
            self.lab.start_alg(self.binary)
            clients = []
            try:
                for server in ("vsftpd", "vsftpd-short"):
                    p = subprocess.Popen(["ip", "netns", "exec", "fa-c", "python3", os.path.join(HERE, "ftpclient.py"),
                                          "--host", SERVERS[server][0], "--path", "/%s/f1M" % DATA_DIR, "--sha256",
                                          self.files["f1M"], "--count", "10", "--pause-after", "5"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                    clients.append(p)
                    if json.loads(p.stdout.readline()).get("paused") != 5:
                        raise AssertionError("first transfers failed on %s" % server)
                self.lab.alg.kill()
                self.lab.alg.wait()
                self.lab.alg = None
                self.lab.start_alg(self.binary)
                for p in clients:
                    p.stdin.write("go\n")
                    p.stdin.flush()
                    res = json.loads(p.stdout.readline())
                    if res["ok"] != 10:
                        raise AssertionError("after the restart: %s\n%s" % (res, self.lab.log()[-2500:]))
                if self.lab.log().count("how=adopted") < 2:
                    raise AssertionError("the restarted daemon did not adopt the sessions")
            finally:
                for p in clients:
                    if p.poll() is None:
                        p.kill()
                    p.wait()
                self.lab.stop_alg()
        self.check("kill -9 and restart: live sessions (both signs of length change) keep working", restart_keeps_sessions)

    def operations(self):
        """status --json against a live session; reload with a bad and a good file under it."""
        self.mode = "operations"
        lab = self.lab
        ctl = os.path.join(lab.work, "ctl.sock")
        conf = os.path.join(lab.work, "ftp-alg.conf")

        def status_and_reload():
            shutil.copy(os.path.join(HERE, "..", "..", "conf", "ftp-alg.conf"), conf)
            with open(conf, "a") as f:
                f.write("PinholeTimeout = 45\n")
            lab.start_alg(self.binary, ["--config", conf, "--control-socket", ctl])
            p = subprocess.Popen(["ip", "netns", "exec", "fa-c", "python3", os.path.join(HERE, "ftpclient.py"),
                                  "--host", "203.0.113.1", "--path", "/%s/f1M" % DATA_DIR, "--sha256",
                                  self.files["f1M"], "--announce-only"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            try:
                ann = json.loads(p.stdout.readline())
                r = sh([self.binary, "status", "--json", "--control-socket", ctl])
                st = json.loads(r.stdout)
                mine = [x for x in st["sessions"] if x["client"].startswith("203.0.113.10:")]
                if len(mine) != 1:
                    raise AssertionError("status does not list the client: %s" % r.stdout)
                sess = mine[0]
                if sess["server"] != "192.0.2.10:21" or sess["public"] != "203.0.113.1:21" or sess["nat"] != "dnat":
                    raise AssertionError("wrong session fields: %s" % sess)
                if sess["seq_offset"]["server"] != 1 or sess["rewrites"] != 1:
                    raise AssertionError("wrong rewrite bookkeeping: %s" % sess)
                holes = sess["pinholes"]
                if len(holes) != 1 or holes[0]["public"] != "203.0.113.1:%d" % ann["port"] or \
                        not 40 <= holes[0]["expires_in"] <= 45:
                    raise AssertionError("wrong pinhole: %s" % holes)
                if st["queue_path"] not in ("native nft queue", "xt NFQUEUE via nft_compat"):
                    raise AssertionError("queue path missing")
                text = sh([self.binary, "status", "--control-socket", ctl]).stdout
                if "203.0.113.10:" not in text or "pinhole 203.0.113.1:%d" % ann["port"] not in text:
                    raise AssertionError("text status lacks the session:\n" + text)
                # A bad file is refused, names its line, and changes nothing.
                with open(conf, "a") as f:
                    f.write("PassivePorts = 9-8\n")
                r = sh([self.binary, "reload", "--control-socket", ctl], check=False)
                if r.returncode != 1 or "%s:" % conf not in r.stdout:
                    raise AssertionError("bad reload: rc=%d %r" % (r.returncode, r.stdout))
                shutil.copy(os.path.join(HERE, "..", "..", "conf", "ftp-alg.conf"), conf)
                r = sh([self.binary, "reload", "--control-socket", ctl], check=False)
                if r.returncode != 0 or "reloaded" not in r.stdout:
                    raise AssertionError("good reload: rc=%d %r" % (r.returncode, r.stdout))
                lab.alg.send_signal(signal.SIGHUP)  # ip netns exec execs the daemon: this is its pid
                deadline = time.time() + 3
                while lab.log().count("event=reload ") < 2 and time.time() < deadline:
                    time.sleep(0.05)
                # The armed pinhole and the session survived both.
                p.stdin.write("go\n")
                p.stdin.flush()
                if not json.loads(p.stdout.readline()).get("sha256_ok"):
                    raise AssertionError("the live session broke across reloads")
                # Use is accounted on the daemon's one-second tick.
                deadline = time.time() + 3
                while True:
                    st = json.loads(sh([self.binary, "status", "--json", "--control-socket", ctl]).stdout)
                    if st["counters"]["pinholes_used"] >= 1 or time.time() > deadline:
                        break
                    time.sleep(0.2)
                if st["counters"]["pinholes_used"] < 1:
                    raise AssertionError("the used pinhole was not counted: %s" % st["counters"])
                if "event=reload-refused" not in lab.log() or lab.log().count("event=reload ") < 2:
                    raise AssertionError("reloads not logged")
            finally:
                if p.poll() is None:
                    p.kill()
                p.wait()
                lab.stop_alg()
        self.check("status --json lists the live session; bad reload refused, good reload and SIGHUP keep it working",
                   status_and_reload)

        def publishing():
            conf2 = os.path.join(lab.work, "publish.conf")
            with open(conf2, "w") as f:
                f.write("[server files]\nPublic = 203.0.113.2:2121\nServer = 192.0.2.11:21\n"
                        "PassivePorts = 40000-40009\nMaxSessions = 2\n\n"
                        "[server more]\nPublic = 203.0.113.3:2122\nServer = 192.0.2.12:21\n\n"
                        "[class hairpin]\nFrom = 192.0.2.50/32\nRewrite = no\n")
            r = sh([self.binary, "--check-config", conf2], check=False)
            if r.returncode != 0:
                raise AssertionError("config rejected: %s" % r.stderr)
            lab.start_alg(self.binary, ["--config", conf2, "--control-socket", ctl])
            holders = []
            try:
                # Port 2121 and 2122 are forwarded by ftp-alg alone: the lab's ruleset knows only 21.
                res = json.loads(nsx("fa-c", ["python3", os.path.join(HERE, "ftpclient.py"), "--host", "203.0.113.2",
                                              "--port", "2121", "--path", "/%s/f1M" % DATA_DIR, "--sha256",
                                              self.files["f1M"], "--count", "10"], check=False).stdout.splitlines()[-1])
                if res["ok"] != 10:
                    raise AssertionError("2121: %s" % res)
                for reply in res["replies"]:
                    m = re.search(r"\(203,0,113,2,(\d+),(\d+)\)", reply)
                    if not m or not 40000 <= int(m.group(1)) * 256 + int(m.group(2)) <= 40009:
                        raise AssertionError("not remapped into 40000-40009: %r" % reply)
                out = os.path.join(lab.work, "pub.out")
                r = nsx("fa-c", ["curl", "-sS", "--max-time", "20", "-o", out, "ftp://203.0.113.3:2122/%s/f1M" % DATA_DIR],
                        check=False)
                if r.returncode != 0 or sha256(out) != self.files["f1M"]:
                    raise AssertionError("2122: %s" % r.stderr)
                # MaxSessions = 2: two held sessions, the third SYN goes nowhere.
                for _ in range(2):
                    p = subprocess.Popen(["ip", "netns", "exec", "fa-c", "python3", os.path.join(HERE, "ftpclient.py"),
                                          "--host", "203.0.113.2", "--port", "2121", "--path", "/%s/f1M" % DATA_DIR,
                                          "--sha256", self.files["f1M"], "--announce-only"],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                    holders.append(p)
                    json.loads(p.stdout.readline())
                r = nsx("fa-c", ["python3", "-c", "import socket\ntry:\n socket.create_connection(('203.0.113.2',2121),"
                                 "timeout=2)\n print('connected')\nexcept OSError as e:\n print('refused', e)"],
                        check=False)
                if "connected" in r.stdout:
                    raise AssertionError("a third session got through MaxSessions = 2")
                # The hairpin class is told the server's own address, and nothing opens for it.
                p = subprocess.Popen(["ip", "netns", "exec", "fa-lc", "python3", os.path.join(HERE, "ftpclient.py"),
                                      "--host", "203.0.113.1", "--path", "/%s/f1M" % DATA_DIR, "--sha256",
                                      self.files["f1M"], "--announce-then-quit"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                holders.append(p)
                ann = json.loads(p.stdout.readline())
                if ann["host"] != "192.0.2.10":
                    raise AssertionError("class Rewrite = no: got %r" % ann["reply"])
                st = json.loads(sh([self.binary, "status", "--json", "--control-socket", ctl]).stdout)
                if "server-max-sessions" not in st["counters"]["refused_by_reason"]:
                    raise AssertionError("the refused SYN was not counted: %s" % st["counters"])
                pub = nsx("fa-gw", "nft list map inet ftp_alg publish4").stdout
                if "203.0.113.2 . 2121 : 192.0.2.11 . 21" not in pub or "203.0.113.3 . 2122 : 192.0.2.12 . 21" not in pub:
                    raise AssertionError("publish4 map: %s" % pub)
                # A reload without [server more] removes its forward at once.
                with open(conf2, "w") as f:
                    f.write("[server files]\nPublic = 203.0.113.2:2121\nServer = 192.0.2.11:21\n")
                sh([self.binary, "reload", "--control-socket", ctl])
                pub = nsx("fa-gw", "nft list map inet ftp_alg publish4").stdout
                if "2122" in pub or "2121" not in pub:
                    raise AssertionError("after reload, publish4 map: %s" % pub)
            finally:
                for p in holders:
                    if p.poll() is None:
                        p.kill()
                    p.wait()
                lab.stop_alg()
        self.check("published servers on 2121/2122 with PassivePorts, MaxSessions, a no-rewrite class, reload",
                   publishing)

        def with_kernel_helper():
            # The admin also attached the kernel's ftp helper: ftp-alg warns and the two never both rewrite.
            lab.helper(True)
            lab.start_alg(self.binary, ["--control-socket", ctl])
            try:
                if "has a ct helper object 'ftp-standard' of type ftp" not in lab.log():
                    raise AssertionError("no start-up warning about the kernel helper:\n" + lab.log()[-600:])
                self.curl("vsftpd", epsv=False)
                self.curl("vsftpd-short", epsv=False)
                self.ftplib("vsftpd", 10, "both")
            finally:
                lab.stop_alg()
                lab.helper(False)
        self.check("kernel ftp helper also configured: warned at start, transfers still correct", with_kernel_helper)

        def two_workers():
            # Ten clients: the queue rules hash each client's address to one of the two workers.
            extra = ["203.0.113.%d" % i for i in range(11, 20)]
            for a in extra:
                nsx("fa-c", "ip addr add %s/24 dev eth0" % a)
            lab.start_alg(self.binary, ["--workers", "2", "--control-socket", ctl])
            try:
                first = lab.log().count("event=open")
                for a in ["203.0.113.10"] + extra:
                    try:
                        self.curl("vsftpd", epsv=False, source=a)
                    except AssertionError as e:
                        raise AssertionError("transfer from %s: %s" % (a, e))
                self.curl6("fa-c", V6_CLIENT, V6_NAT_PUBLIC, active=False)
                st = json.loads(sh([self.binary, "status", "--json", "--control-socket", ctl]).stdout)
                per = [w["sessions_opened"] for w in st["per_worker"]]
                if st["workers"] != 2 or st["queues"] != [21, 22, 23, 24] or len(per) != 2:
                    raise AssertionError("status: %s" % st)
                if sum(per) != 11 or 0 in per:
                    raise AssertionError("sessions per worker %s, want 11 spread over both" % per)
                # Each session began at its SYN on its worker: no reply went to the other one.
                opens = re.findall(r"event=open how=(\S+)", lab.log())[first:]
                if len(opens) != 11 or set(opens) != {"syn"}:
                    raise AssertionError("sessions opened as %s" % opens)
                if st["counters"]["pinholes_opened"] != 11:
                    raise AssertionError("%d pinholes for 11 transfers" % st["counters"]["pinholes_opened"])
                # The operation clocks count what the workers did: a packet each, a verdict each, a batch per pinhole.
                t = st["timing"]
                if (t["packet"]["count"] != st["counters"]["packets"] or t["verdict"]["count"] < t["packet"]["count"]
                        or t["nft"]["count"] < 11 or t["packet"]["total_us"] <= 0):
                    raise AssertionError("timing: %s, counters: %s" % (t, st["counters"]))
                r = nsx("fa-gw", "nft list table inet ftp_alg", check=False)
                if r.returncode != 0 or r.stdout.count("jhash ct original ip saddr mod 2") != 4:
                    raise AssertionError("nft cannot list the balancing rules: %s" % r.stderr)
            finally:
                lab.stop_alg()
                for a in extra:
                    nsx("fa-c", "ip addr del %s/24 dev eth0" % a, check=False)
        self.check("two workers: each client's connections meet one worker, both serve, every transfer correct",
                   two_workers)

        def unreachable():
            r = sh([self.binary, "status", "--control-socket", os.path.join(lab.work, "none.sock")], check=False)
            if r.returncode != 1 or "cannot reach the daemon" not in r.stderr:
                raise AssertionError("rc=%d %r" % (r.returncode, r.stderr))
        self.check("status without a daemon: a clear error, exit 1", unreachable)

    def bad_config(self):
        self.mode = "config"

        def t():
            path = os.path.join(self.lab.work, "bad.conf")
            with open(path, "w") as f:
                f.write("# comment\nControlPorts = 21\nPassivePorts = 70000-70010\n")
            r = sh([self.binary, "--check-config", path], check=False)
            if r.returncode != 2 or ("%s:3:" % path) not in r.stderr:
                raise AssertionError("rc=%d stderr=%r" % (r.returncode, r.stderr))
            r = nsx("fa-gw", [self.binary, "--config", path], check=False, timeout=10)
            if r.returncode != 2:
                raise AssertionError("daemon started with a bad config (rc=%d)" % r.returncode)
            if "ftp_alg" in nsx("fa-gw", "nft list tables").stdout:
                raise AssertionError("bad config installed kernel objects")
        self.check("bad config: file:line, exit 2, nothing installed", t)

        def broken_files():
            cases = {
                "ControlPorts = 21,0\n": [1],
                "# ok\nMasqueradeAddress = ftp.example.com\nPinholeTimeout = 0\n": [2, 3],
                "[server a]\nPublic = 203.0.113.1:2121\n": [1],
                "[server a]\nPublic = 203.0.113.1:21\nServer = 192.0.2.10:21\n"
                "[server b]\nPublic = 203.0.113.1:21\nServer = 192.0.2.11:21\n": [4],
                "[class x]\nFrom = 192.0.2.0/33\n": [1, 2],
                "LogLevel = loud\nno equals sign here\n": [1, 2],
            }
            shipped = os.path.join(HERE, "..", "..", "conf", "ftp-alg.conf")
            r = sh([self.binary, "--check-config", shipped], check=False)
            if r.returncode != 0:
                raise AssertionError("the shipped config fails: %s" % r.stderr)
            for i, (text, lines) in enumerate(cases.items()):
                path = os.path.join(self.lab.work, "broken%d.conf" % i)
                with open(path, "w") as f:
                    f.write(text)
                r = sh([self.binary, "--check-config", path], check=False)
                got = sorted(int(x) for x in re.findall(r"^%s:(\d+): " % re.escape(path), r.stderr, re.M))
                if r.returncode != 2 or got != lines:
                    raise AssertionError("%r: rc=%d lines=%s want %s\n%s" % (text, r.returncode, got, lines, r.stderr))
        self.check("check-config on broken files: exit 2, every bad line named", broken_files)


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--pkgroot", required=True, help="folder with proftpd and pure-ftpd unpacked")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--valgrind", action="store_true",
                    help="run the daemon under valgrind (memcheck) and fail on any error or leak")
    ap.add_argument("--only", action="append", default=[],
                    help="run only this phase against ftp-alg (repeatable), for working on one area")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("integration tests need root", file=sys.stderr)
        return 2
    files = prepare_files()
    work = tempfile.mkdtemp(prefix="ftp-alg-it.")
    os.chmod(work, 0o755)  # the servers drop privileges and still read their files here
    lab = Lab(work, a.pkgroot)
    if a.valgrind:
        lab.wrapper = ["valgrind", "--error-exitcode=97", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                       "--errors-for-leak-kinds=definite,indirect", "--track-fds=no", "--track-origins=yes",
                       "--log-file=" + os.path.join(work, "valgrind.%p.log")]
    suite = Suite(lab, files, os.path.abspath(a.binary), a.quick)
    try:
        lab.up()
        lab.start_servers()
        phases = ["alg_specific", "bounce", "hostile", "shutdown", "operations", "bad_config"]
        if a.only:
            for name in a.only:
                # The later phases start and stop their own daemons.
                if name in ("operations", "bad_config"):
                    lab.stop_alg()
                elif not lab.alg:
                    lab.start_alg(suite.binary)
                getattr(suite, name)()
            if a.valgrind:
                suite.check("valgrind: no memory errors and no leaks in the daemon", lambda: valgrind_clean(lab, work))
        else:
            suite.negative_control()
            lab.helper(True)
            suite.transfers("kernel helper")
            lab.helper(False)
            nsx("fa-gw", "conntrack -F", check=False)
            lab.start_alg(suite.binary)
            suite.transfers("ftp-alg")
            for name in phases:
                getattr(suite, name)()
    except Exception:
        suite.failed += 1
        print("FAIL lab: " + traceback.format_exc(), flush=True)
    finally:
        log = lab.log()
        lab.down()
        if suite.failed:
            print("--- ftp-alg log (tail) ---\n" + log[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (suite.passed, suite.failed))
    return 0 if suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
