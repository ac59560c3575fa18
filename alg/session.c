/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The session table: one session per FTP control connection, found by
 * either conntrack tuple; its lifecycle from SYN or adoption to close and
 * expiry; and the packet path from a queued packet to its verdicts.
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "pkt.h"
#include "session_int.h"

#define HOLD_TIMEOUT  2	 /* seconds a partial line may be held */
#define QUIET_CHECK   60 /* seconds without a packet before a session's conntrack is asked about */
#define CLOSED_LINGER 10 /* seconds a closed session is kept for stray packets */
#define RL_PER_SECOND 20
#define RL_PER_CLIENT 5

static uint32_t flow_hash(const struct flow *f)
{
	uint32_t h = 2166136261u;
	const uint8_t *parts[2] = {f->saddr, f->daddr};

	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < flow_addr_len(f->family); j++)
			h = (h ^ parts[i][j]) * 16777619u;
	h = (h ^ f->sport) * 16777619u;
	h = (h ^ f->dport) * 16777619u;
	return h % HASH_BUCKETS;
}

static bool flow_eq(const struct flow *a, const struct flow *b)
{
	size_t l = flow_addr_len(a->family);
	return a->family == b->family && a->sport == b->sport && a->dport == b->dport &&
	       memcmp(a->saddr, b->saddr, l) == 0 && memcmp(a->daddr, b->daddr, l) == 0;
}

const char *addr_str(int family, const uint8_t *a, char *buf, size_t len)
{
	return inet_ntop(family, a, buf, (socklen_t)len) ? buf : "?";
}

/* A worker's part of a global limit: each enforces its share, rounded up. */
static unsigned share(const struct alg *a, unsigned limit)
{
	return (unsigned)(((unsigned long)limit + a->workers - 1) / a->workers);
}

/* The pinhole book's limits follow the configuration and the number of workers. */
static void set_book_limits(struct alg *a)
{
	a->book.max = share(a, a->cfg.max_pinholes);
	a->book.max_per_client = a->cfg.max_pinholes_per_client;
	a->book.record = a->cfg.high_availability;
}

time_t alg_clock(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + 1;
}

struct alg *alg_new(const struct alg_config *cfg, const struct alg_kernel_ops *ops, void *kernel)
{
	struct alg *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->cfg = *cfg;
	a->ops = ops;
	a->kernel = kernel;
	a->next_id = 1;
	a->workers = 1;
	a->started = alg_clock();
	a->book.ops = ops;
	a->book.kernel = kernel;
	a->book.ctr = &a->ctr;
	set_book_limits(a);
	return a;
}

void alg_set_worker(struct alg *a, unsigned index, unsigned count)
{
	a->worker = index;
	a->workers = count ? count : 1;
	a->next_id = index + 1;
	set_book_limits(a);
}

void alg_set_keys(struct alg *a, struct holekeys *k)
{
	holebook_share(&a->book, k);
}

void alg_set_config(struct alg *a, const struct alg_config *cfg)
{
	a->cfg = *cfg;
	set_book_limits(a);
}

const struct alg_counters *alg_counters(const struct alg *a)
{
	return &a->ctr;
}

static struct session *find_orig(struct alg *a, const struct flow *f)
{
	for (struct session *s = a->by_orig[flow_hash(f)]; s; s = s->next_orig)
		if (flow_eq(&s->orig, f))
			return s;
	return NULL;
}

static struct session *find_reply(struct alg *a, const struct flow *f)
{
	for (struct session *s = a->by_reply[flow_hash(f)]; s; s = s->next_reply)
		if (s->have_reply && flow_eq(&s->reply, f))
			return s;
	return NULL;
}

static void link_reply(struct alg *a, struct session *s, const struct flow *reply)
{
	s->reply = *reply;
	s->have_reply = true;
	size_t l = flow_addr_len(s->orig.family);
	s->dnat = memcmp(s->orig.daddr, reply->saddr, l) != 0 || s->orig.dport != reply->sport;
	s->snat = memcmp(s->orig.saddr, reply->daddr, l) != 0 || s->orig.sport != reply->dport;
	uint32_t h = flow_hash(reply);
	s->next_reply = a->by_reply[h];
	a->by_reply[h] = s;
}

void counters_refusal(struct alg_counters *c, const char *reason)
{
	c->refused++;
	for (unsigned i = 0; i < ALG_REASONS_MAX; i++) {
		if (!c->refusals[i].reason)
			c->refusals[i].reason = reason;
		if (strcmp(c->refusals[i].reason, reason) == 0) {
			c->refusals[i].count++;
			return;
		}
	}
}

