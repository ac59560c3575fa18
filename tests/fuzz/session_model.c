/* SPDX-License-Identifier: GPL-2.0-or-later */
/* fuzz_session's model: receivers, announcements, pinholes, and the invariants (see session_model.h). */
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

const char *skip_list;
bool trace;

/* A violated invariant: abort, unless FUZZ_SESSION_SKIP names its class (to look for others). */
__attribute__((format(printf, 3, 4))) void fail(const char *inv, const char *cls, const char *fmt, ...)
{
	/* FUZZ_SESSION_SKIP: classes separated by commas. */
	size_t n = strlen(cls);
	for (const char *t = skip_list; t && (t = strstr(t, cls)); t += n)
		if ((t == skip_list || t[-1] == ',') && (t[n] == ',' || t[n] == 0))
			return;
	va_list ap;
	fprintf(stderr, "fuzz_session: INVARIANT %s (%s): ", inv, cls);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

static bool is_client_addr(const uint8_t *a)
{
	return memcmp(a, m->client, 4) == 0 || memcmp(a, m->cli_seen, 4) == 0;
}

/* Digit runs of buf as numbers (capped at 99999). */
static unsigned numbers(const uint8_t *buf, size_t len, unsigned *out, unsigned max)
{
	unsigned n = 0;
	for (size_t i = 0; i < len && n < max;) {
		if (!isdigit(buf[i])) {
			i++;
			continue;
		}
		unsigned v = 0;
		while (i < len && isdigit(buf[i])) {
			if (v < 99999)
				v = v * 10 + (unsigned)(buf[i] - '0');
			i++;
		}
		out[n++] = v;
	}
	return n;
}

static void add_port(uint16_t *set, unsigned *n, unsigned port)
{
	if (port > 65535)
		return;
	for (unsigned i = 0; i < *n; i++)
		if (set[i] == port)
			return;
	if (*n < PORT_MAX)
		set[(*n)++] = (uint16_t)port;
}

static bool has_port(const uint16_t *set, unsigned n, unsigned port)
{
	for (unsigned i = 0; i < n; i++)
		if (set[i] == port)
			return true;
	return false;
}

/* A line as an FTP server reads it: Telnet commands gone, CR LF off. */
static size_t server_view(const uint8_t *l, size_t len, uint8_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (l[i] == 0xff && i + 1 < len) {
			/* IAC IAC is 0xff; IAC WILL/WONT/DO/DONT takes an option byte; any other command is two bytes.
			 */
			if (l[i + 1] == 0xff)
				out[n++] = 0xff;
			i += l[i + 1] >= 0xfb && l[i + 1] <= 0xfe ? 2 : 1;
			continue;
		}
		out[n++] = l[i];
	}
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	return n;
}

static bool verb(const uint8_t *l, size_t n, const char *v)
{
	if (n < 4)
		return false;
	for (int i = 0; i < 4; i++)
		if (toupper(l[i]) != v[i])
			return false;
	/* As the daemon reads a verb (ftp-alg(8), SECURITY): any byte but a letter or digit ends it. */
	return n == 4 || !isalnum(l[4]);
}

/*
 * What address and port a PORT/EPRT/LPRT line names, leniently (a server
 * may be lenient): 1 the client's own and port, 2 another host, 0 nothing
 * a server could connect to, -1 not such a line.
 */
