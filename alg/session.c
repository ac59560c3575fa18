/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The session table: one session per FTP control connection, found by
 * either conntrack tuple; sessions and clients made and freed, what
 * conntrack tells of a session, and the log gate. The packet path and the
 * timers are packet.c's.
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

struct session *find_orig(struct alg *a, const struct flow *f)
{
	for (struct session *s = a->by_orig[flow_hash(f)]; s; s = s->next_orig)
		if (flow_eq(&s->orig, f))
			return s;
	return NULL;
}

struct session *find_reply(struct alg *a, const struct flow *f)
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
bool server_full(struct alg *a, const struct flow *orig)
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

static void peer_unlink_free(struct alg *a, struct peer *p)
{
	struct peer **pp = &a->peers[addr_hash(p->family, p->addr)];
	while (*pp != p)
		pp = &(*pp)->next;
	*pp = p->next;
	free(p);
}

/*
 * Drop p from the table once no session refers to it. Its ended sessions'
 * pinholes count against it until they leave the kernel (holes_retire_all):
 * until then it waits among the orphans.
 */
static void peer_forget(struct alg *a, struct peer *p)
{
	if (p->nsessions > 0 || p->orphan)
		return;
	if (p->nholes > 0) {
		p->orphan = true;
		p->next_orphan = a->orphans;
		a->orphans = p;
		return;
	}
	peer_unlink_free(a, p);
}

void peers_reap(struct alg *a)
{
	struct peer *keep = NULL, *next;
	for (struct peer *p = a->orphans; p; p = next) {
		next = p->next_orphan;
		p->orphan = false;
		if (p->nsessions > 0)
			continue;
		if (p->nholes > 0) {
			p->orphan = true;
			p->next_orphan = keep;
			keep = p;
			continue;
		}
		peer_unlink_free(a, p);
	}
	a->orphans = keep;
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
void set_hold_cap(struct alg *a, struct session *s, int dir)
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

void session_leave_limits(struct alg *a, struct session *s)
{
	if (s->released)
		return;
	s->released = true;
	a->nclosed++;
	s->peer->nclosed++;
	s->next_closed = NULL;
	s->prev_closed = a->closed_tail;
	if (a->closed_tail)
		a->closed_tail->next_closed = s;
	else
		a->closed_head = s;
	a->closed_tail = s;
}

static void unlink_closed(struct alg *a, struct session *s)
{
	if (!s->released)
		return;
	if (s->prev_closed)
		s->prev_closed->next_closed = s->next_closed;
	else
		a->closed_head = s->next_closed;
	if (s->next_closed)
		s->next_closed->prev_closed = s->prev_closed;
	else
		a->closed_tail = s->prev_closed;
	a->nclosed--;
	s->peer->nclosed--;
}

/*
 * Room for one more session: under MaxSessions counting open sessions only;
 * when closed ones fill the table, the oldest of them without held segments
 * gives way (a stray segment of it then finds no session and is not adopted).
 */
static bool make_room(struct alg *a, const char **refuse)
{
	unsigned max = share(a, a->cfg.max_sessions);
	if (open_sessions(a) >= max) {
		*refuse = "max-sessions";
		return false;
	}
	if (a->nsessions < max)
		return true;
	for (struct session *s = a->closed_head; s; s = s->next_closed)
		if (s->dir[0].nheld == 0 && s->dir[1].nheld == 0) {
			session_free(a, s);
			return true;
		}
	*refuse = "max-sessions";
	return false;
}

/* A new session, or NULL and why (its packet is dropped: no control connection passes unread). */
struct session *session_new(struct alg *a, const struct flow *orig, const char **refuse)
{
	if (!make_room(a, refuse))
		return NULL;
	struct peer *peer = peer_get(a, orig->family, orig->saddr, true);
	if (!peer) {
		*refuse = "out-of-memory";
		return NULL;
	}
	/* A client's closed sessions wait for their conntrack's TIME_WAIT: only its open ones count. */
	if (peer->nsessions - peer->nclosed >= a->cfg.max_sessions_per_client) {
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
void session_free(struct alg *a, struct session *s)
{
	holes_retire_all(&a->book, &s->holes, a->now);
	unlink_closed(a, s);
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

void log_session_start(struct session *s, const char *how)
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
void learn_from_ct(struct alg *a, struct session *s, const struct ct_info *ct)
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
void log_gate_report(struct alg *a)
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

void alg_free(struct alg *a)
{
	if (!a)
		return;
	while (a->all)
		session_free(a, a->all);
	holes_drop_retired(&a->book);
	peers_reap(a);
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
