"""Reload after the privilege drop: a root-only (0600) file replaced the way editors do (write, rename)."""
import os
import signal
import time

from lab import expect, nsx, sh

GATEWAYS = ("own",)


def write_root_only(path, text):
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def ctl_ports():
    return nsx("fa-gw", "nft list set inet ftp_alg ctl_ports").stdout


def root_only_file(t):
    conf = os.path.join(t.lab.work, "root-only.conf")
    write_root_only(conf, "ControlPorts = 21\n")
    t.lab.start_alg(t.binary, ["--config", conf, "--control-socket", t.ctl])
    try:
        expect(t.status()["queue_path"], "no status")
        expect("2121" not in ctl_ports(), "2121 before the reload")
        write_root_only(conf, "ControlPorts = 21, 2121\n")
        st = os.stat(conf)
        expect(st.st_uid == 0 and st.st_mode & 0o777 == 0o600, "the file is not root-only")
        r = sh([t.binary, "reload", "--control-socket", t.ctl], check=False)
        expect(r.returncode == 0 and "reloaded" in r.stdout, "reload: rc=%d %r %r", r.returncode, r.stdout, r.stderr)
        expect("2121" in ctl_ports(), "the new control port is not in ctl_ports:\n%s", ctl_ports())
        # SIGHUP has no client to open the file: refused, with the reason and the way out.
        t.lab.alg.send_signal(signal.SIGHUP)
        deadline = time.time() + 3
        while "Permission denied" not in t.log() and time.time() < deadline:
            time.sleep(0.1)
        expect('event=reload-refused file=%s error="Permission denied"' % conf in t.log(),
               "SIGHUP on a root-only file not refused clearly:\n%s", t.log()[-800:])
        expect("2121" in ctl_ports(), "a refused reload changed the control ports")
        # The daemon keeps running and serving.
        t.curl("vsftpd", epsv=False)
    finally:
        t.lab.stop_alg()


def checks(t):
    yield "reload of a 0600 root-owned file replaced by rename applies the new ControlPorts", root_only_file
