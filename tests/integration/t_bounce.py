"""PORT/EPRT naming a third host, the gateway, or port 25 never reach a PORT-obeying server (FTP bounce)."""
import json
import subprocess
import time

from lab import BOUNCE_SERVER, LAN_CLIENT, THIRD_HOST, expect, nsx

GATEWAYS = ("ftp-alg",)

# Listens once for up to 8 s and prints what connected, or NONE.
LISTENER = ("import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
            "s.bind((sys.argv[1],int(sys.argv[2])))\ns.listen(5)\ns.settimeout(8)\n"
            "try:\n c,a=s.accept()\n print('CONNECTED', a, c.recv(100))\nexcept OSError:\n print('NONE')\n")

# Sends each argument as a command line and prints the reply (and the one after a 150).
SESSION = ("import socket,sys\ns=socket.create_connection((sys.argv[1],21),timeout=10)\nf=s.makefile('rb')\n"
           "f.readline()\nfor c in sys.argv[2:]:\n"
           "    s.sendall(c.encode()+b'\\r\\n')\n"
           "    r=f.readline().decode().strip()\n"
           "    if c.startswith('RETR') and r.startswith('150'):\n        r += ' / ' + f.readline().decode().strip()\n"
           "    print(c, '=>', r)\n")

# Logs in, then sends a bounce PORT one byte per segment, then RETR.
ONE_BYTE_PORT = ("import socket,sys,time\ns=socket.create_connection((sys.argv[1],21),timeout=10)\n"
                 "s.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\nf=s.makefile('rb')\nf.readline()\n"
                 "for c in (b'USER anonymous\\r\\n',b'PASS x\\r\\n'):\n s.sendall(c)\n f.readline()\n"
                 "for b in b'PORT 203,0,113,20,23,112\\r\\n':\n s.sendall(bytes([b]))\n time.sleep(0.01)\n"
                 "print(f.readline())\ns.sendall(b'RETR f\\r\\n')\nprint(f.readline())\n")


class Listener:
    """A one-shot listener in a namespace, killed on the way out of its with block."""

    def __init__(self, ns, addr, port):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", LISTENER, addr, str(port)],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)

    def output(self, stop=False):
        if stop:
            # Give a bounced connection time to arrive first.
            time.sleep(0.5)
            self.p.terminate()
        return self.p.communicate(timeout=15)[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def server_saw(t):
    """Every command line the bounce server received since the last clear."""
    try:
        with open(t.lab.bounce_log) as f:
            return [json.loads(x) for x in f]
    except OSError:
        return []


def clear(t):
    open(t.lab.bounce_log, "w").close()


def hostile_ports(t):
    with Listener("fa-x", THIRD_HOST, 6000) as third:
        clear(t)
        r = nsx("fa-lc", ["python3", "-c", SESSION, BOUNCE_SERVER,
                          "USER anonymous", "PASS x",
                          "PORT 203,0,113,20,23,112", "RETR f",      # a third host
                          "EPRT |1|203.0.113.20|6000|", "RETR f",    # the same with EPRT
                          "PORT 192,0,2,1,23,112", "RETR f",         # the gateway's own LAN address
                          "PORT 192,0,2,50,0,25", "RETR f",          # the client, but port 25
                          "QUIT"], check=False, timeout=30)
        got = [x for x in server_saw(t) if x[:4].upper() in ("PORT", "EPRT", "XXXX")]
        expect(len(got) == 4, "server saw %r\n%s", got, r.stdout)
        for x in got:
            expect(x.startswith("XXXX") and "203,0,113,1," not in x and "|203.0.113.1|" not in x,
                   "server received %r", x)
        out = third.output(stop=True)
        expect("CONNECTED" not in out, "the third host was reached: %s", out)


def own_port(t):
    # The same server and client with a legitimate PORT: rewritten, and the data arrives.
    with Listener("fa-lc", LAN_CLIENT, 6001) as own:
        clear(t)
        r = nsx("fa-lc", ["python3", "-c", SESSION, BOUNCE_SERVER, "USER anonymous", "PASS x",
                          "PORT 192,0,2,50,23,113", "RETR f", "QUIT"], check=False, timeout=30)
        got = [x for x in server_saw(t) if x[:4].upper() == "PORT"]
        expect(got == ["PORT 203,0,113,1,23,113\r\n"], "server saw %r (%s)", got, r.stdout)
        out = own.output()
        expect("bounced data" in out, "the data connection did not arrive: %s / %s %s", out, r.stdout, r.stderr[-500:])


def split_port(t):
    # A bounce PORT sent one byte per segment stalls on the sender's window while held;
    # it must still reach the server neutralized, and nothing may reach the third host.
    with Listener("fa-x", THIRD_HOST, 6000) as third:
        clear(t)
        r = nsx("fa-lc", ["python3", "-c", ONE_BYTE_PORT, BOUNCE_SERVER], check=False, timeout=30)
        got = [x for x in server_saw(t) if "203,0,113,20" in x]
        expect(len(got) == 1 and got[0].startswith("XX") and "203,0,113,1," not in got[0],
               "server saw %r (%s %s)", got, r.stdout, r.stderr[-300:])
        out = third.output(stop=True)
        expect("CONNECTED" not in out, "the third host was reached: %s", out)


def checks(t):
    yield "bounce: PORT/EPRT to a third host, the gateway, port 25 never reach the server", hostile_ports
    yield "bounce control: the client's own PORT is rewritten and its data arrives", own_port
    yield "bounce: a PORT sent one byte per segment still reaches the server neutralized", split_port