static int names(const uint8_t *l, size_t n, unsigned *port)
{
	unsigned v[16];
	*port = 0;
	if (verb(l, n, "PORT")) {
		unsigned k = numbers(l + 4, n - 4, v, 16);
		if (k < 6 || v[0] > 255 || v[1] > 255 || v[2] > 255 || v[3] > 255 || v[4] > 255 || v[5] > 255)
			return 0;
		uint8_t a[4] = {(uint8_t)v[0], (uint8_t)v[1], (uint8_t)v[2], (uint8_t)v[3]};
		*port = v[4] * 256 + v[5];
		return is_client_addr(a) ? 1 : 2;
	}
	if (verb(l, n, "LPRT")) {
		unsigned k = numbers(l + 4, n - 4, v, 16);
		if (k < 1)
			return 0;
		if (v[0] != 4 || k < 9)
			return 2;
		uint8_t a[4] = {(uint8_t)v[2], (uint8_t)v[3], (uint8_t)v[4], (uint8_t)v[5]};
		*port = v[7] * 256 + v[8];
		return is_client_addr(a) && v[2] < 256 && v[3] < 256 && v[4] < 256 && v[5] < 256 ? 1 : 2;
	}
	if (verb(l, n, "EPRT")) {
		size_t i = 5;
		while (i < n && l[i] == ' ')
			i++;
		if (i >= n)
			return 0;
		uint8_t dl = l[i];
		/* Fields: proto, address, port. */
		size_t f[4], nf = 0;
		for (size_t j = i; j < n && nf < 4; j++)
			if (l[j] == dl)
				f[nf++] = j;
		if (nf < 4)
			return 0;
		char addr[64];
		size_t al = f[2] - f[1] - 1;
		if (al >= sizeof(addr))
			return 2;
		memcpy(addr, l + f[1] + 1, al);
		addr[al] = 0;
		if (numbers(l + f[2] + 1, f[3] - f[2] - 1, v, 1) == 1)
			*port = v[0];
		uint8_t a[4];
		if (f[1] - f[0] == 2 && l[f[0] + 1] == '1' && inet_pton(AF_INET, addr, a) == 1)
			return is_client_addr(a) ? 1 : 2;
		return al ? 2 : 0;
	}
	return -1;
}

/* Record what a complete line the sender sent announces: passive ports (server) or its PORT's port (client). */
static void sent_line(int dir, const uint8_t *l, size_t len)
{
	uint8_t sv[8192];
	unsigned v[64], port;
	if (len > sizeof(sv))
		return;
	size_t n = server_view(l, len, sv);
	if (dir == 0) {
		if (names(sv, n, &port) == 1)
			add_port(m->active_ports, &m->nactive, port);
		return;
	}
	if (n < 3 || sv[0] != '2' || sv[1] != '2' || (sv[2] != '7' && sv[2] != '9'))
		return;
	unsigned k = numbers(sv + 3, n - 3, v, 64);
	if (sv[2] == '9') {
		for (unsigned i = 0; i < k; i++)
			add_port(m->passive_ports, &m->npassive, v[i]);
		return;
	}
	for (unsigned i = 0; i + 6 <= k; i++)
		if (v[i] == m->server[0] && v[i + 1] == m->server[1] && v[i + 2] == m->server[2] &&
		    v[i + 3] == m->server[3] && v[i + 4] < 256 && v[i + 5] < 256)
			add_port(m->passive_ports, &m->npassive, v[i + 4] * 256 + v[i + 5]);
}

/* The lines of one view of what dir sent that touch [from, to). */
void scan_sent(int dir, const uint8_t *view, size_t from, size_t to)
{
	struct dirmodel *d = &m->d[dir];
	size_t s = from;
	while (s > 0 && from - s < 8192 && view[s - 1] != '\n')
		s--;
	while (s < to) {
		size_t e = s;
		while (e < d->hi && view[e] != '\n')
			e++;
		if (e >= d->hi)
			return;
		sent_line(dir, view + s, e + 1 - s);
		s = e + 1;
	}
}

