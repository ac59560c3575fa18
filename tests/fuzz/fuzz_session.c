/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Both sides of one FTP control connection, adversarial, through the whole
 * packet path behind the fake kernel, with a model of the kernel's seqadj
 * and of both receivers. The input is a small program (encoding below);
 * every violated invariant aborts with "fuzz_session: INVARIANT x (class): ..."
 * on stderr, so `fuzz_session FILE` says which one a reproducer breaks:
 *   a  every pinhole is this session's: passive, from the client to the server's
 *      port a 227/229 the server sent announced; active, from the server to the
 *      client's port its PORT/EPRT named; either at or above the floor
 *   b  no PORT/EPRT/LPRT naming another host or a port below 1024 reaches the
 *      server with its verb intact (lines sent after a TLS 234 excepted)
 *   c  each receiver gets one version of every byte (bytes released while the
 *      direction was opaque and never parsed excepted)
 *   d  every verdict is for a queued packet, once, in its queue; a packet handed
 *      back parses and keeps its flow, sequence number and flags
 *   e  at most MaxPinholesPerSession pinholes are armed at once
 * The class names what let a failure through where the model can tell
 * (opaque, adopted, flushed, beyond-ring, ...). FUZZ_SESSION_SKIP=class,class
 * looks past known classes; FUZZ_SESSION_TRACE=1 shows the log, the pinholes
 * and every release.
 *
 * Input: byte 0 is the setup: bits 0-1 the topology (0 DNAT to a server
 * behind the gateway, 1 client behind masquerade, 2 both, 3 routed with the
 * client outside), bit 2 MinDataPort 2000, bit 3 no seqadj extension, bit 4
 * MaxPinholesPerSession 2, bit 5 PassivePorts 30000-30009. Then operations:
 * an op byte, kind = (op >> 1) % 9, dir = op & 1 (0 client, 1 server):
 *   0 APPEND  n, n bytes: raw bytes to dir's send buffer
 *   1 LINE    idx, port (2 bytes BE): a dictionary line to dir's send buffer
 *   2 SEND    n: up to n (0: all, at most 1400) buffered bytes as a segment
 *   3 RETX    back (2 BE), len, mut: a segment from back bytes before the next
 *             sequence, len bytes long (beyond it: new bytes from the buffer);
 *             mut != 0 XORs byte mut % len with mut
 *   4 SYN     m: m == 0 the same initial sequence, else a new one
 *   5 RST     6 FIN
 *   7 TICK    dt: time advances dt seconds (255: past the idle timeout)
 *   8 USE     idx: a data connection uses the idx-th armed pinhole
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alg/log.h"
#include "alg/pkt.h"
#include "alg/session.h"
#include "alg/session_int.h"
#include "tests/common/fake_kernel.h"
#include "tests/common/tcp4.h"
#include "tests/fuzz/session_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct model *m;

static void log_sent(int dir, size_t at, const uint8_t *p, size_t n)
{
	struct dirmodel *d = &m->d[dir];
	if (at >= LOG_MAX)
		return;
	if (n > LOG_MAX - at)
		n = LOG_MAX - at;
	for (size_t i = 0; i < n; i++) {
		if (at + i >= d->hi)
			d->first[at + i] = p[i];
		d->last[at + i] = p[i];
	}
	if (at + n > d->hi)
		d->hi = at + n;
	scan_sent(dir, d->first, at, at + n);
	scan_sent(dir, d->last, at, at + n);
}

static void buf_take(struct dirmodel *d, size_t n)
{
	memmove(d->buf, d->buf + n, d->nbuf - n);
	d->nbuf -= n;
}

static void op_send(int dir, size_t n)
{
	struct dirmodel *d = &m->d[dir];
	if (n == 0 || n > d->nbuf)
		n = d->nbuf;
	if (n > SEG_MAX)
		n = SEG_MAX;
	if (n == 0)
		return;
	log_sent(dir, d->next - d->isn - 1, d->buf, n);
	uint32_t seq = d->next;
	d->next += (uint32_t)n;
	uint8_t seg[SEG_MAX];
	memcpy(seg, d->buf, n);
	buf_take(d, n);
	send_pkt(dir, seq, PKT_TCP_ACK, seg, n);
}

