"""status --prometheus parses as text exposition format 0.0.4; a ControlGroup member reads it without root,
and may not reload."""
import grp
import os
import re

from lab import expect, sh

GATEWAYS = ("own",)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)$')


def parse(text):
    types, samples = {}, []
    for line in text.splitlines():
        m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", line)
        if m:
            if m.group(1) == "TYPE":
                expect(m.group(3) in ("counter", "gauge"), "bad type: %r", line)
                types[m.group(2)] = m.group(3)
            continue
        m = SAMPLE.match(line)
        expect(m, "not a sample line: %r", line)
        name = m.group(1)
        expect(name in types, "%s has no # TYPE before it", name)
        expect(name.endswith("_total") == (types[name] == "counter"), "%s: counters and only counters end _total",
               name)
        samples.append((name, m.group(2) or "", float(m.group(3))))
    return samples


def prometheus(t):
    conf = os.path.join(t.lab.work, "prom.conf")
    with open(conf, "w") as f:
        f.write("ControlGroup = nogroup\n")
    t.lab.start_alg(t.binary, ["--config", conf, "--control-socket", t.ctl])
    try:
        st = os.stat(t.ctl)
        expect(st.st_mode & 0o777 == 0o660 and st.st_gid == grp.getgrnam("nogroup").gr_gid,
               "control socket mode %o gid %d", st.st_mode & 0o777, st.st_gid)
        with t.held("fa-c", "203.0.113.1", "--announce-only") as c:
            c.read()
            # A monitoring user: neither root nor the daemon's user, in the socket's group.
            as_monitor = ["setpriv", "--reuid=4242", "--regid=%d" % grp.getgrnam("nogroup").gr_gid,
                          "--clear-groups", t.binary]
            r = sh(as_monitor + ["status", "--prometheus", "--control-socket", t.ctl], check=False)
            expect(r.returncode == 0, "status --prometheus as a group member: rc=%d %s", r.returncode, r.stderr)
            samples = parse(r.stdout)
            values = {n + l: v for n, l, v in samples}
            expect(values.get("ftp_alg_sessions") == 1 and values.get("ftp_alg_pinholes_armed") == 1,
                   "gauges: %s", values)
            expect(values.get("ftp_alg_rewrites_total", 0) >= 1, "no rewrite counted: %s", values)
            expect(values.get('ftp_alg_operations_total{op="packet"}', 0) >= 1, "no packet clock: %s", values)
            r = sh(as_monitor + ["reload", "--control-socket", t.ctl], check=False)
            expect(r.returncode == 1 and "only root" in r.stdout, "a group member reloaded: %r", r.stdout)
    finally:
        t.lab.stop_alg()


def checks(t):
    yield "status --prometheus parses; a ControlGroup member reads it, and cannot reload", prometheus