void on_pinhole(void *ctx, int what, const struct pinhole *p)
{
	(void)ctx;
	if (what == 'd') {
		for (unsigned i = 0; i < m->nholes; i++)
			if (!m->holes[i].gone && m->holes[i].p.port == p->port &&
			    !memcmp(m->holes[i].p.client, p->client, 4) && !memcmp(m->holes[i].p.local, p->local, 4))
				m->holes[i].gone = true;
		return;
	}
	if (p->family != AF_INET)
		fail("a", "pinhole-family", "family %d", p->family);
	if (memcmp(p->client, m->client, 4) == 0) {
		/* Passive: the client connects, DNATed to the server's announced port. */
		if (memcmp(p->target, m->server, 4) != 0)
			fail("a", "passive-target", "a passive pinhole DNATs to another host than the server");
		if (!has_port(m->passive_ports, m->npassive, p->target_port))
			fail("a", "passive-unannounced", "pinhole to server port %u, which no 227/229 announced",
			     p->target_port);
		if (p->target_port < m->floor)
			fail("a", "passive-below-floor", "pinhole to server port %u, below the floor %u",
			     p->target_port, m->floor);
	} else if (memcmp(p->client, m->server, 4) == 0) {
		/* Active: the server connects, DNATed to the port the client's PORT/EPRT named. */
		if (memcmp(p->target, m->client, 4) != 0)
			fail("a", "active-target", "an active pinhole DNATs to another host than the client");
		if (!has_port(m->active_ports, m->nactive, p->target_port))
			fail("a", "active-unannounced", "pinhole to client port %u, which no PORT/EPRT named",
			     p->target_port);
		if (p->target_port < m->floor)
			fail("a", "active-below-floor", "pinhole to client port %u, below the floor %u", p->target_port,
			     m->floor);
	} else {
		fail("a", "pinhole-stranger", "a pinhole for a host that is neither the client nor the server");
	}
	/*
	 * MaxPinholesPerSession bounds each direction (passive, active) apart, as
	 * the kernel helper's max_expected. An ended session's pinholes leave the
	 * kernel at the next tick: a new connection on the same ports does not
	 * count them.
	 */
	bool active = memcmp(p->client, m->server, 4) == 0;
	unsigned armed = 0;
	uint64_t session = alg_counters(m->a)->sessions;
	for (unsigned i = 0; i < m->nholes; i++) {
		struct hole_rec *h = &m->holes[i];
		if (!h->gone && h->session == session && m->now < h->at + (time_t)h->p.timeout &&
		    (memcmp(h->p.client, m->server, 4) == 0) == active)
			armed++;
	}
	if (armed >= m->cfg.max_pinholes_per_session + 1)
		fail("e", "pinholes-unbounded", "%u %s pinholes armed, over MaxPinholesPerSession %u", armed + 1,
		     active ? "active" : "passive", m->cfg.max_pinholes_per_session);
	if (m->nholes == HOLE_MAX) {
		/* Compact: keep only live ones. */
		unsigned j = 0;
		for (unsigned i = 0; i < m->nholes; i++)
			if (!m->holes[i].gone)
				m->holes[j++] = m->holes[i];
		m->nholes = j;
		if (j == HOLE_MAX)
			m->nholes = 0;
	}
	if (trace)
		fprintf(stderr, "fuzz_session: pinhole %s port %u -> port %u\n",
			memcmp(p->client, m->client, 4) == 0 ? "passive" : "active", p->port, p->target_port);
	m->holes[m->nholes++] = (struct hole_rec){.p = *p, .at = m->now, .session = alg_counters(m->a)->sessions};
}

