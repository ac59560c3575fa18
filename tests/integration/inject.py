"""Raw TCP segments forged into a live connection from its own endpoint.

The endpoint's kernel tells us where the stream stands (TCP_REPAIR gives
the next sequence numbers, TCP_TIMESTAMP the clock for a timestamp option),
so the forged segment is one the peer would accept.
"""
import socket
import struct

TCP_TIMESTAMP = 24
TCP_REPAIR = 19
TCP_REPAIR_QUEUE = 20
TCP_QUEUE_SEQ = 21
TCP_RECV_QUEUE = 1
TCP_SEND_QUEUE = 2
TCPI_OPT_TIMESTAMPS = 1


def _sum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum(data):
    return (~_sum16(data)) & 0xFFFF


class Stream:
    """Where conn's sending side stands: next seq, next ack, timestamps in use."""

    def __init__(self, conn):
        self.conn = conn
        self.src, self.sport = conn.getsockname()[:2]
        self.dst, self.dport = conn.getpeername()[:2]
        conn.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
        try:
            conn.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
            self.seq = struct.unpack("I", conn.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
            conn.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
            self.ack = struct.unpack("I", conn.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
        finally:
            conn.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)
        info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        self.timestamps = bool(info[5] & TCPI_OPT_TIMESTAMPS)
        self.raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.ip_id = 0x4242

    def segment(self, seq, payload, bad_checksum=False):
        opts = b""
        if self.timestamps:
            now = struct.unpack("I", self.conn.getsockopt(socket.IPPROTO_TCP, TCP_TIMESTAMP, 4))[0]
            opts = b"\x01\x01\x08\x0a" + struct.pack("!II", now, 0)
        doff = (20 + len(opts)) // 4
        hdr = struct.pack("!HHIIBBHHH", self.sport, self.dport, seq & 0xFFFFFFFF, self.ack, doff << 4, 0x18,
                          65535, 0, 0) + opts
        seg = hdr + payload
        pseudo = socket.inet_aton(self.src) + socket.inet_aton(self.dst) + struct.pack("!BBH", 0, 6, len(seg))
        c = checksum(pseudo + seg)
        if bad_checksum:
            c ^= 0x5A5A
        return seg[:16] + struct.pack("!H", c) + seg[18:]

    def _ip(self, ident, l4, frag_off, more):
        flags = (0x2000 if more else 0) | (frag_off // 8)
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, flags, 64, 6, 0,
                          socket.inet_aton(self.src), socket.inet_aton(self.dst))
        hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
        return hdr + l4

    def send(self, seq, payload, bad_checksum=False, fragments=1):
        """Send a segment at seq, whole or cut into IP fragments (8-byte multiples)."""
        seg = self.segment(seq, payload, bad_checksum)
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        step = len(seg) if fragments <= 1 else max(8, (len(seg) // fragments) // 8 * 8)
        for off in range(0, len(seg), step):
            piece = seg[off:off + step]
            self.raw.sendto(self._ip(self.ip_id, piece, off, off + step < len(seg)), (self.dst, 0))