void count_refusal(struct alg *a, const char *reason)
{
	counters_refusal(&a->ctr, reason);
}

/* The [server] and [class] this connection falls under, and the global settings. */
static void apply_settings(struct alg *a, struct session *s)
{
	const struct cfg_server *sv = config_server_for(&a->cfg, s->orig.family, s->orig.daddr, s->orig.dport);
	const struct cfg_class *cl = config_class_for(&a->cfg, s->orig.family, s->orig.saddr);
	s->passive_lo = a->cfg.passive_lo;
	s->passive_hi = a->cfg.passive_hi;
	if (a->cfg.has_public4 && s->orig.family == AF_INET) {
		memcpy(s->advertise, a->cfg.public4, 4);
		s->has_advertise = true;
	}
	if (sv) {
		snprintf(s->server_name, sizeof(s->server_name), "%s", sv->name);
		if (sv->passive_lo) {
			s->passive_lo = sv->passive_lo;
			s->passive_hi = sv->passive_hi;
		}
		if (sv->has_masq) {
			memcpy(s->advertise, sv->masq, 16);
			s->has_advertise = true;
		}
	}
	if (cl) {
		snprintf(s->class_name, sizeof(s->class_name), "%s", cl->name);
		s->no_rewrite = cl->no_rewrite;
		if (cl->has_masq) {
			memcpy(s->advertise, cl->masq, 16);
			s->has_advertise = true;
		}
	}
}

/* A published server's own session limit. */
static bool server_full(struct alg *a, const struct flow *orig)
{
	const struct cfg_server *sv = config_server_for(&a->cfg, orig->family, orig->daddr, orig->dport);
	if (!sv || !sv->max_sessions)
		return false;
	unsigned n = 0;
	for (struct session *s = a->all; s; s = s->next_all)
		if (!s->closing && strcmp(s->server_name, sv->name) == 0)
			n++;
	return n >= sv->max_sessions;
}

static uint32_t addr_hash(int family, const uint8_t *addr)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < flow_addr_len(family); i++)
		h = (h ^ addr[i]) * 16777619u;
	return h % HASH_BUCKETS;
}
static struct peer *peer_get(struct alg *a, int family, const uint8_t *addr, bool create)
{
	struct peer **head = &a->peers[addr_hash(family, addr)];
	for (struct peer *p = *head; p; p = p->next)
		if (p->family == family && memcmp(p->addr, addr, flow_addr_len(family)) == 0)
			return p;
	if (!create)
		return NULL;
	struct peer *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->family = family;
	memcpy(p->addr, addr, flow_addr_len(family));
	p->next = *head;
	*head = p;
	return p;
}

/* Drop p from the table once no session refers to it. */
static void peer_forget(struct alg *a, struct peer *p)
{
	if (p->nsessions > 0)
		return;
	struct peer **pp = &a->peers[addr_hash(p->family, p->addr)];
	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	free(p);
}

void count_held(struct alg *a, struct session *s, int n)
{
	s->peer->nheld = (unsigned)((int)s->peer->nheld + n);
	a->nheld = (unsigned)((int)a->nheld + n);
}

/*
 * What direction dir of s may hold now: its own, plus what is left of its
 * client's share and of everyone's. Held packets count against the kernel's
 * queue; beyond these limits only this session's line leaves early (with its
 * verb neutralized), never another client's packet.
 */
static void set_hold_cap(struct alg *a, struct session *s, int dir)
{
	unsigned total = share(a, a->cfg.hold_max), per = a->cfg.hold_max_per_client;
	unsigned room = per > s->peer->nheld ? per - s->peer->nheld : 0;
	unsigned room_all = total > a->nheld ? total - a->nheld : 0;
	if (room_all < room)
		room = room_all;
	s->dir[dir].hold_capped = true;
	s->dir[dir].hold_cap = s->dir[dir].nheld + room;
}

static void peer_put(struct alg *a, struct peer *p)
{
	p->nsessions--;
	peer_forget(a, p);
}
/*
 * A zeroed session, from the pool where one is left: its streams keep the
 * buffers of the session before (emptied), so steady churn allocates nothing.
 */