/* (b): a complete line the server received. */
static void server_got_line(struct dirmodel *d, size_t s, size_t e)
{
	if (s >= d->exempt_b_at)
		return;
	uint8_t sv[8192];
	if (e + 1 - s > sizeof(sv))
		return;
	size_t n = server_view(d->rbuf + s, e + 1 - s, sv);
	unsigned port;
	int r = names(sv, n, &port);
	if (r != 2 && !(r == 1 && port < 1024))
		return;
	/* The class names what let it through, as far as the line or the session shows it. */
	const uint8_t *l = d->rbuf + s;
	const char *why = "";
	unsigned flags = 0;
	for (size_t i = s; i <= e; i++)
		flags |= d->rflag[i];
	if (flags & RF_OPAQUE)
		why = "-opaque";
	else if (flags & RF_ADOPTED)
		why = "-adopted"; /* in the first segment of a session that joined mid-stream */
	else if (flags & RF_OLD)
		why = "-old-retransmission"; /* in a segment from before what the session has seen */
	else if (e + 1 - s > STREAM_HOLD_MAX)
		why = "-long"; /* maybe in more segments than the stream may hold */
	else if (flags & RF_FLUSH)
		why = "-flushed"; /* released by a timer or at shutdown */
	else if (memchr(l, 0xff, e + 1 - s))
		why = "-telnet";
	else if (l[4] != ' ' || (n > 5 && isspace(sv[5])))
		why = "-whitespace";
	else if (islower(l[0]) || islower(l[1]) || islower(l[2]) || islower(l[3]))
		why = "-lowercase";
	else if (toupper(l[0]) == 'L')
		why = "-lprt";
	char cls[64];
	snprintf(cls, sizeof(cls), "%s-reaches-server%s", r == 2 ? "bounce" : "low-port", why);
	fail("b", cls, "\"%.*s\" reaches the server with its verb intact", (int)(n > 80 ? 80 : n), (const char *)sv);
}

static void receive(int dir, uint32_t seq, const uint8_t *p, size_t n)
{
	struct dirmodel *d = &m->d[dir];
	if (!d->based) {
		d->based = true;
		d->rbase = seq;
		d->mid_line = true;
	}
	/* A segment that begins where the current session's ring cannot reach. */
	uint32_t seg_at = seq - d->rbase;
	if (d->sess_from == LOG_MAX && seg_at < LOG_MAX)
		d->sess_from = seg_at;
	uint8_t rf =
	    (uint8_t)((m->a->all && m->a->all->dir[dir].opaque ? RF_OPAQUE : 0) | (m->flushing ? RF_FLUSH : 0));
	bool seg_old =
	    (int32_t)seg_at < 0 ||
	    (seg_at < LOG_MAX && (seg_at < d->sess_from || (d->rhi > seg_at && d->rhi - seg_at > STREAM_SEEN)));
	for (size_t i = 0; i < n; i++) {
		uint32_t at = seq + (uint32_t)i - d->rbase;
		if (at >= LOG_MAX)
			continue;
		/* An adopted session never parses its first line. */
		bool first_line = d->adopt_open && at >= d->sess_from;
		if (first_line && p[i] == '\n')
			d->adopt_open = false;
		if (d->rhave[at]) {
			/*
			 * Stated exception (ftp-alg(8), SECURITY): a server's bytes from before
			 * the ring go on as sent. Nothing in them is parsed or opens anything, and
			 * what a server tells its own client is the server's business.
			 */
			bool exempt = dir == 1 && seg_old;
			if (d->rbuf[at] != p[i] && at < d->opaque_at && !exempt) {
				/*
				 * The class says what the ALG may have lost: the session that released the
				 * first copy, the stream (turned opaque), or the ring's reach.
				 */
				bool forgot = d->rhave[at] != (uint8_t)(m->sessions % 255 + 1);
				bool opaque = m->a->all && m->a->all->dir[dir].opaque;
				const char *why = forgot		      ? "-after-forget"
						  : opaque		      ? "-after-opaque"
						  : d->rhi - at > STREAM_SEEN ? "-beyond-ring"
						  : seg_old		      ? "-partly-beyond-ring"
									      : "";
				char cls[64];
				snprintf(cls, sizeof(cls), "%s-gets-two-versions%s", dir ? "client" : "server", why);
				fail("c", cls, "byte %u toward the %s released as 0x%02x and as 0x%02x", at,
				     dir ? "client" : "server", d->rbuf[at], p[i]);
			}
			continue;
		}
		d->rhave[at] = (uint8_t)(m->sessions % 255 + 1); /* which session released it first */
		d->rflag[at] = (uint8_t)(rf | (seg_old ? RF_OLD : 0) | (first_line ? RF_ADOPTED : 0));
		d->rbuf[at] = p[i];
		if (at + 1 > d->rhi)
			d->rhi = at + 1;
	}
	while (d->rcont < LOG_MAX && d->rhave[d->rcont]) {
		if (d->rbuf[d->rcont] == '\n') {
			if (dir == 0 && !d->mid_line)
				server_got_line(d, d->rline, d->rcont);
			d->rline = d->rcont + 1;
			d->mid_line = false;
		}
		d->rcont++;
	}
}

