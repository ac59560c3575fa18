"""What of a control connection's server side crosses the queue: not its bare SYN-ACK.

The server's bare SYN-ACK stays in the kernel, which lowers its MSS by at
least 64 (as the daemon does for the client's SYN): up to the greeting only
the 220 crosses the reply queue, and the client's view of the server's MSS
leaves room for a line rewritten 64 bytes longer.
"""
import json

from lab import expect, nsx

GATEWAYS = ("ftp-alg",)

# Runs in the client's namespace; reads the gateway's queue counters itself between steps.
SESSION = ("import socket,json,subprocess\n"
           "def ids():\n"
           "    out=subprocess.run(['ip','netns','exec','fa-gw','cat','/proc/net/netfilter/nfnetlink_queue'],\n"
           "                       capture_output=True,text=True,check=True).stdout\n"
           "    return [int(l.split()[7]) for l in out.splitlines() if int(l.split()[0])==22][0]\n"
           "n0=ids()\n"
           "s=socket.create_connection(('203.0.113.1',21),timeout=5)\n"
           "mss=s.getsockopt(socket.IPPROTO_TCP,socket.TCP_MAXSEG)\n"
           "f=s.makefile('rb')\n"
           "g=f.readline().decode()\n"
           "n1=ids()\n"
           "s.sendall(b'QUIT\\r\\n')\n"
           "q=f.readline().decode()\n"
           "eof=f.read()==b''\n"
           "print(json.dumps({'mss':mss,'greeting':g,'quit':q,'eof':eof,'handshake':n1-n0}))\n")


def server_side(t):
    got = json.loads(nsx("fa-c", ["python3", "-c", SESSION], timeout=20).stdout)
    expect(got["greeting"].startswith("220") and got["quit"].startswith("221") and got["eof"],
           "the session did not run: %s", got)
    # Up to the greeting, only the 220 crossed the reply queue: not the SYN-ACK.
    expect(got["handshake"] == 1, "%d server segments crossed the queue up to the greeting, not 1 (the 220): "
           "the SYN-ACK crossed", got["handshake"])
    # vsftpd announces 1460; the kernel's map gives 1457's range 1393; 12 bytes of timestamps.
    expect(got["mss"] <= 1460 - 64 - 12, "the client sends segments of %d bytes to the server: its SYN-ACK's MSS "
           "was not lowered", got["mss"])


def checks(t):
    yield "the server's bare SYN-ACK does not cross the queue; the kernel lowers its MSS by 64", server_side
