#!/usr/bin/env python3
"""A two-gateway high-availability lab for ftp-alg in network namespaces.

Topology (documentation addresses only; every namespace starts with "fh-"):

  fh-c 203.0.113.10 --[br-wan]--+-- wan 203.0.113.2  fh-a  lan 192.0.2.2 --+--[br-lan]-- fh-s 192.0.2.10 vsftpd
  (client; vsftpd   |                                                      +--[br-lan]-- fh-l 192.0.2.20 (LAN client)
   for fh-l)
                                |        sync 198.51.100.1                 |
                                |             |  (veth)                    |
                                |        sync 198.51.100.2                 |
                                +-- wan 203.0.113.3  fh-b  lan 192.0.2.3 --+
        VIPs (keepalived, one sync group): 203.0.113.1 on wan, 192.0.2.1 on lan

Both bridges live in the switch namespace fh-sw. Each gateway DNATs port 21
of the public VIP to the server, SNATs LAN->WAN to the outside VIP (so that
the LAN client's connections survive a failover) and runs a strict
stateful forward policy. conntrackd (FTFW) replicates conntracks over the
sync link; keepalived runs conf/ha/ha-notify on every transition. The
configuration files are the shipped ones in conf/ha/, with paths and the
per-gateway values substituted.

Run directly (python3 tests/ha/halab.py) it builds the lab, prints who holds
the VIPs, makes one transfer and removes everything.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONF = os.path.join(ROOT, "conf", "ha")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from lab import nsx, sh, sha256  # noqa: E402  the integration lab's shell helpers

NS = ["fh-sw", "fh-c", "fh-a", "fh-b", "fh-s", "fh-l"]
CLIENT = "203.0.113.10"
LAN_CLIENT = "192.0.2.20"
SERVER = "192.0.2.10"
VIP_WAN = "203.0.113.1"
VIP_LAN = "192.0.2.1"
GW = {
    # name: (namespace, wan address, lan address, sync address, peer's sync address, VRRP priority)
    "a": ("fh-a", "203.0.113.2", "192.0.2.2", "198.51.100.1", "198.51.100.2", 150),
    "b": ("fh-b", "203.0.113.3", "192.0.2.3", "198.51.100.2", "198.51.100.1", 100),
}
FTP_ROOT = "/srv/ftp"
DATA_DIR = "ftp-alg-test"

GW_RULES = """
table ip lab {
  chain port_forward { type nat hook prerouting priority dstnat; policy accept;
    iifname "wan" ip daddr 203.0.113.1 tcp dport 21 dnat to 192.0.2.10
  }
  chain masq { type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" ip saddr 192.0.2.0/24 snat to 203.0.113.1
  }
  chain forward { type filter hook forward priority filter; policy drop;
    ct state invalid counter drop
    ct state established,related counter accept
    ct status dnat counter accept
    iifname "lan" oifname "wan" accept
  }
  chain input { type filter hook input priority filter; policy accept;
    ct state invalid counter drop
  }
}
"""


def prepare_files():
    """The same 1 MiB random file the integration tests use; returns {name: sha256}."""
    d = os.path.join(FTP_ROOT, DATA_DIR)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    p = os.path.join(d, "f1M")
    if not os.path.exists(p) or os.path.getsize(p) != 1 << 20:
        with open(p, "wb") as f:
            f.write(os.urandom(1 << 20))
    os.chmod(p, 0o644)
    return {"f1M": sha256(p)}


class Interrupted(BaseException):
    """Like KeyboardInterrupt, not an Exception, so that no check takes it for its own failure."""


def on_signals():
    """SIGTERM and SIGHUP unwind like Ctrl-C, so that every finally: removes the lab."""
    def handler(signum, frame):
        raise Interrupted("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


class HaLab:
    def __init__(self, work=None, disable_external_cache=True, loose=True, purge_on_backup=False):
        self.own_work = work is None
        self.work = work or tempfile.mkdtemp(prefix="ftp-alg-ha.")
        os.chmod(self.work, 0o755)  # vsftpd and ftp-alg drop privileges
        self.disable_external_cache = disable_external_cache
        self.loose = loose
        self.purge_on_backup = purge_on_backup
        self.alg_binary = None
        self.procs = {}  # (gateway or "s", kind) -> Popen
        self.t0 = time.time()

    # --- building -------------------------------------------------------
    def down(self):
        for key in list(self.procs):
            p = self.procs.pop(key)
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for n in NS:
            # Daemons fork (keepalived's VRRP child, conntrackd -d, vsftpd); whatever runs in the namespace goes.
            for pid in sh(["ip", "netns", "pids", n], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            sh(["ip", "netns", "del", n], check=False)
        # vsftpd's session processes run as ftp and are not dumpable, so "ip netns pids" may not see them;
        # they carry this lab's configuration path in their command line.
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        if self.work.encode() + b"/" in f.read():
                            os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass

    def cleanup(self):
        self.down()
        if self.own_work:
            shutil.rmtree(self.work, ignore_errors=True)

    def up(self):
        self.down()
        for n in NS:
            sh(["ip", "netns", "add", n])
            nsx(n, "ip link set lo up")
        sw = "fh-sw"
        for br in ("br-wan", "br-lan"):
            nsx(sw, "ip link add %s type bridge" % br)
            nsx(sw, "ip link set %s up" % br)

        def port(ns, ifname, peer, br, addrs):
            sh(["ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", peer, "netns", sw])
            nsx(sw, "ip link set %s master %s up" % (peer, br))
            for a in addrs:
                nsx(ns, "ip addr add %s/24 dev %s" % (a, ifname))
            nsx(ns, "ip link set %s up" % ifname)
        port("fh-c", "eth0", "c", "br-wan", [CLIENT])
        port("fh-s", "eth0", "s", "br-lan", [SERVER])
        nsx("fh-s", "ip route add default via %s" % VIP_LAN)
        port("fh-l", "eth0", "lc", "br-lan", [LAN_CLIENT])
        nsx("fh-l", "ip route add default via %s" % VIP_LAN)
        for g, (ns, wan, lan, sync, peer, prio) in GW.items():
            port(ns, "wan", g + "wan", "br-wan", [wan])
            port(ns, "lan", g + "lan", "br-lan", [lan])
            nsx(ns, "sysctl -qw net.ipv4.ip_forward=1")
            nsx(ns, "sysctl -qw net.netfilter.nf_conntrack_tcp_loose=%d" % (1 if self.loose else 0))
            nsx(ns, ["nft", "-f", "-"], input=GW_RULES)
        sh(["ip", "link", "add", "sync", "netns", "fh-a", "type", "veth", "peer", "name", "sync", "netns", "fh-b"])
        for g, (ns, wan, lan, sync, peer, prio) in GW.items():
            nsx(ns, "ip addr add %s/24 dev sync" % sync)
            nsx(ns, "ip link set sync up")
        os.makedirs(os.path.join(self.work, "run"), exist_ok=True)
        for g in GW:
            self.write_configs(g)

    def path(self, name):
        return os.path.join(self.work, name)

    def write_configs(self, g):
        ns, wan, lan, sync, peer, prio = GW[g]
        with open(os.path.join(CONF, "conntrackd.conf")) as f:
            text = f.read()
        # The shipped file is gateway A's; B swaps the sync addresses and ignores its own addresses.
        subst = {
            "IPv4_address 198.51.100.1\n": "IPv4_address %s\n" % sync,
            "IPv4_Destination_Address 198.51.100.2": "IPv4_Destination_Address %s" % peer,
            "IPv4_address 203.0.113.2 ": "IPv4_address %s " % wan,
            "IPv4_address 192.0.2.2 ": "IPv4_address %s " % lan,
            "IPv4_address 198.51.100.1 #": "IPv4_address %s #" % sync,
            "/var/log/conntrackd.log": self.path("conntrackd-%s.log" % g),
            "/var/lock/conntrackd.lock": self.path("conntrackd-%s.lock" % g),
            "/var/run/conntrackd.ctl": self.path("conntrackd-%s.ctl" % g),
            "DisableExternalCache On": "DisableExternalCache %s" % ("On" if self.disable_external_cache else "Off"),
        }
        for old, new in subst.items():
            if old not in text:
                raise RuntimeError("conf/ha/conntrackd.conf no longer contains %r" % old)
            text = text.replace(old, new)
        with open(self.path("conntrackd-%s.conf" % g), "w") as f:
            f.write(text)
        # keepalived refuses scripts in directories others may write to; the copy is root's alone.
        notify = self.path("ha-notify")
        with open(os.path.join(CONF, "ha-notify")) as f:
            script = f.read()
        if self.purge_on_backup:
            # An experiment: the backup transition of primary-backup.sh, with "conntrackd -t".
            script = script.replace("    run -n # ask", "    run -t\n    run -n # ask")
            if "run -t\n    run -n" not in script:
                raise RuntimeError("conf/ha/ha-notify no longer has 'run -n # ask'")
        if self.alg_binary:
            if 'FTPALG=/usr/sbin/ftp-alg\n' not in script:
                raise RuntimeError("conf/ha/ha-notify no longer sets FTPALG=/usr/sbin/ftp-alg")
            script = script.replace('FTPALG=/usr/sbin/ftp-alg\n', 'FTPALG=%s\n' % self.alg_binary)
        with open(notify, "w") as f:
            f.write(script)
        os.chmod(notify, 0o755)
        with open(os.path.join(CONF, "keepalived.conf")) as f:
            text = f.read()
        text = text.replace("priority 150", "priority %d" % prio).replace("ftp-alg-gw-a", "ftp-alg-gw-" + g)
        text = re.sub(r'"/etc/ftp-alg/ha-notify (\w+)"',
                      lambda m: '"%s %s %s %s %s"' % (notify, m.group(1), self.path("conntrackd-%s.conf" % g),
                                                      self.path("notify-%s.log" % g),
                                                      self.path("run/ftp-alg-%s.sock" % g)), text)
        with open(self.path("keepalived-%s.conf" % g), "w") as f:
            f.write(text)

    # --- daemons --------------------------------------------------------
    def spawn(self, key, ns, cmd, log):
        self.procs[key] = subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdout=open(log, "a"),
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self.procs[key]

    def start_server(self):
        conf = self.path("run/vsftpd.conf")
        os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
        with open(conf, "w") as f:
            f.write("listen=YES\nlisten_ipv6=NO\nlisten_address=%s\nbackground=NO\n"
                    "anonymous_enable=YES\nlocal_enable=NO\nwrite_enable=NO\nanon_root=%s\n"
                    "no_anon_password=YES\npasv_enable=YES\nport_enable=YES\nseccomp_sandbox=NO\n"
                    "secure_chroot_dir=/var/run/vsftpd/empty\nxferlog_enable=NO\n"
                    "ftp_username=ftp\nmax_per_ip=200\nmax_clients=200\n" % (SERVER, FTP_ROOT))
        self.spawn(("s", "vsftpd"), "fh-s", ["vsftpd", conf], self.path("vsftpd.log"))
        self.wait_for(lambda: nsx("fh-s", "ss -Hltn src %s:21" % SERVER, check=False).stdout.strip(),
                      10, "vsftpd did not start")
        # An outside server for the LAN client's active (PORT) sessions.
        with open(conf) as f:
            text = f.read().replace("listen_address=%s" % SERVER, "listen_address=%s" % CLIENT)
        conf_out = self.path("run/vsftpd-out.conf")
        with open(conf_out, "w") as f:
            f.write(text)
        self.spawn(("c", "vsftpd"), "fh-c", ["vsftpd", conf_out], self.path("vsftpd-out.log"))
        self.wait_for(lambda: nsx("fh-c", "ss -Hltn src %s:21" % CLIENT, check=False).stdout.strip(),
                      10, "the outside vsftpd did not start")

    def ctd(self, g, *args, check=False):
        return nsx(GW[g][0], ["conntrackd", "-C", self.path("conntrackd-%s.conf" % g)] + list(args), check=check,
                   timeout=20)

    def start_conntrackd(self, g):
        # In the foreground (no -d), so that the lab owns the process.
        self.spawn((g, "conntrackd"), GW[g][0], ["conntrackd", "-C", self.path("conntrackd-%s.conf" % g)],
                   self.path("conntrackd-%s.out" % g))
        self.wait_for(lambda: self.ctd(g, "-s").returncode == 0, 10, "conntrackd on %s did not start" % g)

    def start_keepalived(self, g):
        self.reap_keepalived(g)
        self.spawn((g, "keepalived"), GW[g][0],
                   ["keepalived", "-n", "-l", "-D", "-P", "-f", self.path("keepalived-%s.conf" % g),
                    "-p", self.path("keepalived-%s.pid" % g), "-r", self.path("keepalived-vrrp-%s.pid" % g)],
                   self.path("keepalived-%s.log" % g))

    def stop_keepalived(self, g, sig=signal.SIGTERM, wait=True):
        """SIGTERM: clean stop (priority 0 advertisement). SIGKILL: kills parent and VRRP child, a crash.

        With wait=False it returns at once (keepalived takes about a second to exit); start_keepalived
        and down() reap it."""
        p = self.procs.pop((g, "keepalived"), None)
        if not p:
            return
        pids = self.keepalived_pids(g)
        if sig == signal.SIGKILL:
            # Every keepalived process of the gateway (parent and VRRP child) at once, as in a crash.
            pids = [int(x) for x in sh(["ip", "netns", "pids", GW[g][0]]).stdout.split()
                    if self.read("/proc/%s/comm" % x).strip() == "keepalived"]
            # Stopped first, so that no process can react to another's death (the VRRP child would stop
            # cleanly, sending priority 0, when its parent dies).
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGSTOP)
                except OSError:
                    pass
        for pid in pids if sig == signal.SIGKILL else pids[:1]:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        self.procs[(g, "keepalived-stopping")] = p
        if wait:
            self.reap_keepalived(g)

    def reap_keepalived(self, g):
        p = self.procs.pop((g, "keepalived-stopping"), None)
        if not p:
            return
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        # A killed parent leaves its VRRP child running until it notices.
        for pid in self.keepalived_pids(g):
            try:
                os.kill(pid, 0)
            except OSError:
                continue
            self.wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10, "keepalived child %d stays" % pid)

    def keepalived_pids(self, g):
        pids = []
        for name in ("keepalived-%s.pid" % g, "keepalived-vrrp-%s.pid" % g):
            try:
                with open(self.path(name)) as f:
                    pids.append(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        return pids

    def start_alg(self, g, binary, args=()):
        log = self.path("ftp-alg-%s.log" % g)
        starts = self.read(log).count("event=privileges ")
        conf = self.path("ftp-alg-%s.conf" % g)
        with open(conf, "w") as f:
            f.write("HighAvailability = yes\n")  # as conf/ha/ftp-alg.conf ships it
            # 227s change length, so sessions carry sequence offsets across the failover (the case to test).
            f.write("KeepReplyLength = no\n")
        p = self.spawn((g, "ftp-alg"), GW[g][0], [binary, "-v", "--config", conf, "--control-socket",
                                                  self.path("run/ftp-alg-%s.sock" % g)] + list(args), log)
        self.wait_for(lambda: self.read(log).count("event=privileges ") > starts or p.poll() is not None, 10,
                      "ftp-alg on %s did not start" % g)
        if p.poll() is not None:
            raise RuntimeError("ftp-alg on %s exited:\n%s" % (g, self.read(log)[-2000:]))

    def stop_alg(self, g):
        p = self.procs.pop((g, "ftp-alg"), None)
        if p and p.poll() is None:
            p.terminate()
            p.wait(timeout=10)

    def alg_log(self, g):
        return self.read(self.path("ftp-alg-%s.log" % g))

    def start_all(self, alg_binary=None, alg_on=("a", "b")):
        """vsftpd, conntrackd and (if given) ftp-alg on both gateways, then keepalived: A first, so it is primary."""
        self.start_server()
        for g in GW:
            self.start_conntrackd(g)
        if alg_binary:
            # keepalived's notify script tells this ftp-alg to take over.
            self.alg_binary = alg_binary
            for g in GW:
                self.write_configs(g)
            for g in alg_on:
                self.start_alg(g, alg_binary)
        self.start_keepalived("a")
        self.wait_vip("a", 10)
        self.start_keepalived("b")
        self.wait_for(lambda: "Entering BACKUP STATE" in self.read(self.path("keepalived-b.log")), 10,
                      "keepalived on b did not become backup")

    # --- observing ------------------------------------------------------
    @staticmethod
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""

    @staticmethod
    def wait_for(cond, timeout, what, step=0.05):
        deadline = time.time() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.time() > deadline:
                raise RuntimeError(what)
            time.sleep(step)

    def has_vips(self, g):
        out = nsx(GW[g][0], "ip -4 -o addr show", check=False).stdout
        return (" %s/" % VIP_WAN) in out and (" %s/" % VIP_LAN) in out

    def holder(self):
        return [g for g in GW if self.has_vips(g)]

    def wait_vip(self, g, timeout, since=None, step=0.01):
        """Seconds from since (default: now) until g holds both VIPs."""
        t0 = since or time.time()
        self.wait_for(lambda: self.has_vips(g), timeout, "%s did not get the VIPs" % g, step)
        return time.time() - t0

    def notify_log(self, g):
        return self.read(self.path("notify-%s.log" % g))

    def conntracks(self, g):
        """The gateway's kernel conntrack table, with NAT and sequence adjustments, from ctdump.py."""
        import json
        r = nsx(GW[g][0], ["python3", os.path.join(HERE, "ctdump.py")])
        return json.loads(r.stdout)

    def client(self, args, **kw):
        """tests/integration/ftpclient.py in the client namespace against the public VIP."""
        return ["ip", "netns", "exec", "fh-c", "python3", os.path.join(ROOT, "tests", "integration", "ftpclient.py"),
                "--host", VIP_WAN] + list(args)


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", help="ftp-alg to run on both gateways")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("the HA lab needs root", file=sys.stderr)
        return 2
    on_signals()
    files = prepare_files()
    lab = HaLab()
    try:
        lab.up()
        lab.start_all(os.path.abspath(a.binary) if a.binary else None)
        print("VIPs on: %s" % lab.holder())
        r = sh(lab.client(["--path", "/%s/f1M" % DATA_DIR, "--sha256", files["f1M"], "--mode", "both",
                           "--count", "2"]), check=False)
        print("PASV and EPSV transfers through the primary: %s" % r.stdout.strip())
        for g in GW:
            print("%s conntracks: %s" % (g, lab.conntracks(g)))
    finally:
        lab.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