/* A new connection on the ports: a new conntrack, new receivers. */
static void new_connection(void)
{
	memset(m->k.adj_pos, 0, sizeof(m->k.adj_pos));
	memset(m->k.adj_before, 0, sizeof(m->k.adj_before));
	memset(m->k.adj_after, 0, sizeof(m->k.adj_after));
	memset(m->k.ct.corr_pos, 0, sizeof(m->k.ct.corr_pos));
	memset(m->k.ct.off_before, 0, sizeof(m->k.ct.off_before));
	memset(m->k.ct.off_after, 0, sizeof(m->k.ct.off_after));
	if (m->k.seqadj_ext)
		m->k.ct.seqadj_present[0] = m->k.ct.seqadj_present[1] = false;
	for (int i = 0; i < 2; i++) {
		struct dirmodel *d = &m->d[i];
		memset(d->rhave, 0, d->rhi);
		memset(d->rflag, 0, d->rhi);
		d->based = d->mid_line = d->data_queued = false;
		d->rhi = d->rcont = d->rline = 0;
		d->opaque_at = d->exempt_b_at = LOG_MAX;
	}
}

void emit(void *ctx, const struct alg_verdicts *v)
{
	(void)ctx;
	const struct alg_counters *c = alg_counters(m->a);
	if (c->sessions != m->sessions) {
		if (m->client_syn_op)
			new_connection();
		m->adopted = !m->client_syn_op;
		m->sessions = c->sessions;
		m->d[0].sess_from = m->d[1].sess_from = LOG_MAX;
		m->d[0].adopt_open = m->d[1].adopt_open = m->adopted;
	}
	/* Bytes released from here on in an opaque direction were never parsed. */
	for (struct session *s = m->a->all; s; s = s->next_all)
		for (int dd = 0; dd < 2; dd++)
			if (s->dir[dd].opaque && m->d[dd].opaque_at == LOG_MAX) {
				m->d[dd].opaque_at = m->d[dd].rhi;
				/* Only TLS (234) exempts later lines from (b): after a client that did not open like
				 * FTP they stay checked. */
				uint64_t nf = 0;
				for (unsigned i = 0; i < ALG_REASONS_MAX && c->refusals[i].reason; i++)
					if (!strcmp(c->refusals[i].reason, "not-ftp"))
						nf = c->refusals[i].count;
				if (nf == m->not_ftp)
					m->d[dd].exempt_b_at = m->d[dd].rcont;
				m->not_ftp = nf;
			}
	for (unsigned i = 0; i < v->n; i++) {
		const struct alg_verdict *x = &v->v[i];
		if (x->id >= m->npk)
			fail("d", "unknown-id", "verdict for id %u, never queued", x->id);
		struct pkt_rec *r = &m->pk[x->id];
		if (r->verdict)
			fail("d", "two-verdicts", "a second verdict for id %u", x->id);
		r->verdict = true;
		if (r->dir != v->dir)
			fail("d", "wrong-queue", "id %u of direction %d in a batch of direction %d", x->id, r->dir,
			     v->dir);
		if (!x->accept)
			continue;
		const uint8_t *orig = m->arena + r->off;
		const uint8_t *p = x->data ? x->data : orig;
		size_t len = x->data ? x->len : r->len;
		struct pkt_info pi, po;
		if (pkt_parse(p, len, &pi) != 0 || pi.family != AF_INET)
			fail("d", "unparseable", "packet %u handed back does not parse", x->id);
		if (pkt_parse(orig, r->len, &po) != 0)
			continue; /* a packet the fuzzer made unparseable; only its verdict counts */
		if (memcmp(pi.saddr, po.saddr, 4) || memcmp(pi.daddr, po.daddr, 4) || pi.sport != po.sport ||
		    pi.dport != po.dport || pi.seq != po.seq || (pi.flags & 0x07) != (po.flags & 0x07))
			fail("d", "flow-changed", "packet %u handed back with another flow, sequence or flags", x->id);
		if (x->data && !pkt_checksum_ok(p, len, &pi))
			fail("d", "bad-checksum", "packet %u rebuilt with a wrong checksum", x->id);
		/* The kernel's seqadj, as nf_ct_seqadj applies it to the sequence number. */
		int dd = v->dir;
		int32_t off = (int32_t)(pi.seq - m->k.adj_pos[dd]) > 0 ? m->k.adj_after[dd] : m->k.adj_before[dd];
		if (!m->k.seqadj_ext && !m->k.ct.seqadj_present[dd])
			off = 0;
		if (pi.flags & PKT_TCP_SYN) {
			struct dirmodel *d = &m->d[dd];
			if (!d->based && !d->data_queued) {
				d->based = true;
				d->rbase = pi.seq + 1;
			}
			continue;
		}
		if (pi.payload_len)
			receive(dd, pi.seq + (uint32_t)off, p + pi.payload_off, pi.payload_len);
		if (trace && pi.payload_len) {
			char e[600];
			fprintf(stderr, "fuzz_session: id %u to the %s at %u%s: \"%s\"\n", x->id,
				dd ? "client" : "server", pi.seq + (uint32_t)off - m->d[dd].rbase,
				x->data ? " rebuilt" : "",
				log_escape(p + pi.payload_off, pi.payload_len, e, sizeof(e)));
		}
	}
}