static struct session *session_alloc(struct alg *a)
{
	struct session *s = a->pool;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s) {
			stream_init(&s->dir[0]);
			stream_init(&s->dir[1]);
		}
		return s;
	}
	a->pool = s->next_all;
	a->npool--;
	struct stream d0 = s->dir[0], d1 = s->dir[1];
	memset(s, 0, sizeof(*s));
	s->dir[0] = d0;
	s->dir[1] = d1;
	return s;
}

/* Back to the pool (its streams emptied, their buffers kept), or freed when the pool is full. */
static void session_release(struct alg *a, struct session *s)
{
	if (!s)
		return;
	if (a->npool >= SESSION_POOL) {
		stream_free(&s->dir[0]);
		stream_free(&s->dir[1]);
		free(s);
		return;
	}
	stream_recycle(&s->dir[0]);
	stream_recycle(&s->dir[1]);
	s->next_all = a->pool;
	a->pool = s;
	a->npool++;
}

/* A new session, or NULL and why (its packet is dropped: no control connection passes unread). */
static struct session *session_new(struct alg *a, const struct flow *orig, const char **refuse)
{
	if (a->nsessions >= share(a, a->cfg.max_sessions)) {
		*refuse = "max-sessions";
		return NULL;
	}
	struct peer *peer = peer_get(a, orig->family, orig->saddr, true);
	if (!peer) {
		*refuse = "out-of-memory";
		return NULL;
	}
	if (peer->nsessions >= a->cfg.max_sessions_per_client) {
		peer_forget(a, peer);
		*refuse = "client-max-sessions";
		return NULL;
	}
	struct session *s = session_alloc(a);
	if (!s || holeset_init(&s->holes, a->cfg.max_pinholes_per_session, &peer->nholes) < 0) {
		session_release(a, s);
		peer_forget(a, peer);
		*refuse = "out-of-memory";
		return NULL;
	}
	peer->nsessions++;
	s->peer = peer;
	s->holes.ctl = &s->orig;
	/* Workers number their sessions apart: worker k gives k+1, k+1+W, ... */
	s->id = a->next_id;
	a->next_id += a->workers;
	s->orig = *orig;
	s->alg = a;
	apply_settings(a, s);
	s->dir[DIR_ORIG].neutralize = true;
	uint32_t h = flow_hash(orig);
	s->next_orig = a->by_orig[h];
	a->by_orig[h] = s;
	s->next_all = a->all;
	if (a->all)
		a->all->prev_all = s;
	a->all = s;
	a->nsessions++;
	a->ctr.sessions++;
	return s;
}

static void unlink_from(struct session **head, struct session *s, bool reply)
{
	for (struct session **pp = head; *pp; pp = reply ? &(*pp)->next_reply : &(*pp)->next_orig)
		if (*pp == s) {
			*pp = reply ? s->next_reply : s->next_orig;
			return;
		}
}
static void session_free(struct alg *a, struct session *s)
{
	holes_remove_all(&a->book, &s->holes, a->now);
	unlink_from(&a->by_orig[flow_hash(&s->orig)], s, false);
	if (s->have_reply)
		unlink_from(&a->by_reply[flow_hash(&s->reply)], s, true);
	if (s->prev_all)
		s->prev_all->next_all = s->next_all;
	else
		a->all = s->next_all;
	if (s->next_all)
		s->next_all->prev_all = s->prev_all;
	count_held(a, s, -(int)(s->dir[0].nheld + s->dir[1].nheld));
	holeset_free(&s->holes);
	peer_put(a, s->peer);
	session_release(a, s);
	a->nsessions--;
}

