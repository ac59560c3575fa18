#!/usr/bin/env python3
"""Dump this namespace's IPv4 TCP conntracks through ctnetlink as JSON.

`conntrack -L` does not show sequence adjustments; this prints them
(CTA_SEQ_ADJ_ORIG/REPLY) with both tuples, the status bits, the TCP state,
the helper, the mark and the label bits, one object per conntrack.
"""
import json
import socket
import struct
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET = 1
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED = 0x8000

CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO, CTA_HELP = 1, 2, 3, 4, 5
CTA_TIMEOUT, CTA_MARK, CTA_ID, CTA_SEQ_ADJ_ORIG, CTA_SEQ_ADJ_REPLY, CTA_LABELS = 7, 8, 12, 15, 16, 22
TCP_STATES = ["NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
              "CLOSE", "SYN_SENT2"]
STATUS_BITS = ["EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SEQ_ADJUST",
               "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT", "TEMPLATE", "NAT_CLASH", "HELPER",
               "OFFLOAD", "HW_OFFLOAD"]


def attrs(buf):
    out = {}
    off = 0
    while off + 4 <= len(buf):
        ln, typ = struct.unpack_from("=HH", buf, off)
        if ln < 4:
            break
        out[typ & ~NLA_F_NESTED & 0x7fff] = buf[off + 4:off + ln]
        off += (ln + 3) & ~3
    return out


def tuple_(buf):
    a = attrs(buf)
    ip = attrs(a.get(1, b""))
    proto = attrs(a.get(2, b""))
    t = {}
    if 1 in ip:
        t["src"] = socket.inet_ntoa(ip[1])
    if 2 in ip:
        t["dst"] = socket.inet_ntoa(ip[2])
    if 1 in proto:
        t["proto"] = proto[1][0]
    if 2 in proto:
        t["sport"] = struct.unpack(">H", proto[2])[0]
    if 3 in proto:
        t["dport"] = struct.unpack(">H", proto[3])[0]
    return t


def seqadj(buf):
    a = attrs(buf)
    names = {1: "correction_pos", 2: "offset_before", 3: "offset_after"}
    return {names[k]: struct.unpack(">I", v)[0] for k, v in a.items() if k in names}


def parse(payload):
    a = attrs(payload[4:])  # after struct nfgenmsg
    ct = {"orig": tuple_(a.get(CTA_TUPLE_ORIG, b"")), "reply": tuple_(a.get(CTA_TUPLE_REPLY, b""))}
    if CTA_STATUS in a:
        st = struct.unpack(">I", a[CTA_STATUS])[0]
        ct["status"] = [n for i, n in enumerate(STATUS_BITS) if st & (1 << i)]
    if CTA_PROTOINFO in a:
        tcp = attrs(attrs(a[CTA_PROTOINFO]).get(1, b""))
        if 1 in tcp:
            s = tcp[1][0]
            ct["tcp_state"] = TCP_STATES[s] if s < len(TCP_STATES) else s
    if CTA_HELP in a:
        h = attrs(a[CTA_HELP]).get(1, b"")
        ct["helper"] = h.rstrip(b"\0").decode(errors="replace")
    if CTA_TIMEOUT in a:
        ct["timeout"] = struct.unpack(">I", a[CTA_TIMEOUT])[0]
    if CTA_MARK in a:
        ct["mark"] = struct.unpack(">I", a[CTA_MARK])[0]
    if CTA_LABELS in a:
        bits = int.from_bytes(a[CTA_LABELS], "little")
        ct["labels"] = [i for i in range(len(a[CTA_LABELS]) * 8) if bits >> i & 1]
    if CTA_SEQ_ADJ_ORIG in a:
        ct["seqadj_orig"] = seqadj(a[CTA_SEQ_ADJ_ORIG])
    if CTA_SEQ_ADJ_REPLY in a:
        ct["seqadj_reply"] = seqadj(a[CTA_SEQ_ADJ_REPLY])
    return ct


def dump():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    s.bind((0, 0))
    typ = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
    body = struct.pack("=BBH", socket.AF_INET, 0, 0)
    s.send(struct.pack("=IHHII", 16 + len(body), typ, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
    cts = []
    while True:
        data = s.recv(1 << 20)
        off = 0
        while off + 16 <= len(data):
            ln, mtype, flags, seq, pid = struct.unpack_from("=IHHII", data, off)
            if mtype == NLMSG_DONE:
                return cts
            if mtype == NLMSG_ERROR:
                err = struct.unpack_from("=i", data, off + 16)[0]
                if err:
                    raise OSError(-err, "ctnetlink dump failed")
                return cts
            ct = parse(data[off + 16:off + ln])
            if ct["orig"].get("proto") == 6:
                cts.append(ct)
            off += (ln + 3) & ~3


if __name__ == "__main__":
    json.dump(dump(), sys.stdout)
    print()
    sys.exit(0)