static uint32_t record(int dir, const uint8_t *p, size_t len)
{
	if (m->arena_len + len > m->arena_cap) {
		size_t n = m->arena_cap ? m->arena_cap * 2 : 1 << 16;
		while (n < m->arena_len + len)
			n *= 2;
		m->arena = realloc(m->arena, n);
		if (!m->arena)
			abort();
		m->arena_cap = n;
	}
	if (m->npk == m->pk_cap) {
		m->pk_cap = m->pk_cap ? m->pk_cap * 2 : 1024;
		m->pk = realloc(m->pk, m->pk_cap * sizeof(*m->pk));
		if (!m->pk)
			abort();
	}
	memcpy(m->arena + m->arena_len, p, len);
	m->pk[m->npk] = (struct pkt_rec){.dir = dir, .off = m->arena_len, .len = len};
	m->arena_len += len;
	return (uint32_t)m->npk++;
}

void send_pkt(int dir, uint32_t seq, uint8_t flags, const uint8_t *payload, size_t plen)
{
	static uint8_t pkt[SEG_MAX + 512];
	size_t len;
	if (dir == 0)
		len = tcp4_build(pkt, m->client, m->dst, m->cport, 21, seq, flags, payload, plen);
	else
		len = tcp4_build(pkt, m->server, m->cli_seen, 21, m->cport_seen, seq, flags, payload, plen);
	uint32_t id = record(dir, pkt, len);
	/* The receiver's sequence space starts with the sender's first SYN or segment, released or not. */
	struct dirmodel *d = &m->d[dir];
	if (!d->based && ((flags & PKT_TCP_SYN) || plen)) {
		d->based = true;
		d->rbase = (flags & PKT_TCP_SYN) ? seq + 1 : seq;
		d->mid_line = !(flags & PKT_TCP_SYN);
	}
	if (plen)
		d->data_queued = true;
	m->client_syn_op = dir == 0 && (flags & PKT_TCP_SYN);
	alg_packet(m->a, dir, id, m->arena + m->pk[id].off, len, m->now, emit, NULL);
	m->client_syn_op = false;
}

/* Log bytes [at, at + n) from the isn as sent, and learn what their lines announce. */