static void log_session_start(struct session *s, const char *how)
{
	char c[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	log_msg(LOG_LVL_DEBUG, "session=%llu event=open how=%s client=%s:%u server=%s:%u%s%s%s%s",
		(unsigned long long)s->id, how, addr_str(s->orig.family, s->orig.saddr, c, sizeof(c)), s->orig.sport,
		addr_str(s->orig.family, s->orig.daddr, d, sizeof(d)), s->orig.dport,
		s->server_name[0] ? " published=" : "", s->server_name, s->class_name[0] ? " class=" : "",
		s->class_name);
}

/* Which side is outside, for a connection the gateway only routes. */
static void learn_routing(struct alg *a, struct session *s)
{
	if (s->dnat || s->snat || !a->ops->via_default)
		return;
	/* Outside: the route leaves through a default route's interface or one Outside= names. */
	int client_out = a->ops->via_default(a->kernel, s->orig.family, s->orig.saddr);
	int server_out = a->ops->via_default(a->kernel, s->orig.family, s->orig.daddr);
	s->routed_in_passive = client_out == 1 && server_out == 0;
	s->routed_in_active = client_out == 0 && server_out == 1;
	if ((client_out < 0 || server_out < 0) && log_gate(a, s))
		log_msg(LOG_LVL_WARN,
			"session=%llu event=unclassified error=\"%s\" effect=\"no pinholes for a routed session\"",
			(unsigned long long)s->id, strerror(client_out < 0 ? -client_out : -server_out));
}

/* A zero adjustment shows whether the conntrack has a seqadj extension. */
static void probe_seqadj(struct alg *a, struct session *s)
{
	struct ct_info back;
	s->seqadj_unasked = false;
	if (a->ops->seqadj_set(a->kernel, &s->orig, DIR_REPLY, 0, 0, 0) == 0 &&
	    a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &back) == 0 && back.seqadj_present[DIR_REPLY])
		s->seqadj_ok = true;
	/* Only NAT rewrites addresses, and so lengths: a routed session needs no offsets. */
	if (!s->seqadj_ok && log_gate(a, s))
		log_msg(s->dnat || s->snat ? LOG_LVL_WARN : LOG_LVL_DEBUG,
			"session=%llu event=no-seqadj reason=\"connection predates ftp-alg or has no helper "
			"extension\" effect=\"only same-length rewrites\"",
			(unsigned long long)s->id);
}

bool session_seqadj_ok(struct session *s)
{
	if (!s->seqadj_ok && s->seqadj_unasked)
		probe_seqadj(s->alg, s);
	return s->seqadj_ok;
}

/* Learn the reply tuple and make sure the kernel keeps sequence offsets for us. */
static void learn_from_ct(struct alg *a, struct session *s, const struct ct_info *ct)
{
	if (strcmp(ct->helper, "ftp") == 0 && !s->kernel_helper) {
		/* Two ALGs on one connection rewrite each other's lines: the kernel's keeps it. */
		s->kernel_helper = true;
		s->dir[0].opaque = s->dir[1].opaque = true;
		log_msg(
		    LOG_LVL_WARN,
		    "session=%llu event=kernel-helper reason=\"the kernel's ftp conntrack helper is attached to this "
		    "connection; ftp-alg leaves it alone\" fix=\"remove 'ct helper set' (or iptables CT --helper ftp) "
		    "for the FTP control port\"",
		    (unsigned long long)s->id);
	}
	if (ct->has_id && !s->has_ct_id) {
		s->has_ct_id = true;
		s->ct_id = ct->id;
	}
	if (!s->have_reply) {
		link_reply(a, s, &ct->reply);
		learn_routing(a, s);
	}
	for (int d = 0; d < 2; d++)
		if (ct->seqadj_present[d]) {
			s->seqadj_ok = true;
			stream_set_adj(&s->dir[d], ct->corr_pos[d], ct->off_before[d], ct->off_after[d]);
		}
	/*
	 * A connection seen from its SYN got a helper extension from the control
	 * chain's "ct expectation set" on that first packet, before any NAT hook,
	 * and NAT setup adds seqadj to a conntrack with a helper extension when
	 * it changes the tuple: a NATed one is asked only if a rewrite needs to
	 * change a line's length (most keep it), since a SYN resent after its
	 * conntrack was confirmed before the table existed gets no extension. A
	 * routed one (no tuple change, so maybe no seqadj) and an adopted one are
	 * asked now.
	 */
	if (!s->seqadj_ok && s->from_syn && (s->dnat || s->snat))
		s->seqadj_unasked = true;
	else if (!s->seqadj_ok)
		probe_seqadj(a, s);
}
/* The excess of refusal logs is counted and reported once a second. */
/* The count of held-back log lines, once their second is over. */
static void log_gate_report(struct alg *a)
{
	if (a->now == a->rl_second)
		return;
	if (a->rl_suppressed)
		log_msg(LOG_LVL_WARN,
			"event=refusals-suppressed count=%lu reason=\"more than %d log lines a second, or %d for one "
			"client\"",
			a->rl_suppressed, RL_PER_SECOND, RL_PER_CLIENT);
	a->rl_second = a->now;
	a->rl_count = 0;
	a->rl_suppressed = 0;
}