static void op_retx(int dir, size_t back, size_t len, uint8_t mut)
{
	struct dirmodel *d = &m->d[dir];
	size_t sent = d->next - d->isn - 1; /* a FIN's sequence number is a zero in the log */
	if (sent > LOG_MAX)
		sent = LOG_MAX;
	if (back > sent)
		back = sent;
	if (len == 0)
		len = back;
	if (len > back + d->nbuf)
		len = back + d->nbuf;
	if (len > SEG_MAX)
		len = SEG_MAX;
	if (len == 0)
		return;
	uint8_t seg[SEG_MAX];
	size_t old = len < back ? len : back, fresh = len - old;
	memcpy(seg, d->last + (sent - back), old);
	memcpy(seg + old, d->buf, fresh);
	if (mut)
		seg[mut % len] ^= mut;
	uint32_t seq = d->next - (uint32_t)back;
	log_sent(dir, sent - back, seg, len);
	buf_take(d, fresh);
	d->next += (uint32_t)fresh;
	send_pkt(dir, seq, PKT_TCP_ACK, seg, len);
}

static void buf_add(int dir, const void *p, size_t n)
{
	struct dirmodel *d = &m->d[dir];
	if (n > BUF_MAX - d->nbuf)
		n = BUF_MAX - d->nbuf;
	memcpy(d->buf + d->nbuf, p, n);
	d->nbuf += n;
}

static void op_line(int dir, unsigned idx, unsigned port)
{
	char l[256];
	const uint8_t *c = m->client, *s = m->server, *f = FOREIGN;
	unsigned p1 = port >> 8, p2 = port & 255;
	int n;
	if (dir == 0) {
		switch (idx % 22) {
		case 0:
			n = snprintf(l, sizeof(l), "USER anonymous\r\n");
			break;
		case 1:
			n = snprintf(l, sizeof(l), "PASS guest@\r\n");
			break;
		case 2:
			n = snprintf(l, sizeof(l), "PASV\r\n");
			break;
		case 3:
			n = snprintf(l, sizeof(l), "EPSV\r\n");
			break;
		case 4:
			n = snprintf(l, sizeof(l), "PORT %u,%u,%u,%u,%u,%u\r\n", c[0], c[1], c[2], c[3], p1, p2);
			break;
		case 5:
			n = snprintf(l, sizeof(l), "PORT %u,%u,%u,%u,%u,%u\r\n", f[0], f[1], f[2], f[3], p1, p2);
			break;
		case 6:
			n = snprintf(l, sizeof(l), "EPRT |1|%u.%u.%u.%u|%u|\r\n", c[0], c[1], c[2], c[3], port);
			break;
		case 7:
			n = snprintf(l, sizeof(l), "EPRT |1|%u.%u.%u.%u|%u|\r\n", f[0], f[1], f[2], f[3], port);
			break;
		case 8:
			n = snprintf(l, sizeof(l), "EPRT |2|2001:db8::66|%u|\r\n", port);
			break;
		case 9:
			n = snprintf(l, sizeof(l), "LPRT 4,4,%u,%u,%u,%u,2,%u,%u\r\n", c[0], c[1], c[2], c[3], p1, p2);
			break;
		case 10:
			n = snprintf(l, sizeof(l), "AUTH TLS\r\n");
			break;
		case 11:
			n = snprintf(l, sizeof(l), "NOOP\r\n");
			break;
		case 12:
			n = snprintf(l, sizeof(l), "RETR file\r\n");
			break;
		case 13:
			n = snprintf(l, sizeof(l), "LIST\r\n");
			break;
		case 14:
			n = snprintf(l, sizeof(l), "port %u,%u,%u,%u,%u,%u\r\n", f[0], f[1], f[2], f[3], p1, p2);
			break;
		case 15:
			n = snprintf(l, sizeof(l), "PORT\t%u,%u,%u,%u,%u,%u\r\n", f[0], f[1], f[2], f[3], p1, p2);
			break;
		case 16:
			n = snprintf(l, sizeof(l), "QUIT\r\n");
			break;
		case 17:
			n = snprintf(l, sizeof(l), "EPSV ALL\r\n");
			break;
		case 18:
			n = snprintf(l, sizeof(l), "TYPE I\r\n");
			break;
		case 19:
			n = snprintf(l, sizeof(l), "PORT %u,%u,%u,%u,%u,%u\n", c[0], c[1], c[2], c[3], p1, p2);
			break;
		case 20:
			n = snprintf(l, sizeof(l), "PORT %u,%u,%u,%u,%u,%u\r\n", c[0], c[1], c[2], c[3], 0, p2);
			break;
		default:
			n = snprintf(l, sizeof(l), "LPRT 6,16,32,1,13,184,0,0,0,0,0,0,0,0,0,0,0,102,2,%u,%u\r\n", p1,
				     p2);
			break;
		}
	} else {
		switch (idx % 18) {
		case 0:
			n = snprintf(l, sizeof(l), "220 Service ready\r\n");
			break;
		case 1:
			n = snprintf(l, sizeof(l), "227 Entering Passive Mode (%u,%u,%u,%u,%u,%u).\r\n", s[0], s[1],
				     s[2], s[3], p1, p2);
			break;
		case 2:
			n = snprintf(l, sizeof(l), "229 Entering Extended Passive Mode (|||%u|)\r\n", port);
			break;
		case 3:
			n = snprintf(l, sizeof(l), "200 PORT command successful\r\n");
			break;
		case 4:
			n = snprintf(l, sizeof(l), "234 Proceed with negotiation.\r\n");
			break;
		case 5:
			n = snprintf(l, sizeof(l), "150 Opening BINARY mode data connection\r\n");
			break;
		case 6:
			n = snprintf(l, sizeof(l), "226 Transfer complete\r\n");
			break;
		case 7:
			n = snprintf(l, sizeof(l), "230-Welcome\r\n");
			break;
		case 8:
			n = snprintf(l, sizeof(l), "230 Login successful\r\n");
			break;
		case 9:
			n = snprintf(l, sizeof(l), "227-Entering\r\n 227 (%u,%u,%u,%u,%u,%u)\r\n227 Passive\r\n", s[0],
				     s[1], s[2], s[3], p1, p2);
			break;
		case 10:
			n = snprintf(l, sizeof(l), "331 Please specify the password.\r\n");
			break;
		case 11:
			n = snprintf(l, sizeof(l), "500 Unknown command.\r\n");
			break;
		case 12:
			n = snprintf(l, sizeof(l), "227 Entering Passive Mode (%u,%u,%u,%u,%u,%u)\r\n", f[0], f[1],
				     f[2], f[3], p1, p2);
			break;
		case 13:
			n = snprintf(l, sizeof(l), "229 EPSV ok (|||%u|)\r\n", port);
			break;
		case 14:
			n = snprintf(l, sizeof(l), "200 NOOP ok.\r\n");
			break;
		case 15:
			n = snprintf(l, sizeof(l), "221 Goodbye.\r\n");
			break;
		case 16:
			n = snprintf(l, sizeof(l), "227 Entering Passive Mode %u,%u,%u,%u,%u,%u\r\n", s[0], s[1], s[2],
				     s[3], p1, p2);
			break;
		default:
			n = snprintf(l, sizeof(l), "502 Command not implemented.\r\n");
			break;
		}
	}
	if (n > 0)
		buf_add(dir, l, (size_t)n);
}

