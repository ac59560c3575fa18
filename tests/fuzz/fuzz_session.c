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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOG_MAX	 (1u << 16) /* bytes of one direction the model follows */
#define SEG_MAX	 1400
#define BUF_MAX	 (1u << 16)
#define HOLE_MAX 512
#define PORT_MAX 4096

static const uint8_t FOREIGN[4] = {198, 51, 100, 66};

struct dirmodel {
	/* The sender. */
	uint32_t isn, next; /* next new sequence number */
	uint8_t buf[BUF_MAX];
	size_t nbuf;
	uint8_t first[LOG_MAX], last[LOG_MAX]; /* bytes from isn + 1: as first sent, as last sent */
	size_t hi;			       /* bytes [0, hi) were sent */
	/* The receiver, in its own (adjusted) sequence space from rbase. */
	bool based;
	uint32_t rbase;
	uint8_t rbuf[LOG_MAX];
	uint8_t rhave[LOG_MAX];
	uint8_t rflag[LOG_MAX]; /* RF_*: how each byte was released, for naming a failure's class */
	size_t rhi;		/* highest position received + 1 */
	size_t rcont;		/* first position not received */
	size_t rline;		/* start of the next line not yet checked */
	bool mid_line;		/* joined without a SYN: the first bytes may be the end of a line */
	size_t opaque_at;
	size_t sess_from;   /* the first position the current session released (LOG_MAX: none yet) */
	bool data_queued;   /* data went into the queue since the connection began: a later SYN does not start it */
	bool adopt_open;    /* in an adopted session's first line, which it never parses */
	size_t exempt_b_at; /* lines from here need not pass (b): the stream is TLS */
};

enum { RF_OPAQUE = 1, RF_FLUSH = 2, RF_ADOPTED = 4, RF_OLD = 8 };

struct pkt_rec {
	int dir;
	size_t off, len;
	bool verdict;
};

struct hole_rec {
	struct pinhole p;
	time_t at;
	bool gone;
};

static struct model {
	struct fake_kernel k;
	struct alg *a;
	struct alg_config cfg;
	uint16_t floor;
	uint8_t client[4], server[4], cli_seen[4]; /* client, server, and the client as the server sees it */
	uint16_t cport, cport_seen;
	uint8_t dst[4]; /* the client's destination */
	struct dirmodel d[2];
	uint8_t *arena;
	size_t arena_len, arena_cap;
	struct pkt_rec *pk;
	size_t npk, pk_cap;
	struct hole_rec holes[HOLE_MAX];
	unsigned nholes;
	uint16_t passive_ports[PORT_MAX], active_ports[PORT_MAX];
	unsigned npassive, nactive;
	time_t now;
	uint64_t sessions;
	bool client_syn_op;
	bool flushing; /* in alg_tick or alg_shutdown */
	bool adopted;  /* the current session began without the client's SYN: the ALG forgot the one before */
	uint64_t not_ftp;
} * m;

static const char *skip_list;
static bool trace;

/* A violated invariant: abort, unless FUZZ_SESSION_SKIP names its class (to look for others). */
__attribute__((format(printf, 3, 4))) static void fail(const char *inv, const char *cls, const char *fmt, ...)
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
static void scan_sent(int dir, const uint8_t *view, size_t from, size_t to)
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

static void on_pinhole(void *ctx, int what, const struct pinhole *p)
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
	/* MaxPinholesPerSession bounds each direction (passive, active) apart, as the kernel helper's max_expected. */
	bool active = memcmp(p->client, m->server, 4) == 0;
	unsigned armed = 0;
	for (unsigned i = 0; i < m->nholes; i++) {
		struct hole_rec *h = &m->holes[i];
		if (!h->gone && m->now < h->at + (time_t)h->p.timeout &&
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
	m->holes[m->nholes++] = (struct hole_rec){.p = *p, .at = m->now};
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

static void emit(void *ctx, const struct alg_verdicts *v)
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

static void send_pkt(int dir, uint32_t seq, uint8_t flags, const uint8_t *payload, size_t plen)
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