bool log_gate(struct alg *a, const struct session *s)
{
	log_gate_report(a);
	struct peer *p = s ? s->peer : NULL;
	if (p && p->rl_second != a->now) {
		p->rl_second = a->now;
		p->rl_count = 0;
	}
	if ((p && ++p->rl_count > RL_PER_CLIENT) || ++a->rl_count > RL_PER_SECOND) {
		a->rl_suppressed++;
		return false;
	}
	return true;
}

static void flow_from_pkt(const struct pkt_info *pi, struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->family = pi->family;
	memcpy(f->saddr, pi->saddr, flow_addr_len(pi->family));
	memcpy(f->daddr, pi->daddr, flow_addr_len(pi->family));
	f->sport = pi->sport;
	f->dport = pi->dport;
}

/*
 * A control connection whose first packet this daemon sees is not its
 * client's SYN: taken up mid-stream only if conntrack says it existed
 * before this daemon could see its first packet (ct_predates: it was in the
 * dump taken at start or at the last takeover, with the same id) and both
 * sides have spoken (SEEN_REPLY). Nothing a peer sends can make a new
 * connection look like that. Such a session skips the greeting and
 * first-line checks (long past), takes the first byte of the next segment
 * in each direction as a line start (see join_stream), and takes its
 * sequence offsets from conntrack.
 */
static struct session *adopt(struct alg *a, const struct ct_info *ct, const char **refuse)
{
	if (!a->ops->ct_predates || !ct->seen_reply || !a->ops->ct_predates(a->kernel, ct)) {
		*refuse = "not-adoptable";
		return NULL;
	}
	struct session *s = session_new(a, &ct->orig, refuse);
	if (!s)
		return NULL;
	s->greeted = true;
	s->client_spoke = true;
	s->join_at_start = true;
	log_session_start(s, "adopted");
	learn_from_ct(a, s, ct);
	return s;
}

static struct session *lookup_or_create(struct alg *a, int dir, const struct pkt_info *pi, const char **refuse)
{
	struct flow f;
	struct ct_info ct;
	struct session *s;

	flow_from_pkt(pi, &f);
	if (dir == DIR_ORIG) {
		s = find_orig(a, &f);
		if (s)
			return s;
		bool syn = (pi->flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN;
		/* Nothing to read in a bare segment; the kernel keeps what it knows of the connection. */
		if (!syn && pi->payload_len == 0)
			return NULL;
		if (syn) {
			if (server_full(a, &f)) {
				*refuse = "server-max-sessions";
				return NULL;
			}
			s = session_new(a, &f, refuse);
			if (s) {
				s->from_syn = true;
				log_session_start(s, "syn");
			}
			return s;
		}
		if (a->ops->ct_get(a->kernel, &f, DIR_ORIG, &ct) < 0) {
			*refuse = "not-adoptable";
			return NULL;
		}
		return adopt(a, &ct, refuse);
	}
	s = find_reply(a, &f);
	if (s)
		return s;
	if (pi->payload_len == 0 && !(pi->flags & PKT_TCP_SYN))
		return NULL;
	int r = a->ops->ct_get(a->kernel, &f, DIR_REPLY, &ct);
	if (r < 0) {
		char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
		log_msg(LOG_LVL_DEBUG, "event=no-conntrack src=%s:%u dst=%s:%u error=\"%s\"",
			addr_str(f.family, f.saddr, sa, sizeof(sa)), f.sport,
			addr_str(f.family, f.daddr, da, sizeof(da)), f.dport, strerror(-r));
		return NULL;
	}
	s = find_orig(a, &ct.orig);
	if (!s)
		return adopt(a, &ct, refuse);
	learn_from_ct(a, s, &ct);
	return s;
}

/*
 * A client's SYN with another initial sequence number than the session's
 * own is a new connection on the same ports only if conntrack says so: the
 * kernel no longer has the session's conntrack (it destroys a closed one
 * when a SYN reopens its tuple, and the new one is not confirmed before the
 * packet leaves prerouting), or has one with another id. Our own view of
 * FIN and RST decides nothing: an injected in-window RST that the server
 * (and conntrack, which closes only on an exact one) ignores could fake it.
 * Only taken when nothing is held, so that no queued packet is left without
 * a verdict.
 */
static bool is_new_incarnation(struct alg *a, const struct session *s, int dir, const struct pkt_info *pi)
{
	if (dir != DIR_ORIG || (pi->flags & (PKT_TCP_SYN | PKT_TCP_ACK)) != PKT_TCP_SYN)
		return false;
	const struct stream *st = &s->dir[DIR_ORIG];
	if (!st->started || (st->syn_seen && st->isn == pi->seq))
		return false;
	if (st->nheld != 0 || s->dir[DIR_REPLY].nheld != 0)
		return false;
	struct ct_info ct;
	int r = a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &ct);
	if (r == -ENOENT)
		return true;
	return r == 0 && s->has_ct_id && ct.has_id && ct.id != s->ct_id;
}

