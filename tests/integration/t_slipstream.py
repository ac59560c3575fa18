"""NAT slipstreaming and whitespace bounces on an extra control port: nothing opens, no PORT reaches the server.

A scripted server outside (fa-o, 203.0.113.32:2121) obeys anything: it records
every line it receives and answers a PORT/EPRT with 200, as an attacker's
server would. The LAN client (fa-lc, masqueraded) talks to it through the
gateway, whose daemon watches 2121 as an extra control port.
"""
import json
import os
import subprocess
import time

from lab import BOUNCE_SERVER, LAN_CLIENT, expect, nsx

GATEWAYS = ("own",)
PORT = 2121

# Records each received line (JSON, latin-1) to argv[2]; PORT/EPRT get 200, USER 331, PASS 230, the rest 500.
SERVER = ("import socket,sys,json,threading\n"
          "def serve(c):\n"
          " c.sendall(b'220 slipstream test server\\r\\n')\n"
          " for raw in c.makefile('rb'):\n"
          "  with open(sys.argv[2],'a') as f:\n   f.write(json.dumps(raw.decode('latin-1'))+'\\n')\n"
          "  v=raw.lstrip()[:4].upper()\n"
          "  c.sendall({b'PORT':b'200 PORT ok\\r\\n',b'EPRT':b'200 EPRT ok\\r\\n',b'USER':b'331 any\\r\\n',"
          "b'PASS':b'230 in\\r\\n'}.get(v,b'500 what\\r\\n'))\n"
          " c.close()\n"
          "s=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
          "s.bind((sys.argv[1],%d))\ns.listen(5)\n"
          "while True:\n c,_=s.accept()\n threading.Thread(target=serve,args=(c,),daemon=True).start()\n" % PORT)

# Sends each argument (latin-1) as one segment and prints, as JSON, what arrived within 1.5 s of each.
CLIENT = ("import socket,sys,json,time\ns=socket.create_connection((sys.argv[1],%d),timeout=5)\n"
          "s.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\ns.settimeout(0.2)\n"
          "def rd():\n b=b''\n end=time.time()+1.5\n while time.time()<end:\n  try:\n   d=s.recv(65536)\n"
          "  except OSError:\n   continue\n  if not d:\n   break\n  b+=d\n return b.decode('latin-1')\n"
          "out=[rd()]\nfor c in sys.argv[2:]:\n s.sendall(c.encode('latin-1'))\n out.append(rd())\n"
          "print(json.dumps(out))\n" % PORT)

HTTP = ("USER / HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\n"
        % (BOUNCE_SERVER, PORT))


def talk(t, chunks):
    """Run the client; returns what it received and every once4 element seen while it was connected."""
    p = subprocess.Popen(["ip", "netns", "exec", "fa-lc", "python3", "-c", CLIENT, BOUNCE_SERVER] + chunks,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    armed = []
    deadline = time.time() + 60
    while p.poll() is None and time.time() < deadline:
        armed += t.elements("once4")
        time.sleep(0.2)
    if p.poll() is None:
        p.kill()
    out, err = p.communicate()
    try:
        return json.loads(out.strip().splitlines()[-1]), armed
    except (ValueError, IndexError):
        raise AssertionError("client failed: %s %s" % (out, err[-600:]))


def counters(t):
    return t.status()["counters"]


def seen(log):
    try:
        with open(log) as f:
            return [json.loads(x) for x in f]
    except OSError:
        return []


def intact_port_verbs(lines):
    """Lines a lenient server would take for PORT/EPRT/LPRT: white space and Telnet commands dropped."""
    out = []
    for x in lines:
        v = x.replace("\xff\xf4", "").replace("\xff\xf2", "").lstrip(" \t\v\f\r")[:5].upper()
        if v[:4] in ("PORT", "EPRT", "LPRT") and (len(v) == 4 or not v[4].isalnum()):
            out.append(x)
    return out


def slipstream(t):
    log = os.path.join(t.lab.work, "slipstream.jsonl")
    open(log, "w").close()
    srv = subprocess.Popen(["ip", "netns", "exec", "fa-o", "python3", "-c", SERVER, BOUNCE_SERVER, log],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while not nsx("fa-o", "ss -Hltn src %s:%d" % (BOUNCE_SERVER, PORT), check=False).stdout.strip():
            expect(time.time() < deadline, "the scripted server did not start")
            time.sleep(0.1)
        t.lab.start_alg(t.binary, ["--control-ports", "21,%d" % PORT, "--control-socket", t.ctl])
        own = LAN_CLIENT.replace(".", ",")
        # A browser's fetch() with method USER: its request, then a body of PORT lines (the client's own
        # port 6000 and another LAN host's), then a PORT behind a tab.
        got, armed = talk(t, [HTTP + "PORT %s,23,112\r\n" % own, "PORT 192,0,2,10,0,22\r\n",
                              "PORT\t%s,23,113\r\n" % own])
        expect(not armed, "a pinhole was opened: %s", armed)
        lines = seen(log)
        expect(len(lines) == 8, "the server got %r (client saw %r)", lines, got)
        expect(not intact_port_verbs(lines), "the server received %r", intact_port_verbs(lines))
        expect(sum(x.startswith("XXXX") for x in lines) == 3, "not every PORT was neutralized: %r", lines)
        c = counters(t)
        expect("http-on-control-port" in c["refused_by_reason"], "not counted as HTTP: %s", c)
        expect(c["pinholes_opened"] == 0 and c["rewrites"] == 0, "opened or rewrote: %s", c)
        # An FTP-like session on the same port: PORT/EPRT behind a tab, VT, a space or IAC IP, all bounces.
        open(log, "w").close()
        got, armed = talk(t, ["USER anonymous\r\n", "PASS x\r\n", "PORT\t203,0,113,20,23,112\r\n",
                              "PORT\v203,0,113,20,23,112\r\n", "EPRT\t|1|203.0.113.20|6000|\r\n",
                              " PORT 203,0,113,20,23,112\r\n", "\xff\xf4PORT\t203,0,113,20,23,112\r\n",
                              "PORT %s,0,25\r\n" % own])
        expect(not armed, "a pinhole was opened: %s", armed)
        lines = seen(log)
        expect(len(lines) == 8, "the server got %r (client saw %r)", lines, got)
        expect(not intact_port_verbs(lines), "the server received %r", intact_port_verbs(lines))
        c = counters(t)
        expect(c["pinholes_opened"] == 0 and c["rewrites"] == 0, "opened or rewrote: %s", c)
        # Control: the client's own PORT in such a session is rewritten, and armed while it lasts.
        open(log, "w").close()
        got, armed = talk(t, ["USER anonymous\r\n", "PASS x\r\n", "PORT %s,23,114\r\n" % own])
        expect(armed and counters(t)["pinholes_opened"] == 1, "control: the client's own PORT armed %s (%r)",
               armed, got)
        expect(seen(log)[-1].startswith("PORT 203,0,113,1,"), "control: server got %r", seen(log))
    finally:
        t.lab.stop_alg()
        srv.kill()
        srv.wait()


def checks(t):
    yield "slipstream: an HTTP request and whitespace PORTs on an extra control port open nothing", slipstream