static void op_syn(int dir, uint8_t mode)
{
	struct dirmodel *d = &m->d[dir];
	if (mode) {
		d->isn += (uint32_t)mode * 0x01000193u;
		d->next = d->isn + 1;
		memset(d->first, 0, d->hi);
		memset(d->last, 0, d->hi);
		d->hi = 0;
	}
	send_pkt(dir, d->isn, dir ? PKT_TCP_SYN | PKT_TCP_ACK : PKT_TCP_SYN, NULL, 0);
}

static void op_use(unsigned idx)
{
	unsigned live[FAKE_KERNEL_MAX], n = 0;
	for (int i = 0; i < m->k.nadded && i < FAKE_KERNEL_MAX; i++)
		if (!m->k.consumed[i])
			live[n++] = (unsigned)i;
	if (!n)
		return;
	unsigned i = live[idx % n];
	m->k.consumed[i] = true;
	const struct pinhole *p = &m->k.added[i];
	for (unsigned j = 0; j < m->nholes; j++)
		if (!m->holes[j].gone && m->holes[j].p.port == p->port && !memcmp(m->holes[j].p.client, p->client, 4))
			m->holes[j].gone = true;
}

static void setup(uint8_t how)
{
	static const uint8_t LAN_CLIENT[4] = {192, 0, 2, 20}, OUT_CLIENT[4] = {203, 0, 113, 10},
			     PUBLIC[4] = {203, 0, 113, 1}, LAN_SERVER[4] = {192, 0, 2, 10},
			     OUT_SERVER[4] = {198, 51, 100, 10}, MASQ[4] = {198, 51, 100, 1};
	int topo = how & 3;
	bool snat = topo == 1 || topo == 2, dnat = topo == 0 || topo == 2;
	memcpy(m->client, snat ? LAN_CLIENT : OUT_CLIENT, 4);
	memcpy(m->cli_seen, snat ? MASQ : m->client, 4);
	memcpy(m->server, snat ? OUT_SERVER : LAN_SERVER, 4);
	memcpy(m->dst, dnat ? PUBLIC : m->server, 4);
	m->cport = 40000;
	m->cport_seen = snat ? 50000 : 40000;

	memset(&m->k, 0, sizeof(m->k));
	struct ct_info *ct = &m->k.ct;
	ct->orig.family = ct->reply.family = AF_INET;
	memcpy(ct->orig.saddr, m->client, 4);
	memcpy(ct->orig.daddr, m->dst, 4);
	ct->orig.sport = m->cport;
	ct->orig.dport = 21;
	memcpy(ct->reply.saddr, m->server, 4);
	memcpy(ct->reply.daddr, m->cli_seen, 4);
	ct->reply.sport = 21;
	ct->reply.dport = m->cport_seen;
	m->k.any_flow = true;
	m->k.seqadj_ext = !(how & 8);
	m->k.seqadj_keep = true;
	memcpy(m->k.outside, OUT_CLIENT, 4);
	m->k.on_pinhole = on_pinhole;

	config_defaults(&m->cfg);
	if (how & 4)
		m->cfg.min_data_port = 2000;
	if (how & 16)
		m->cfg.max_pinholes_per_session = 2;
	if (how & 32) {
		m->cfg.passive_lo = 30000;
		m->cfg.passive_hi = 30009;
	}
	m->floor = m->cfg.min_data_port ? m->cfg.min_data_port : 1024;
	if (m->floor < 1024)
		m->floor = 1024;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		trace = getenv("FUZZ_SESSION_TRACE") != NULL;
		log_open("fuzz", trace ? LOG_LVL_DEBUG : 0, 0);
		skip_list = getenv("FUZZ_SESSION_SKIP");
		m = calloc(1, sizeof(*m));
		if (!m)
			abort();
		init = true;
	}
	if (size < 1)
		return 0;
	/* A fresh model; the big arrays only as far as they were used. */
	for (int i = 0; i < 2; i++) {
		struct dirmodel *d = &m->d[i];
		memset(d->rhave, 0, d->rhi);
		memset(d->rflag, 0, d->rhi);
		memset(d->first, 0, d->hi);
		memset(d->last, 0, d->hi);
		d->hi = d->nbuf = 0;
		d->based = d->mid_line = d->data_queued = false;
		d->rhi = d->rcont = d->rline = 0;
		d->opaque_at = d->exempt_b_at = LOG_MAX;
	}
	m->arena_len = m->npk = 0;
	m->nholes = m->npassive = m->nactive = 0;
	m->now = 1000;
	m->sessions = 0;
	m->not_ftp = 0;
	m->adopted = false;
	setup(data[0]);
	m->a = alg_new(&m->cfg, &fake_kernel_ops, &m->k);
	m->d[0].isn = 1000;
	m->d[1].isn = 5000;
	m->d[0].next = 1001;
	m->d[1].next = 5001;

	size_t pos = 1;