/*
 * The first segment of an adopted or rejoined session in direction dir: its
 * first byte is taken as a line start. A gateway's daemon holds a line it
 * may rewrite until it is whole, so after a failover the sender resends
 * from the start of any line the old gateway held, and a line the old
 * gateway let go in part went with its verb neutralized. Where the guess
 * is wrong, a client fragment is still checked as a command (a PORT-shaped
 * one is checked or neutralized) and a server fragment opens a pinhole
 * only as the answer to a PASV/EPSV this daemon saw.
 */
static void join_stream(struct alg *a, struct session *s, int dir, uint32_t seq)
{
	if (s->reread_adj) {
		/* The peer gateway went on rewriting: the kernel's offsets are the current ones. */
		struct ct_info ct;
		s->reread_adj = false;
		if (a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &ct) == 0)
			for (int d = 0; d < 2; d++)
				if (ct.seqadj_present[d] && !s->dir[d].started)
					stream_set_adj(&s->dir[d], ct.corr_pos[d], ct.off_before[d], ct.off_after[d]);
	}
	if (!s->dir[dir].started) {
		stream_syn(&s->dir[dir], seq - 1);
		s->dir[dir].syn_seen = false;
	}
	if (s->dir[DIR_ORIG].started && s->dir[DIR_REPLY].started)
		s->join_at_start = false;
}

/* The verdicts for one packet into v; returns the session whose stream result is outstanding, if any. */
/* The session's conntrack is still there (with the same id, where known). */
static bool still_tracked(struct alg *a, const struct session *s)
{
	struct ct_info ct;
	return a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &ct) == 0 &&
	       (!s->has_ct_id || !ct.has_id || ct.id == s->ct_id);
}

/*
 * A FIN or RST that is not exactly in order ends the session only if
 * conntrack took it: a stranger's in-window RST that the server ignores
 * (RFC 5961) leaves the conntrack established, and so the session and its
 * pinholes. (TCP_CONNTRACK_FIN_WAIT and later are the closing states.)
 */
static bool closed_by_conntrack(struct alg *a, const struct session *s)
{
	struct ct_info ct;
	int r = a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &ct);
	if (r < 0 || (s->has_ct_id && ct.has_id && ct.id != s->ct_id))
		return true;
	return !ct.has_tcp_state || ct.tcp_state >= 4;
}

static struct session *packet(struct alg *a, int dir, uint32_t id, const uint8_t *pkt, size_t len, time_t now,
			      struct alg_verdicts *v)
{
	struct pkt_info pi;
	struct stream_result res;

