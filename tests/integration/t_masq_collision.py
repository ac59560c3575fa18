"""Two LAN clients behind one masquerade address announce the same PORT port: each gets its own file."""
import hashlib
import os
import re

from lab import DATA_DIR, FTP_ROOT, LAN_CLIENT, OUTSIDE, expect, last_json, nsx

GATEWAYS = ("own",)
# Second LAN client addresses to try: with two workers the pair must hash to different workers.
OTHERS = ["192.0.2.%d" % i for i in range(51, 59)]
PORT = 50123

# Both control connections log in, both PORTs go out before either answer is read, then both RETRs.
CLIENT = r"""
import ftplib, hashlib, json, socket, sys, threading
server, a_src, b_src, port, path_a, path_b = sys.argv[1:7]
port = int(port)
out = {}

def login(src):
    f = ftplib.FTP(source_address=(src, 0))
    f.connect(server, 21, timeout=15)
    f.login()
    f.sendcmd("TYPE I")
    return f

def listen(src):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, port))
    s.listen(2)
    s.settimeout(10)
    return s

def take(name, s):
    h = hashlib.sha256()
    try:
        c, peer = s.accept()
        with c:
            c.settimeout(10)
            while True:
                b = c.recv(1 << 16)
                if not b:
                    break
                h.update(b)
        out[name] = h.hexdigest()
    except OSError as e:
        out[name] = "error: %r" % e

fa, fb = login(a_src), login(b_src)
la, lb = listen(a_src), listen(b_src)
hp = lambda a: a.replace(".", ",") + ",%d,%d" % (port >> 8, port & 255)
fa.putcmd("PORT " + hp(a_src))
fb.putcmd("PORT " + hp(b_src))
out["port_a"], out["port_b"] = fa.getresp(), fb.getresp()
threads = [threading.Thread(target=take, args=("a", la)), threading.Thread(target=take, args=("b", lb))]
for t in threads:
    t.start()
fa.putcmd("RETR " + path_a)
fb.putcmd("RETR " + path_b)
for name, f in (("retr_a", fa), ("retr_b", fb)):
    try:
        out[name] = f.getresp()
        out[name + "_end"] = f.getresp()
    except Exception as e:
        out[name] = "error: %r" % e
for t in threads:
    t.join()
print(json.dumps(out))
"""


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_pair(t, other, want_b):
    r = nsx("fa-lc", ["python3", "-c", CLIENT, OUTSIDE["vsftpd-out"][0], LAN_CLIENT, other, str(PORT),
                      "/%s/f1M" % DATA_DIR, "/%s/collide-b" % DATA_DIR], check=False, timeout=60)
    res = last_json(r, "collision client")
    expect(res["port_a"].startswith("200") and res["port_b"].startswith("200"), "PORT answers: %s", res)
    expect(res.get("a") == t.files["f1M"] and res.get("b") == want_b,
           "each client must get its own file: %s\n%s", res, t.log()[-2500:])
    # The two rewritten PORTs name the same public address and different ports.
    news = re.findall(r'event=port old="[^"]*" new="PORT 203,0,113,1,(\d+),(\d+)', t.log())
    ports = [int(h) * 256 + int(l) for h, l in news[-2:]]
    expect(len(ports) == 2 and ports[0] != ports[1] and PORT in ports, "rewritten PORT ports %s", ports)


def collision(t, workers):
    path = os.path.join(FTP_ROOT, DATA_DIR, "collide-b")
    with open(path, "wb") as f:
        f.write(os.urandom(300 << 10))
    os.chmod(path, 0o644)
    want_b = sha(path)
    added = []
    t.lab.start_alg(t.binary, ["--workers", str(workers), "--control-socket", t.ctl])
    try:
        for other in OTHERS:
            nsx("fa-lc", "ip addr add %s/24 dev eth0" % other)
            added.append(other)
            before = [w["sessions_opened"] for w in t.status()["per_worker"]]
            run_pair(t, other, want_b)
            after = [w["sessions_opened"] for w in t.status()["per_worker"]]
            split = [a - b for a, b in zip(after, before)]
            if workers == 1 or split == [1, 1]:
                print("    %s and %s: new sessions per worker %s" % (LAN_CLIENT, other, split))
                return
            print("    %s and %s: both on one worker %s, trying another address" % (LAN_CLIENT, other, split))
            # Both on one worker: that pair tested one worker's book; try another address for the sharing.
        raise AssertionError("no address of %s hashed to the other worker than %s" % (OTHERS, LAN_CLIENT))
    finally:
        t.lab.stop_alg()
        for a in added:
            nsx("fa-lc", "ip addr del %s/24 dev eth0" % a, check=False)
        os.unlink(path)


def checks(t):
    yield "one worker: same PORT port from two masqueraded LAN clients, each gets its own file", \
        lambda t: collision(t, 1)
    yield "two workers (clients on different workers): same PORT port, each gets its own file", \
        lambda t: collision(t, 2)
