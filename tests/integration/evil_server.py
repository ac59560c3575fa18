#!/usr/bin/env python3
"""A scripted FTP server for hostile-traffic tests.

The login name picks a case; the case gives the exact bytes sent in reply to
each command, and how they are cut into TCP segments. Real servers never
send most of these, which is why a script plays them.
"""
import argparse
import socket
import time

from scripted import dispatch, serve_forever
import inject

OK227 = b"227 Entering Passive Mode (192,0,2,13,195,80).\r\n"

# case: {command verb: (reply bytes, segment size or 0 for one write)}
CASES = {
    "thirdhost": {"PASV": (b"227 Entering Passive Mode (203,0,113,20,195,80).\r\n", 0)},
    "loopback": {"PASV": (b"227 Entering Passive Mode (127,0,0,1,195,80).\r\n", 0)},
    "broadcast": {"PASV": (b"227 Entering Passive Mode (255,255,255,255,195,80).\r\n", 0)},
    "gateway": {"PASV": (b"227 Entering Passive Mode (192,0,2,1,195,80).\r\n", 0)},
    "multicast": {"PASV": (b"227 Entering Passive Mode (224,0,0,251,195,80).\r\n", 0)},
    "unspecified": {"PASV": (b"227 Entering Passive Mode (0,0,0,0,195,80).\r\n", 0)},
    "shorthand": {"PASV": (b"227 Entering Passive Mode (192,0,13,195,80).\r\n", 0)},
    "nul": {"PASV": (b"227 Entering Passive Mode (192,0,2,13\x00,195,80).\r\n", 0)},
    "octet256": {"PASV": (b"227 Entering Passive Mode (192,0,2,256,195,80).\r\n", 0)},
    "fourdigits": {"PASV": (b"227 Entering Passive Mode (0192,0,2,13,195,80).\r\n", 0)},
    "hex": {"PASV": (b"227 Entering Passive Mode (0xc0,0,2,13,195,80).\r\n", 0)},
    "sign": {"PASV": (b"227 Entering Passive Mode (+192,0,2,13,195,80).\r\n", 0)},
    "fullwidth": {"PASV": ("227 Entering Passive Mode (１９２,0,2,13,195,80).\r\n".encode(), 0)},
    "port0": {"PASV": (b"227 Entering Passive Mode (192,0,2,13,0,0).\r\n", 0)},
    "port65536": {"EPSV": (b"229 Entering Extended Passive Mode (|||65536|)\r\n", 0)},
    "intext": {"PASV": (b"150-227 Entering Passive Mode (192,0,2,13,195,80).\r\n150 no\r\n", 0)},
    "multiline": {"PASV": (b"227-Entering Passive Mode (192,0,2,13,195,80).\r\n227 see above\r\n", 0)},
    "unsolicited": {"NOOP": (OK227, 0)},
    "barecr": {"PASV": (b"200 ok\r227 Entering Passive Mode (192,0,2,13,195,80).\r\n", 0)},
    "longline": {"PASV": (b"227 " + b"x" * 5000 + b" (192,0,2,13,195,80).\r\n", 0)},
    "tls": {"AUTH": (b"234 Proceed.\r\n", 0), "PASV": (OK227, 0)},
    "fromclient": {},
    "onebyte": {"PASV": (OK227, 1)},
    # Before any USER: what a connection that never logs in gets.
    "default": {"PASV": (OK227, 0)},
    "sevenbytes": {"PASV": (OK227, 7)},
}


def send(conn, data, seg):
    if not seg:
        conn.sendall(data)
        return
    for i in range(0, len(data), seg):
        conn.sendall(data[i:i + seg])
        time.sleep(0.01)  # with TCP_NODELAY, one segment each


def injections(conn, state):
    """Answer the first PASV; forge answers to the second (overlap, bad checksum, out of window, fragments)."""
    state["pasv"] = state.get("pasv", 0) + 1
    if state["pasv"] == 1:
        time.sleep(0.2)
        state["first"] = inject.Stream(conn).seq
        conn.sendall(OK227)
        return
    time.sleep(0.3)  # the first 227 is acknowledged: the send queue is empty
    st = inject.Stream(conn)
    # The first 227 again, same length, another port: a retransmission with different content.
    st.send(state["first"], b"227 Entering Passive Mode (192,0,2,13,195,81).\r\n")
    time.sleep(0.1)
    st.send(st.seq, b"227 Entering Passive Mode (192,0,2,13,195,82).\r\n", bad_checksum=True)
    time.sleep(0.1)
    st.send(st.seq + 100000, b"227 Entering Passive Mode (192,0,2,13,195,83).\r\n")
    time.sleep(0.1)
    st.send(st.seq, b"227 Entering Passive Mode (192,0,2,13,195,84).\r\n", fragments=3)


def fullmss(conn, state):
    """Answer HELP and PASV together in exactly one full-MSS segment that ends with the 227."""
    state["pasv"] = state.get("pasv", 0) + 1
    mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    head = b"214-mss=%d\r\n" % mss
    # No free text before "(": the rewrite cannot keep the length and must grow the segment.
    tail = b"214 end\r\n" + b"227 (192,0,2,13,195,80).\r\n"
    fill = mss - len(head) - len(tail)
    body = b"".join(b"214-" + b"x" * 60 + b"\r\n" for _ in range(fill // 66))
    body += b"214-" + b"y" * (fill - len(body) - 6) + b"\r\n"
    conn.sendall(head + body + tail)


# Cases that need the connection itself: called for each PASV.
SPECIAL = {"inject": injections, "fullmss": fullmss}


def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    state = {"case": CASES["default"]}

    def handle(verb, raw):
        case = state["case"]
        if verb == "USER":
            name = raw[5:].strip().decode("latin-1")
            state["case"] = name if name in SPECIAL else CASES.get(name, {})
            return False
        if verb == "PASV" and isinstance(case, str):
            SPECIAL[case](conn, state)
        elif verb == "HELP" and isinstance(case, str):
            pass  # answered together with the PASV that follows
        elif isinstance(case, dict) and verb != "QUIT" and verb in case:
            send(conn, *case[verb])
        else:
            return False
        return True

    dispatch(conn, b"220 evil\r\n", handle)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    a = ap.parse_args()
    serve_forever(a.addr, serve)


if __name__ == "__main__":
    main()