	a->now = now;
	a->ctr.packets++;
	/*
	 * Only TCP to or from a control port reaches this queue, and the kernel
	 * has already reassembled fragments and completed local checksums. What
	 * cannot be parsed (IPv6 extension headers, bad lengths) or fails its
	 * checksum is dropped, never passed on unread: a rewrite would give a
	 * corrupt segment a valid checksum, and an unread PORT could bounce.
	 */
	int pr = pkt_parse(pkt, len, &pi);
	if (pr < 0 || ((pi.payload_len || (pi.flags & PKT_TCP_SYN)) && !pkt_checksum_ok(pkt, len, &pi))) {
		const char *why = pr < 0 ? "unparseable-packet" : "bad-checksum";
		count_refusal(a, why);
		a->ctr.dropped++;
		if (log_gate(a, NULL)) {
			char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
			if (pr < 0)
				log_msg(LOG_LVL_WARN, "event=dropped reason=%s length=%zu error=\"%s\"", why, len,
					strerror(-pr));
			else
				log_msg(LOG_LVL_WARN, "event=dropped reason=%s src=%s:%u dst=%s:%u", why,
					addr_str(pi.family, pi.saddr, sa, sizeof(sa)), pi.sport,
					addr_str(pi.family, pi.daddr, da, sizeof(da)), pi.dport);
		}
		add_verdict(v, id, false, NULL, 0);
		return NULL;
	}
	const char *refuse = NULL;
	struct session *s = lookup_or_create(a, dir, &pi, &refuse);
	if (s && is_new_incarnation(a, s, dir, &pi)) {
		/*
		 * The client reuses the ports of a connection that ended (Linux does
		 * within milliseconds); the kernel starts a new conntrack, and so do
		 * we: the old stream's sequence numbers would drop the new one's data.
		 */
		log_msg(LOG_LVL_DEBUG, "session=%llu event=replaced reason=\"a new connection on its ports\"",
			(unsigned long long)s->id);
		session_free(a, s);
		s = lookup_or_create(a, dir, &pi, &refuse);
	}
	if (!s) {
		if (refuse) {
			/*
			 * Over a session limit, or a connection neither seen from its SYN nor
			 * adoptable: its packet goes no further, so that nothing passes unread.
			 */
			count_refusal(a, refuse);
			a->ctr.dropped++;
			if (log_gate(a, NULL)) {
				char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
				log_msg(LOG_LVL_WARN, "event=dropped reason=%s src=%s:%u dst=%s:%u", refuse,
					addr_str(pi.family, pi.saddr, sa, sizeof(sa)), pi.sport,
					addr_str(pi.family, pi.daddr, da, sizeof(da)), pi.dport);
			}
		}
		add_verdict(v, id, !refuse, NULL, 0);
		return NULL;
	}
	s->last_seen = now;
	s->packets++;
	if (pi.flags & PKT_TCP_SYN) {
		/* Only the first: a SYN later in the connection never resets the parser (see stream_syn). */
		stream_syn(&s->dir[dir], pi.seq);
		syn_verdict(a, id, pkt, len, &pi, v);
		return NULL;
	}
	if (s->join_at_start && pi.payload_len > 0)
		join_stream(a, s, dir, pi.seq);
	s->cur_dir = dir;
	set_hold_cap(a, s, dir);
	s->dir[dir].cur_fin = pi.flags & PKT_TCP_FIN;
	unsigned held_before = s->dir[dir].nheld;
	/* A FIN or RST exactly where the sender's stream stands is the endpoint's own (RFC 5961). */
	bool in_order = s->dir[dir].started && pi.seq == s->dir[dir].next_seq;
	stream_segment(&s->dir[dir], &policy_stream_ops, s, id, pi.seq, pkt, len, pi.payload_off, pi.payload_len, &res);
	count_held(a, s, (int)s->dir[dir].nheld - (int)held_before);
	if (res.reason == STREAM_HOLD_FULL) {
		count_refusal(a, "hold-limit");
		if (log_gate(a, s))
			log_msg(LOG_LVL_WARN, "session=%llu event=hold-limit held=%u client_held=%u effect=\"%s\"",
				(unsigned long long)s->id, a->nheld, s->peer->nheld,
				dir == DIR_ORIG ? "partial line released with its verb neutralized"
						: "partial line released unmodified");
	}
	if (res.hold_current && !s->held_since[dir])
		s->held_since[dir] = now;
	if (!res.hold_current && s->dir[dir].nheld == 0)
		s->held_since[dir] = 0;
	to_verdicts(a, s, dir, &res, pkt, len, v);

	if (pi.flags & (PKT_TCP_RST | PKT_TCP_FIN)) {
		if (pi.flags & PKT_TCP_FIN)
			s->fin[dir] = true;
		if (!s->closing && (in_order || closed_by_conntrack(a, s))) {
			s->closing = true;
			s->closed_at = now;
			holes_remove_all(&a->book, &s->holes, a->now);
			log_msg(LOG_LVL_DEBUG, "session=%llu event=close rewrites=%llu packets=%llu",
				(unsigned long long)s->id, (unsigned long long)s->rewrites,
				(unsigned long long)s->packets);
		}
	}
	return s;
}

void alg_packet(struct alg *a, int dir, uint32_t id, const uint8_t *pkt, size_t len, time_t now, alg_emit_fn emit,
		void *ctx)
{
	struct alg_verdicts v = {.dir = dir};
	struct session *s = packet(a, dir, id, pkt, len, now, &v);
	emit(ctx, &v);
	/* The verdicts are out: the copies behind released held segments and the rebuilt packets may go. */
	if (s) {
		stream_result_done(&s->dir[0], NULL);
		stream_result_done(&s->dir[1], NULL);
	}
	a->pktbuf_used = 0;
}

/* Which pinholes were used: the kernel's list of armed ones, read against every session's. */
static void account_pinholes(struct alg *a, time_t now)
{
	if (!holes_account_begin(&a->book, now))
		return;
	for (struct session *s = a->all; s; s = s->next_all)
		holes_account(&a->book, &s->holes, now);
	holes_account_end(&a->book);
}