#define NEXT() (pos < size ? data[pos++] : 0)
	while (pos < size) {
		uint8_t op = data[pos++];
		int dir = op & 1;
		switch ((op >> 1) % 9) {
		case 0: {
			size_t n = NEXT();
			if (n > size - pos)
				n = size - pos;
			buf_add(dir, data + pos, n);
			pos += n;
			break;
		}
		case 1: {
			unsigned idx = NEXT();
			unsigned hi = NEXT();
			op_line(dir, idx, hi << 8 | NEXT());
			break;
		}
		case 2:
			op_send(dir, NEXT());
			break;
		case 3: {
			size_t back = (size_t)NEXT() << 8;
			back |= NEXT();
			size_t len = NEXT();
			op_retx(dir, back, len, NEXT());
			break;
		}
		case 4:
			op_syn(dir, NEXT());
			break;
		case 5:
			send_pkt(dir, m->d[dir].next, PKT_TCP_RST | PKT_TCP_ACK, NULL, 0);
			break;
		case 6:
			send_pkt(dir, m->d[dir].next, PKT_TCP_FIN | PKT_TCP_ACK, NULL, 0);
			m->d[dir].next++;
			break;
		case 7: {
			uint8_t dt = NEXT();
			m->now += dt == 255 ? 7300 : dt;
			m->flushing = true;
			alg_tick(m->a, m->now, emit, NULL);
			m->flushing = false;
			break;
		}
		default:
			op_use(NEXT());
			break;
		}
	}
#undef NEXT
	/* Whatever is still held goes out: every queued packet has had exactly one verdict. */
	m->flushing = true;
	alg_shutdown(m->a, emit, NULL);
	m->flushing = false;
	for (size_t i = 0; i < m->npk; i++)
		if (!m->pk[i].verdict)
			fail("d", "no-verdict", "packet %zu never got a verdict", i);
	if (trace)
		for (int i = 0; i < 2; i++) {
			char e[8192];
			fprintf(stderr, "fuzz_session: the %s received \"%s\"\n", i ? "client" : "server",
				log_escape(m->d[i].rbuf, m->d[i].rcont, e, sizeof(e)));
		}
	alg_free(m->a);
	m->a = NULL;
	return 0;
}