void alg_tick(struct alg *a, time_t now, alg_emit_fn emit, void *ctx)
{
	a->now = now;
	log_gate_report(a);
	account_pinholes(a, now);
	struct session *next;
	for (struct session *s = a->all; s; s = next) {
		next = s->next_all;
		for (int d = 0; d < 2; d++)
			if (s->held_since[d] && now - s->held_since[d] >= HOLD_TIMEOUT) {
				/*
				 * A line held this long is split finer than its sender's window allows.
				 * A reply goes out untouched (it opens nothing); a PORT/EPRT would reach
				 * the server unchecked, so its verb is neutralized as for a refused one.
				 */
				bool client = d == DIR_ORIG;
				if (log_gate(a, s))
					log_msg(LOG_LVL_INFO, "session=%llu event=hold-timeout effect=\"%s\"",
						(unsigned long long)s->id,
						client ? "released with its verb neutralized" : "released unmodified");
				if (client)
					count_refusal(a, "PORT-split-too-fine");
				s->dir[d].line_long = true;
				flush_dir(a, s, d, emit, ctx, client);
			}
		holes_expire(&a->book, &s->holes, now);
		/*
		 * A session goes with its conntrack, never before: one whose client
		 * is quiet through a long transfer could not be adopted again. Quiet
		 * sessions (half-open ones of a SYN flood among them) and closed
		 * ones are asked about, at most once per interval each.
		 */
		time_t every = s->closing ? CLOSED_LINGER : QUIET_CHECK;
		bool ask = s->closing ? now - s->closed_at >= CLOSED_LINGER : now - s->last_seen >= QUIET_CHECK;
		if (ask && now - s->checked_at >= every && !s->held_since[0] && !s->held_since[1]) {
			s->checked_at = now;
			if (!still_tracked(a, s))
				session_free(a, s);
		}
	}
}

/*
 * Another gateway may have carried these connections meanwhile (takeover):
 * what was held is released as on shutdown, sessions whose conntrack is gone
 * are forgotten, and the others keep what was learnt of them (greeting,
 * first line, not FTP, opaque, armed pinholes) but restart their streams at
 * the next segment, with the offsets conntrack has then.
 */
unsigned alg_takeover(struct alg *a, time_t now, alg_emit_fn emit, void *ctx)
{
	unsigned kept = 0;
	struct session *next;
	a->now = now;
	for (struct session *s = a->all; s; s = next) {
		next = s->next_all;
		for (int d = 0; d < 2; d++)
			flush_dir(a, s, d, emit, ctx, d == DIR_ORIG);
		if (s->closing || !still_tracked(a, s)) {
			session_free(a, s);
			continue;
		}
		for (unsigned i = 0; i < s->npending; i++) {
			struct pending *p = &s->pending[(s->pending_head + i) % PENDING_MAX];
			if (p->has_hole)
				holes_release(&a->book, &s->holes, &p->hole);
		}
		s->npending = s->untracked = s->pending_head = 0;
		s->multiline = false;
		for (int d = 0; d < 2; d++) {
			bool opaque = s->dir[d].opaque;
			stream_free(&s->dir[d]);
			stream_init(&s->dir[d]);
			s->dir[d].opaque = opaque;
			s->held_since[d] = 0;
		}
		s->dir[DIR_ORIG].neutralize = true;
		s->join_at_start = true;
		s->reread_adj = true;
		log_msg(LOG_LVL_DEBUG, "session=%llu event=rejoin reason=takeover", (unsigned long long)s->id);
		kept++;
	}
	return kept;
}

void alg_shutdown(struct alg *a, alg_emit_fn emit, void *ctx)
{
	for (struct session *s = a->all; s; s = s->next_all)
		for (int d = 0; d < 2; d++)
			flush_dir(a, s, d, emit, ctx, d == DIR_ORIG);
	while (a->all)
		session_free(a, a->all);
}

void alg_free(struct alg *a)
{
	if (!a)
		return;
	while (a->all)
		session_free(a, a->all);
	while (a->pool) {
		struct session *s = a->pool;
		a->pool = s->next_all;
		stream_free(&s->dir[0]);
		stream_free(&s->dir[1]);
		free(s);
	}
	holebook_free(&a->book);
	free(a->pktbuf);
	free(a);
}
