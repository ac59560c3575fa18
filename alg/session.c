/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "pkt.h"

#define HASH_BUCKETS  4096
#define PENDING_MAX   32
#define HOLD_TIMEOUT  2	   /* seconds a partial line may be held */
#define IDLE_TIMEOUT  7200 /* seconds without a packet before a session is forgotten */
#define CLOSED_LINGER 10   /* seconds a closed session is kept for stray packets */

struct hole {
	struct pinhole p;
	time_t expires;
	bool seen; /* still armed in the kernel at the last check */
};

/* Everything of one client address: the per-client limits count here. */
struct peer {
	int family;
	uint8_t addr[16];
	unsigned nsessions;
	unsigned nholes;
	struct peer *next;
};

struct session {
	uint64_t id;
	struct peer *peer;
	struct flow orig;
	struct flow reply;
	bool have_reply;
	bool dnat; /* the server is behind this gateway's DNAT */
	bool snat; /* the client is behind this gateway's SNAT/masquerade */
	/*
	 * Without NAT (routed, typically IPv6): the client is outside and the
	 * server inside (passive pinholes), or the reverse (active pinholes).
	 */
	bool routed_in_passive;
	bool routed_in_active;
	/* Settings fixed at the session's start: a reload applies to new sessions. */
	bool no_rewrite;
	bool kernel_helper;    /* the kernel's ftp helper has this connection: step aside */
	uint8_t advertise[16]; /* address announced in 227 (if has_advertise) */
	bool has_advertise;
	uint16_t passive_lo, passive_hi;
	char server_name[32];
	char class_name[32];
	bool seqadj_ok;
	struct stream dir[2];
	time_t last_seen;
	time_t held_since[2];

	bool greeted;
	bool client_spoke; /* the client's first line has been seen */
	bool multiline;
	int multiline_code;
	struct pending {
		enum ftp_verb verb;
		bool has_hole; /* PORT/EPRT: armed when the server answers 200 */
		struct pinhole hole;
	} pending[PENDING_MAX];
	unsigned npending;
	unsigned untracked; /* commands beyond the tracked ones, answered after them */
	unsigned pending_head;

	struct hole *holes;
	unsigned nholes;
	unsigned holes_cap; /* MaxPinholesPerSession when the session began; a reload does not resize */
	uint64_t rewrites;
	uint64_t packets;
	bool closing;
	time_t closed_at;
	bool fin[2];

	struct session *next_orig;
	struct session *next_reply;
	struct session *next_all;
	struct session *prev_all;
	struct alg *alg;
	int cur_dir;
};

struct alg {
	struct alg_config cfg;
	const struct alg_kernel_ops *ops;
	void *kernel;
	struct session *by_orig[HASH_BUCKETS];
	struct session *by_reply[HASH_BUCKETS];
	struct session *all;
	unsigned nsessions;
	struct peer *peers[HASH_BUCKETS];
	unsigned nholes;	/* armed pinholes of all sessions */
	time_t accounted;	/* when the kernel's list of armed pinholes was last read */
	struct keynode **live;	/* their keys */
	struct keynode **armed; /* keys the kernel still had at the last check (built per tick) */
	uint64_t next_id;
	unsigned worker, workers; /* this one's index, and how many share the global limits */
	uint16_t next_passive;
	struct alg_counters ctr;
	struct session *last; /* session whose stream result is outstanding */
	uint8_t *pktbuf;
	size_t pktbuf_cap;
	size_t pktbuf_used;
	time_t now;
	time_t started;
	/* Refusal logs: at most RL_PER_SECOND a second, the rest counted. */
	time_t rl_second;
	unsigned rl_count;
	unsigned long rl_suppressed;
};

#define RL_PER_SECOND 20

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static uint32_t flow_hash(const struct flow *f)
{
	uint32_t h = 2166136261u;
	const uint8_t *parts[2] = {f->saddr, f->daddr};

	for (int i = 0; i < 2; i++)
		for (size_t j = 0; j < addr_len(f->family); j++)
			h = (h ^ parts[i][j]) * 16777619u;
	h = (h ^ f->sport) * 16777619u;
	h = (h ^ f->dport) * 16777619u;
	return h % HASH_BUCKETS;
}

static bool flow_eq(const struct flow *a, const struct flow *b)
{
	size_t l = addr_len(a->family);
	return a->family == b->family && a->sport == b->sport && a->dport == b->dport &&
	       memcmp(a->saddr, b->saddr, l) == 0 && memcmp(a->daddr, b->daddr, l) == 0;
}

static const char *addr_str(int family, const uint8_t *a, char *buf, size_t len)
{
	return inet_ntop(family, a, buf, (socklen_t)len) ? buf : "?";
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
	a->started = time(NULL);
	return a;
}

void alg_set_worker(struct alg *a, unsigned index, unsigned count)
{
	a->worker = index;
	a->workers = count ? count : 1;
	a->next_id = index + 1;
}

/* A worker's part of a global limit: each enforces its share, rounded up. */
static unsigned share(const struct alg *a, unsigned limit)
{
	return (unsigned)(((unsigned long)limit + a->workers - 1) / a->workers);
}

void alg_set_config(struct alg *a, const struct alg_config *cfg)
{
	a->cfg = *cfg;
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
	size_t l = addr_len(s->orig.family);
	s->dnat = memcmp(s->orig.daddr, reply->saddr, l) != 0 || s->orig.dport != reply->sport;
	s->snat = memcmp(s->orig.saddr, reply->daddr, l) != 0 || s->orig.sport != reply->dport;
	uint32_t h = flow_hash(reply);
	s->next_reply = a->by_reply[h];
	a->by_reply[h] = s;
}

static void count_refusal(struct alg *a, const char *reason)
{
	a->ctr.refused++;
	for (unsigned i = 0; i < ALG_REASONS_MAX; i++) {
		if (!a->ctr.refusals[i].reason)
			a->ctr.refusals[i].reason = reason;
		if (strcmp(a->ctr.refusals[i].reason, reason) == 0) {
			a->ctr.refusals[i].count++;
			return;
		}
	}
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
	for (size_t i = 0; i < addr_len(family); i++)
		h = (h ^ addr[i]) * 16777619u;
	return h % HASH_BUCKETS;
}

/*
 * Pinhole keys (client, local address, port) in a hash: which are armed by
 * some session, and which the kernel still has. Keeps the per-PASV and
 * per-tick work flat as sessions grow.
 */
struct keynode {
	struct keynode *next;
	struct pinhole key;
	unsigned count;
};

#define KEY_BUCKETS 16384

static uint32_t key_hash(const struct pinhole *p)
{
	uint32_t h = 2166136261u ^ p->port;
	size_t l = addr_len(p->family);
	for (size_t i = 0; i < l; i++)
		h = (h ^ p->client[i]) * 16777619u;
	for (size_t i = 0; i < l; i++)
		h = (h ^ p->local[i]) * 16777619u;
	return h % KEY_BUCKETS;
}

static bool same_key(const struct pinhole *a, const struct pinhole *b)
{
	size_t l = addr_len(a->family);
	return a->family == b->family && a->port == b->port && memcmp(a->client, b->client, l) == 0 &&
	       memcmp(a->local, b->local, l) == 0;
}

static struct keynode *keyset_find(struct keynode **set, const struct pinhole *p)
{
	if (!set)
		return NULL;
	for (struct keynode *n = set[key_hash(p)]; n; n = n->next)
		if (same_key(&n->key, p))
			return n;
	return NULL;
}

static int keyset_add(struct keynode ***setp, const struct pinhole *p)
{
	if (!*setp && !(*setp = calloc(KEY_BUCKETS, sizeof(**setp))))
		return -ENOMEM;
	struct keynode *n = keyset_find(*setp, p);
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n)
			return -ENOMEM;
		n->key = *p;
		n->next = (*setp)[key_hash(p)];
		(*setp)[key_hash(p)] = n;
	}
	n->count++;
	return 0;
}

static void keyset_del(struct keynode **set, const struct pinhole *p)
{
	if (!set)
		return;
	for (struct keynode **np = &set[key_hash(p)]; *np; np = &(*np)->next)
		if (same_key(&(*np)->key, p)) {
			struct keynode *n = *np;
			if (--n->count == 0) {
				*np = n->next;
				free(n);
			}
			return;
		}
}

static void keyset_free(struct keynode **set)
{
	if (!set)
		return;
	for (size_t i = 0; i < KEY_BUCKETS; i++)
		while (set[i]) {
			struct keynode *n = set[i];
			set[i] = n->next;
			free(n);
		}
	free(set);
}

static struct peer *peer_get(struct alg *a, int family, const uint8_t *addr, bool create)
{
	struct peer **head = &a->peers[addr_hash(family, addr)];
	for (struct peer *p = *head; p; p = p->next)
		if (p->family == family && memcmp(p->addr, addr, addr_len(family)) == 0)
			return p;
	if (!create)
		return NULL;
	struct peer *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->family = family;
	memcpy(p->addr, addr, addr_len(family));
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

static void peer_put(struct alg *a, struct peer *p)
{
	p->nsessions--;
	peer_forget(a, p);
}

/*
 * A session's pinhole leaves the books (the kernel side is the caller's):
 * its key, the session's slot, the per-client and the global count. Every
 * removal goes through here so that the limits stay exact.
 */
static void hole_forget(struct alg *a, struct session *s, unsigned i)
{
	keyset_del(a->live, &s->holes[i].p);
	memmove(&s->holes[i], &s->holes[i + 1], (s->nholes - i - 1) * sizeof(s->holes[0]));
	s->nholes--;
	s->peer->nholes--;
	a->nholes--;
}

/* Why a new pinhole for s would break a limit, or NULL. A full session replaces its oldest. */
static const char *holes_limit(const struct alg *a, const struct session *s)
{
	if (s->nholes == s->holes_cap)
		return NULL;
	if (a->nholes >= share(a, a->cfg.max_pinholes))
		return "max-pinholes";
	if (s->peer->nholes >= a->cfg.max_pinholes_per_client)
		return "client-max-pinholes";
	return NULL;
}

static struct session *session_new(struct alg *a, const struct flow *orig)
{
	if (a->nsessions >= share(a, a->cfg.max_sessions)) {
		count_refusal(a, "max-sessions");
		return NULL;
	}
	struct peer *peer = peer_get(a, orig->family, orig->saddr, true);
	if (!peer)
		return NULL;
	if (peer->nsessions >= a->cfg.max_sessions_per_client) {
		count_refusal(a, "client-max-sessions");
		return NULL;
	}
	struct session *s = calloc(1, sizeof(*s));
	if (s)
		s->holes = calloc(a->cfg.max_pinholes_per_session, sizeof(*s->holes));
	if (s)
		s->holes_cap = a->cfg.max_pinholes_per_session;
	if (!s || !s->holes) {
		free(s);
		peer_forget(a, peer);
		return NULL;
	}
	peer->nsessions++;
	s->peer = peer;
	/* Workers number their sessions apart: worker k gives k+1, k+1+W, ... */
	s->id = a->next_id;
	a->next_id += a->workers;
	s->orig = *orig;
	s->alg = a;
	apply_settings(a, s);
	stream_init(&s->dir[0]);
	stream_init(&s->dir[1]);
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

static void holes_remove_all(struct alg *a, struct session *s)
{
	for (unsigned i = 0; i < s->nholes; i++) {
		if (s->holes[i].expires > a->now) {
			/* Used or not: the kernel is not asked, so that no removal aborts a batch. */
			if (a->ops->pinhole_del(a->kernel, &s->holes[i].p) < 0)
				a->ctr.errors++;
			else
				a->ctr.pinholes_closed++;
		} else {
			a->ctr.pinholes_expired++;
		}
	}
	while (s->nholes)
		hole_forget(a, s, s->nholes - 1);
}

static void session_free(struct alg *a, struct session *s)
{
	holes_remove_all(a, s);
	unlink_from(&a->by_orig[flow_hash(&s->orig)], s, false);
	if (s->have_reply)
		unlink_from(&a->by_reply[flow_hash(&s->reply)], s, true);
	if (s->prev_all)
		s->prev_all->next_all = s->next_all;
	else
		a->all = s->next_all;
	if (s->next_all)
		s->next_all->prev_all = s->prev_all;
	if (a->last == s)
		a->last = NULL;
	stream_free(&s->dir[0]);
	stream_free(&s->dir[1]);
	free(s->holes);
	peer_put(a, s->peer);
	free(s);
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
	int client_out = a->ops->via_default(a->kernel, s->orig.family, s->orig.saddr);
	int server_out = a->ops->via_default(a->kernel, s->orig.family, s->orig.daddr);
	s->routed_in_passive = client_out == 1 && server_out == 0;
	s->routed_in_active = client_out == 0 && server_out == 1;
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
	if (!s->have_reply) {
		link_reply(a, s, &ct->reply);
		learn_routing(a, s);
	}
	for (int d = 0; d < 2; d++)
		if (ct->seqadj_present[d]) {
			s->seqadj_ok = true;
			stream_set_adj(&s->dir[d], ct->corr_pos[d], ct->off_before[d], ct->off_after[d]);
		}
	if (!s->seqadj_ok) {
		/* A zero adjustment shows whether the conntrack has a seqadj extension. */
		struct ct_info back;
		if (a->ops->seqadj_set(a->kernel, &s->orig, DIR_REPLY, 0, 0, 0) == 0 &&
		    a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &back) == 0 && back.seqadj_present[DIR_REPLY])
			s->seqadj_ok = true;
	}
	if (!s->seqadj_ok)
		log_msg(
		    LOG_LVL_WARN,
		    "session=%llu event=no-seqadj reason=\"connection predates ftp-alg or has no helper extension\" "
		    "effect=\"only same-length rewrites\"",
		    (unsigned long long)s->id);
}

/*
 * Replies come in command order. Past PENDING_MAX outstanding commands the
 * newer ones are only counted, and so is every command after them until
 * their replies have passed, so pairing never slips.
 */
static struct pending *pending_push(struct session *s, enum ftp_verb v)
{
	if (s->npending == PENDING_MAX || s->untracked) {
		s->untracked++;
		return NULL;
	}
	struct pending *p = &s->pending[(s->pending_head + s->npending) % PENDING_MAX];
	*p = (struct pending){.verb = v};
	s->npending++;
	return p;
}

static enum ftp_verb pending_peek(const struct session *s)
{
	return s->npending ? s->pending[s->pending_head].verb : FTP_VERB_OTHER;
}

static void pending_pop(struct session *s)
{
	if (s->npending) {
		s->pending_head = (s->pending_head + 1) % PENDING_MAX;
		s->npending--;
	}
}

static bool hole_in_use(struct alg *a, const struct pinhole *p)
{
	return keyset_find(a->live, p) != NULL;
}

/*
 * Pick the public port for an announced one; nothing is armed yet. Passive:
 * the client may connect to the address it reached the server at, DNATed to
 * the server. Active: the server may connect to the client's public address,
 * DNATed to the client.
 */
static int choose_pinhole(struct alg *a, struct session *s, bool active, const uint8_t *target, uint16_t target_port,
			  struct pinhole *out)
{
	/*
	 * Without NAT the published port must differ from the real one: the
	 * port change makes the data connection a DNAT flow, which the usual
	 * "ct status dnat accept" admits through a drop policy.
	 */
	bool remap = active ? !s->snat : !s->dnat;
	struct pinhole p = {.family = s->orig.family,
			    .port = target_port,
			    .target_port = target_port,
			    .timeout = a->cfg.pinhole_timeout};
	size_t l = addr_len(p.family);
	memcpy(p.client, active ? s->reply.saddr : s->orig.saddr, l);
	memcpy(p.local, active ? s->reply.daddr : s->orig.daddr, l);
	memcpy(p.target, target, l);

	if (s->passive_lo && !active) {
		unsigned span = (unsigned)s->passive_hi - s->passive_lo + 1;
		unsigned tries = 0;
		do {
			if (a->next_passive < s->passive_lo || a->next_passive > s->passive_hi)
				a->next_passive = s->passive_lo;
			p.port = a->next_passive++;
		} while (hole_in_use(a, &p) && ++tries < span);
		if (tries >= span)
			return -EADDRINUSE;
	} else {
		unsigned tries = 0;
		if (remap)
			p.port = (uint16_t)(p.port >= 65535 ? 1024 : p.port + 1);
		while ((hole_in_use(a, &p) || (remap && p.port == target_port)) && ++tries < 64)
			p.port = (uint16_t)(p.port >= 65535 ? 1024 : p.port + 1);
		if (tries >= 64)
			return -EADDRINUSE;
	}
	*out = p;
	return 0;
}

/* Arm a chosen pinhole; only done once the rewritten line is certain to go out. */
static int arm_pinhole(struct alg *a, struct session *s, const struct pinhole *p)
{
	/* Bounded per session: the oldest announcement loses its hole, in the same kernel change. */
	struct pinhole oldest;
	bool replace = s->nholes == s->holes_cap;
	if (replace) {
		oldest = s->holes[0].p;
		replace = s->holes[0].expires > a->now;
		hole_forget(a, s, 0);
	}
	int r = keyset_add(&a->live, p);
	if (r == 0) {
		r = a->ops->pinhole_add(a->kernel, p, replace ? &oldest : NULL);
		if (r < 0)
			keyset_del(a->live, p);
	}
	if (r < 0) {
		a->ctr.errors++;
		log_msg(LOG_LVL_ERR, "session=%llu event=pinhole-failed error=\"%s\"", (unsigned long long)s->id,
			strerror(-r));
		return r;
	}
	s->holes[s->nholes++] = (struct hole){.p = *p, .expires = a->now + (time_t)p->timeout};
	s->peer->nholes++;
	a->nholes++;
	a->ctr.pinholes++;
	return 0;
}

static void log_rewrite(struct session *s, const char *what, const char *old, size_t oldlen, const char *neu,
			size_t newlen, uint16_t published)
{
	char e1[200], e2[200], pub[INET6_ADDRSTRLEN], srv[INET6_ADDRSTRLEN], cli[INET6_ADDRSTRLEN];
	const struct alg *a = s->alg;
	const uint8_t *pa = s->has_advertise ? s->advertise : s->orig.daddr;

	log_msg(LOG_LVL_INFO,
		"session=%llu event=%s client=%s public=%s:%u server=%s pinhole=%us old=\"%s\" new=\"%s\"",
		(unsigned long long)s->id, what, addr_str(s->orig.family, s->orig.saddr, cli, sizeof(cli)),
		addr_str(s->orig.family, pa, pub, sizeof(pub)), published,
		addr_str(s->reply.family, s->reply.saddr, srv, sizeof(srv)), a->cfg.pinhole_timeout,
		log_escape(old, oldlen, e1, sizeof(e1)), log_escape(neu, newlen, e2, sizeof(e2)));
}

/* Refusal logs are capped per second so a flood cannot fill the journal; the excess is counted. */
static bool log_gate(struct alg *a)
{
	if (a->now != a->rl_second) {
		if (a->rl_suppressed)
			log_msg(LOG_LVL_WARN, "event=refusals-suppressed count=%lu reason=\"more than %d a second\"",
				a->rl_suppressed, RL_PER_SECOND);
		a->rl_second = a->now;
		a->rl_count = 0;
		a->rl_suppressed = 0;
	}
	if (++a->rl_count > RL_PER_SECOND) {
		a->rl_suppressed++;
		return false;
	}
	return true;
}

static void log_refusal(struct session *s, const char *reason, const char *line, size_t len)
{
	char e[200];
	struct alg *a = s->alg;
	count_refusal(a, reason);
	if (!log_gate(a))
		return;
	log_msg(LOG_LVL_WARN, "session=%llu event=refused reason=%s line=\"%s\"", (unsigned long long)s->id, reason,
		log_escape(line, len, e, sizeof(e)));
}

/* Room the stream leaves for shrinking; without seqadj, the length must not change at all. */
static size_t min_len_for(const struct session *s, size_t span_len, size_t max_shrink)
{
	if (!s->seqadj_ok)
		return span_len;
	return span_len > max_shrink ? span_len - max_shrink : 0;
}

static int reply_227(struct session *s, const char *line, size_t len, size_t max_shrink, char *out, size_t cap)
{
	struct alg *a = s->alg;
	struct ftp_endpoint ep;
	struct ftp_span span;

	if (ftp_parse_227(line, len, &ep, &span) < 0) {
		log_refusal(s, "malformed-227", line, len);
		return -1;
	}
	if (!s->have_reply || s->orig.family != AF_INET)
		return -1;
	if (memcmp(ep.addr, s->reply.saddr, 4) != 0) {
		log_refusal(s, "227-names-other-host", line, len);
		return -1;
	}
	if ((!s->dnat && !s->routed_in_passive) || s->no_rewrite)
		return -1;
	const char *limit = holes_limit(a, s);
	if (limit) {
		log_refusal(s, limit, line, len);
		return -1;
	}
	struct pinhole hole;
	if (choose_pinhole(a, s, false, s->reply.saddr, ep.port, &hole) < 0) {
		log_refusal(s, "no-free-public-port", line, len);
		return -1;
	}
	uint16_t published = hole.port;
	struct ftp_endpoint pub = {.family = AF_INET, .port = published};
	memcpy(pub.addr, s->has_advertise ? s->advertise : s->orig.daddr, 4);
	char rep[64];
	int n = ftp_format_hostport(&pub, min_len_for(s, span.len, max_shrink), rep, sizeof(rep));
	if (n < 0 || (!s->seqadj_ok && (size_t)n != span.len) || len - span.len + (size_t)n > cap) {
		log_refusal(s, "227-cannot-keep-length", line, len);
		return -1;
	}
	n = ftp_splice(line, len, span, rep, (size_t)n, out, cap);
	if (n < 0 || arm_pinhole(a, s, &hole) < 0)
		return -1;
	s->rewrites++;
	a->ctr.rewrites++;
	log_rewrite(s, "pasv", line, len, out, (size_t)n, published);
	return n;
}

static int reply_229(struct session *s, const char *line, size_t len, size_t max_shrink, char *out, size_t cap)
{
	struct alg *a = s->alg;
	uint16_t port;
	struct ftp_span span;

	if (ftp_parse_229(line, len, &port, &span) < 0) {
		log_refusal(s, "malformed-229", line, len);
		return -1;
	}
	if (!s->have_reply || (!s->dnat && !s->routed_in_passive) || s->no_rewrite)
		return -1;
	const char *limit = holes_limit(a, s);
	if (limit) {
		log_refusal(s, limit, line, len);
		return -1;
	}
	struct pinhole hole;
	if (choose_pinhole(a, s, false, s->reply.saddr, port, &hole) < 0) {
		log_refusal(s, "no-free-public-port", line, len);
		return -1;
	}
	uint16_t published = hole.port;
	if (published == port) {
		if (arm_pinhole(a, s, &hole) == 0)
			log_rewrite(s, "epsv", line, len, line, len, published);
		return -1;
	}
	char rep[16];
	int n = ftp_format_port(published, rep, sizeof(rep));
	size_t min = min_len_for(s, span.len, max_shrink);
	if (n > 0 && (size_t)n < min) {
		/* Keep the length with leading zeros; RFC 2428 ports are decimal. */
		memmove(rep + (min - (size_t)n), rep, (size_t)n);
		memset(rep, '0', min - (size_t)n);
		n = (int)min;
	}
	if (n < 0 || (!s->seqadj_ok && (size_t)n != span.len) || len - span.len + (size_t)n > cap) {
		log_refusal(s, "229-cannot-keep-length", line, len);
		return -1;
	}
	n = ftp_splice(line, len, span, rep, (size_t)n, out, cap);
	if (n < 0 || arm_pinhole(a, s, &hole) < 0)
		return -1;
	s->rewrites++;
	a->ctr.rewrites++;
	log_rewrite(s, "epsv", line, len, out, (size_t)n, published);
	return n;
}

static void go_opaque(struct session *s)
{
	s->dir[0].opaque = true;
	s->dir[1].opaque = true;
	log_msg(LOG_LVL_INFO, "session=%llu event=opaque reason=\"AUTH accepted (234); the connection is encrypted\"",
		(unsigned long long)s->id);
}

/*
 * A PORT/EPRT that fails a check opens nothing and must not reach the
 * server as is (a server that obeys any PORT would connect to the named
 * host): its verb becomes one no server knows, so the server answers 500.
 */
static int neutralize(struct session *s, const char *reason, const char *line, size_t len, char *out, size_t cap)
{
	log_refusal(s, reason, line, len);
	if (len > cap || len < 4)
		return -1;
	memcpy(out, line, len);
	memcpy(out, "XXXX", 4);
	return (int)len;
}

static void log_active(struct session *s, const struct pinhole *h)
{
	char srv[INET6_ADDRSTRLEN], pub[INET6_ADDRSTRLEN], cli[INET6_ADDRSTRLEN];
	log_msg(LOG_LVL_INFO, "session=%llu event=port-armed server=%s public=%s:%u client=%s:%u pinhole=%us",
		(unsigned long long)s->id, addr_str(h->family, h->client, srv, sizeof(srv)),
		addr_str(h->family, h->local, pub, sizeof(pub)), h->port,
		addr_str(h->family, h->target, cli, sizeof(cli)), h->target_port, h->timeout);
}

/* A line the server sent. */
static int server_line(struct session *s, const char *line, size_t len, size_t max_shrink, char *out, size_t cap)
{
	char sep;
	int code = ftp_reply_code(line, len, &sep);

	if (s->multiline) {
		if (code == s->multiline_code && sep == ' ')
			s->multiline = false;
		else
			return -1;
	} else {
		if (code < 0)
			return -1;
		if (sep == '-') {
			s->multiline = true;
			s->multiline_code = code;
			return -1;
		}
	}
	if (code < 200)
		return -1;
	if (!s->greeted) {
		if (code == 220)
			s->greeted = true;
		return -1;
	}
	if (s->npending == 0) {
		if (s->untracked) {
			s->untracked--;
			if (code == 227 || code == 229)
				log_refusal(s, "pipelined-too-deep", line, len);
		}
		return -1;
	}
	struct pending pend = s->pending[s->pending_head];
	enum ftp_verb v = pend.verb;
	pending_pop(s);
	if (pend.has_hole) {
		/* The server accepted the PORT/EPRT: only now may it connect back. */
		if (code == 200 && arm_pinhole(s->alg, s, &pend.hole) == 0)
			log_active(s, &pend.hole);
		return -1;
	}
	/* A multi-line 227/229 ends here but was never announced on its own line: not honoured. */
	if (line[3] != ' ' && len > 3)
		return -1;
	if (v == FTP_VERB_PASV && code == 227)
		return reply_227(s, line, len, max_shrink, out, cap);
	if (v == FTP_VERB_EPSV && code == 229)
		return reply_229(s, line, len, max_shrink, out, cap);
	if (v == FTP_VERB_AUTH && code == 234)
		go_opaque(s);
	return -1;
}

static int client_port(struct session *s, enum ftp_verb v, const char *line, size_t len, size_t max_shrink, char *out,
		       size_t cap, struct pending *pend)
{
	struct alg *a = s->alg;
	struct ftp_endpoint ep;
	struct ftp_span span;
	int r = v == FTP_VERB_PORT ? ftp_parse_port(line, len, &ep, &span) : ftp_parse_eprt(line, len, &ep, &span);

	if (r < 0)
		return neutralize(s, v == FTP_VERB_PORT ? "malformed-PORT" : "malformed-EPRT", line, len, out, cap);
	if (ep.family != s->orig.family)
		return neutralize(s, "EPRT-family-mismatch", line, len, out, cap);
	if (memcmp(ep.addr, s->orig.saddr, addr_len(ep.family)) != 0)
		return neutralize(s, "PORT-names-other-host", line, len, out, cap);
	if (ep.port < a->cfg.min_data_port)
		return neutralize(s, "PORT-below-floor", line, len, out, cap);
	if (!s->have_reply || (!s->snat && !s->routed_in_active))
		return -1;

	const char *limit = holes_limit(a, s);
	if (limit)
		return neutralize(s, limit, line, len, out, cap);
	struct pinhole hole;
	if (choose_pinhole(a, s, true, s->orig.saddr, ep.port, &hole) < 0)
		return neutralize(s, "no-free-public-port", line, len, out, cap);
	struct ftp_endpoint pub = {.family = ep.family, .port = hole.port};
	memcpy(pub.addr, s->reply.daddr, addr_len(ep.family));
	char rep[96];
	int n;
	size_t min = min_len_for(s, span.len, max_shrink);
	if (v == FTP_VERB_PORT) {
		n = ftp_format_hostport(&pub, min, rep, sizeof(rep));
	} else {
		n = ftp_format_eprt(&pub, line[span.off], rep, sizeof(rep));
		if (n > 0 && (size_t)n < min)
			n = -ERANGE;
	}
	if (n < 0 || (!s->seqadj_ok && (size_t)n != span.len) || len - span.len + (size_t)n > cap) {
		log_refusal(s, "PORT-cannot-keep-length", line, len);
		return -1;
	}
	n = ftp_splice(line, len, span, rep, (size_t)n, out, cap);
	if (n < 0)
		return -1;
	pend->has_hole = true;
	pend->hole = hole;
	s->rewrites++;
	a->ctr.rewrites++;
	char e1[200], e2[200];
	log_msg(LOG_LVL_INFO, "session=%llu event=%s old=\"%s\" new=\"%s\"", (unsigned long long)s->id,
		v == FTP_VERB_PORT ? "port" : "eprt", log_escape(line, len, e1, sizeof(e1)),
		log_escape(out, (size_t)n, e2, sizeof(e2)));
	return n;
}

/* A line the client sent. */
static int client_line(struct session *s, const char *line, size_t len, size_t max_shrink, char *out, size_t cap)
{
	if (!s->client_spoke) {
		s->client_spoke = true;
		/* NAT slipstreaming and pinning: a connection that does not open like FTP is never parsed. */
		if (!s->greeted || !ftp_plausible_first_command(line, len)) {
			char e[120];
			s->dir[0].opaque = s->dir[1].opaque = true;
			count_refusal(s->alg, "not-ftp");
			log_msg(LOG_LVL_WARN, "session=%llu event=opaque reason=\"%s\" line=\"%s\"",
				(unsigned long long)s->id,
				s->greeted ? "the first client line is not an FTP command"
					   : "the client spoke before the 220 greeting",
				log_escape(line, len, e, sizeof(e)));
			return -1;
		}
	}
	enum ftp_verb v = ftp_command_verb(line, len);
	if (memchr(line, 0xff, len)) {
		/* A server that strips Telnet commands would see the verb behind them. */
		char plain[16];
		enum ftp_verb pv = ftp_command_verb(plain, ftp_telnet_strip(line, len, plain, sizeof(plain)));
		if (pv == FTP_VERB_PORT || pv == FTP_VERB_EPRT || pv == FTP_VERB_LPRT) {
			pending_push(s, pv);
			return neutralize(s, "telnet-command-in-PORT", line, len, out, cap);
		}
	}
	struct pending *p = pending_push(s, v);
	if ((v == FTP_VERB_PORT || v == FTP_VERB_EPRT) && !p)
		return neutralize(s, "pipelined-too-deep", line, len, out, cap);
	if (v == FTP_VERB_PORT || v == FTP_VERB_EPRT)
		return client_port(s, v, line, len, max_shrink, out, cap, p);
	/* LPRT (RFC 1639) is not understood: it opens nothing and must not bounce either. */
	if (v == FTP_VERB_LPRT)
		return neutralize(s, "LPRT-not-supported", line, len, out, cap);
	return -1;
}

static int on_line(void *ctx, const char *line, size_t len, size_t max_shrink, char *out, size_t cap)
{
	struct session *s = ctx;
	if (s->cur_dir == DIR_ORIG)
		return client_line(s, line, len, max_shrink, out, cap);
	return server_line(s, line, len, max_shrink, out, cap);
}

static bool may_rewrite(void *ctx, const char *line, size_t len)
{
	struct session *s = ctx;
	if (s->cur_dir == DIR_ORIG) {
		/* Any PORT/EPRT may be rewritten or neutralized: hold it whole. */
		static const char *const verbs[] = {"PORT", "EPRT", "LPRT"};
		/* So may a line whose verb hides behind Telnet commands. */
		if (memchr(line, 0xff, len < 16 ? len : 16))
			return true;
		for (int i = 0; i < 3; i++) {
			size_t k = 0;
			while (k < len && k < 4 && (line[k] & ~0x20) == verbs[i][k])
				k++;
			if (k == len || k == 4)
				return true;
		}
		return false;
	}
	if (s->multiline || !s->greeted || (!s->dnat && !s->routed_in_passive))
		return false;
	enum ftp_verb v = pending_peek(s);
	const char *want = v == FTP_VERB_PASV ? "227 " : v == FTP_VERB_EPSV ? "229 " : NULL;
	if (!want)
		return false;
	size_t n = len < 4 ? len : 4;
	return memcmp(line, want, n) == 0;
}

static const struct stream_ops ftp_stream_ops = {.may_rewrite = may_rewrite, .line = on_line};

static int pktbuf_reserve(struct alg *a, size_t need)
{
	if (a->pktbuf_used + need <= a->pktbuf_cap)
		return 0;
	/* Verdict buffers stay valid until alg_verdicts_done, so only grow between batches. */
	if (a->pktbuf_used != 0)
		return -ENOSPC;
	size_t n = a->pktbuf_cap ? a->pktbuf_cap : (size_t)1 << 19;
	while (n < need)
		n *= 2;
	uint8_t *p = realloc(a->pktbuf, n);
	if (!p)
		return -ENOMEM;
	a->pktbuf = p;
	a->pktbuf_cap = n;
	return 0;
}

static void add_verdict(struct alg_verdicts *v, uint32_t id, bool accept, const uint8_t *data, size_t len)
{
	if (v->n < ALG_VERDICT_MAX)
		v->v[v->n++] = (struct alg_verdict){.id = id, .accept = accept, .data = data, .len = len};
}

/* Turn a stream result into queue verdicts, rebuilding modified packets. */
static void to_verdicts(struct alg *a, struct session *s, int dir, const struct stream_result *res,
			const uint8_t *cur_pkt, size_t cur_len, struct alg_verdicts *v)
{
	if (res->seqadj_changed) {
		int r = a->ops->seqadj_set(a->kernel, &s->orig, dir, res->corr_pos, res->off_before, res->off_after);
		if (r < 0) {
			a->ctr.errors++;
			log_msg(LOG_LVL_ERR, "session=%llu event=seqadj-failed error=\"%s\"", (unsigned long long)s->id,
				strerror(-r));
		}
	}
	size_t need = 0;
	for (unsigned i = 0; i < res->nout; i++)
		need += 128 + res->out[i].len + (res->out[i].held ? res->out[i].held->payload_off : cur_len);
	if (pktbuf_reserve(a, need) < 0)
		need = 0;
	for (unsigned i = 0; i < res->nout; i++) {
		const struct stream_out *o = &res->out[i];
		if (o->verdict == STREAM_DROP) {
			a->ctr.dropped++;
			add_verdict(v, o->id, false, NULL, 0);
			continue;
		}
		const uint8_t *base = o->held ? o->held->pkt : cur_pkt;
		size_t base_len = o->held ? o->held->pkt_len : cur_len;
		if (!o->modified) {
			/* The kernel still has the original packet. */
			add_verdict(v, o->id, true, NULL, 0);
			continue;
		}
		struct pkt_info pi;
		int n = -1;
		if (need && pkt_parse(base, base_len, &pi) == 0) {
			const uint8_t *payload = o->modified ? o->payload : base + pi.payload_off;
			size_t plen = o->modified ? o->len : pi.payload_len;
			n = pkt_rebuild(base, base_len, &pi, payload, plen, a->pktbuf + a->pktbuf_used,
					a->pktbuf_cap - a->pktbuf_used);
		}
		if (n < 0) {
			/* Cannot build it: drop rather than send a half-rewritten segment; TCP resends. */
			a->ctr.errors++;
			add_verdict(v, o->id, false, NULL, 0);
			continue;
		}
		add_verdict(v, o->id, true, a->pktbuf + a->pktbuf_used, (size_t)n);
		a->pktbuf_used += (size_t)n;
	}
}

static void flow_from_pkt(const struct pkt_info *pi, struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->family = pi->family;
	memcpy(f->saddr, pi->saddr, addr_len(pi->family));
	memcpy(f->daddr, pi->daddr, addr_len(pi->family));
	f->sport = pi->sport;
	f->dport = pi->dport;
}

static struct session *lookup_or_create(struct alg *a, int dir, const struct pkt_info *pi, bool *refuse)
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
		if (!syn && pi->payload_len == 0)
			return NULL;
		if (syn && server_full(a, &f)) {
			*refuse = true;
			return NULL;
		}
		s = session_new(a, &f);
		if (!s)
			return NULL;
		if (syn) {
			log_session_start(s, "syn");
		} else {
			/* Joined mid-session (started before this daemon): the greeting is long past. */
			s->greeted = true;
			s->client_spoke = true;
			log_session_start(s, "adopted");
			if (a->ops->ct_get(a->kernel, &f, DIR_ORIG, &ct) == 0)
				learn_from_ct(a, s, &ct);
		}
		return s;
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
	if (!s) {
		s = session_new(a, &ct.orig);
		if (!s)
			return NULL;
		s->greeted = !(pi->flags & PKT_TCP_SYN);
		s->client_spoke = s->greeted;
		log_session_start(s, "adopted");
	}
	learn_from_ct(a, s, &ct);
	return s;
}

/*
 * A client's SYN, after the session's FIN or RST, with another initial
 * sequence number than the session's own: a new connection on the same
 * ports. A SYN on a session still open is left to conntrack (which ignores
 * it), so a forged one cannot end a live session. Only taken when nothing is
 * held, so that no queued packet is left without a verdict.
 */
static bool is_new_incarnation(const struct session *s, int dir, const struct pkt_info *pi)
{
	if (!s->closing || dir != DIR_ORIG || (pi->flags & (PKT_TCP_SYN | PKT_TCP_ACK)) != PKT_TCP_SYN)
		return false;
	const struct stream *st = &s->dir[DIR_ORIG];
	if (!st->started || (st->syn_seen && st->isn == pi->seq))
		return false;
	return st->nheld == 0 && s->dir[DIR_REPLY].nheld == 0;
}

void alg_packet(struct alg *a, int dir, uint32_t id, const uint8_t *pkt, size_t len, time_t now, struct alg_verdicts *v)
{
	struct pkt_info pi;
	struct stream_result res;

	v->n = 0;
	v->dir = dir;
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
		if (log_gate(a)) {
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
		return;
	}
	bool refuse = false;
	struct session *s = lookup_or_create(a, dir, &pi, &refuse);
	if (s && is_new_incarnation(s, dir, &pi)) {
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
			/* Over a published server's MaxSessions: the client's SYN goes no further. */
			count_refusal(a, "server-max-sessions");
			a->ctr.dropped++;
		}
		add_verdict(v, id, !refuse, NULL, 0);
		return;
	}
	s->last_seen = now;
	s->packets++;
	if (pi.flags & PKT_TCP_SYN) {
		if (!s->dir[dir].started || s->dir[dir].next_seq == pi.seq + 1)
			stream_syn(&s->dir[dir], pi.seq);
		/*
		 * Each side learns an MSS lowered by what rewrites may add, so a
		 * full segment that grows still fits the MTU (IPv6 cannot fragment
		 * on the way).
		 */
		if (pktbuf_reserve(a, len) == 0) {
			uint8_t *c = a->pktbuf + a->pktbuf_used;
			memcpy(c, pkt, len);
			if (pkt_clamp_mss(c, len, &pi, STREAM_GROW_MAX) == 1) {
				a->pktbuf_used += len;
				add_verdict(v, id, true, c, len);
				return;
			}
		}
		add_verdict(v, id, true, NULL, 0);
		return;
	}
	s->cur_dir = dir;
	stream_segment(&s->dir[dir], &ftp_stream_ops, s, id, pi.seq, pkt, len, pi.payload_off, pi.payload_len, &res);
	if (res.hold_current && !s->held_since[dir])
		s->held_since[dir] = now;
	if (!res.hold_current && s->dir[dir].nheld == 0)
		s->held_since[dir] = 0;
	to_verdicts(a, s, dir, &res, pkt, len, v);
	a->last = s;

	if (pi.flags & (PKT_TCP_RST | PKT_TCP_FIN)) {
		if (pi.flags & PKT_TCP_FIN)
			s->fin[dir] = true;
		if (!s->closing) {
			s->closing = true;
			s->closed_at = now;
			holes_remove_all(a, s);
			log_msg(LOG_LVL_DEBUG, "session=%llu event=close rewrites=%llu packets=%llu",
				(unsigned long long)s->id, (unsigned long long)s->rewrites,
				(unsigned long long)s->packets);
		}
	}
}

void alg_verdicts_done(struct alg *a)
{
	if (a->last) {
		stream_result_done(&a->last->dir[0], NULL);
		stream_result_done(&a->last->dir[1], NULL);
		a->last = NULL;
	}
	a->pktbuf_used = 0;
}

static void flush_dir(struct alg *a, struct session *s, int dir, void (*emit)(void *, const struct alg_verdicts *),
		      void *ctx, bool neutralize_partial)
{
	struct stream_result res;
	struct alg_verdicts v = {.dir = dir};

	stream_flush(&s->dir[dir], &res, neutralize_partial ? "XXXX" : NULL, 4);
	s->held_since[dir] = 0;
	if (res.nout == 0)
		return;
	to_verdicts(a, s, dir, &res, NULL, 0, &v);
	emit(ctx, &v);
	stream_result_done(&s->dir[dir], &res);
	a->pktbuf_used = 0;
}

static void mark_armed(void *ctx, const struct pinhole *k)
{
	struct alg *a = ctx;
	keyset_add(&a->armed, k);
}

/*
 * Ask the kernel which pinholes are still armed: a key gone before its
 * timeout was consumed by its data connection.
 */
/* With many pinholes the kernel's list is read less often: the dump grows with them. */
#define ACCOUNT_EVERY_LARGE 10
#define ACCOUNT_LARGE	    1024

static void account_pinholes(struct alg *a, time_t now)
{
	if (a->nholes == 0 || !a->ops->pinholes_armed)
		return;
	if (a->nholes >= ACCOUNT_LARGE && now - a->accounted < ACCOUNT_EVERY_LARGE)
		return;
	a->accounted = now;
	int r = a->ops->pinholes_armed(a->kernel, mark_armed, a);
	struct keynode **armed = a->armed;
	a->armed = NULL;
	if (r < 0 || !armed) {
		keyset_free(armed);
		return;
	}
	for (struct session *s = a->all; s; s = s->next_all)
		for (unsigned i = 0; i < s->nholes; i++)
			s->holes[i].seen = keyset_find(armed, &s->holes[i].p) != NULL;
	keyset_free(armed);
	for (struct session *s = a->all; s; s = s->next_all)
		for (unsigned i = 0; i < s->nholes;) {
			struct hole *h = &s->holes[i];
			if (h->expires <= now || !h->seen) {
				/* A used pinhole's data connection removed both of its entries. */
				if (h->expires <= now)
					a->ctr.pinholes_expired++;
				else
					a->ctr.pinholes_used++;
				hole_forget(a, s, i);
			} else {
				i++;
			}
		}
}

void alg_tick(struct alg *a, time_t now, void (*emit)(void *ctx, const struct alg_verdicts *v), void *ctx)
{
	a->now = now;
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
				log_msg(LOG_LVL_INFO, "session=%llu event=hold-timeout effect=\"%s\"",
					(unsigned long long)s->id,
					client ? "released with its verb neutralized" : "released unmodified");
				if (client)
					count_refusal(a, "PORT-split-too-fine");
				s->dir[d].line_long = true;
				flush_dir(a, s, d, emit, ctx, client);
			}
		for (unsigned i = 0; i < s->nholes;)
			if (s->holes[i].expires <= now) {
				a->ctr.pinholes_expired++;
				hole_forget(a, s, i);
			} else {
				i++;
			}
		bool idle = now - s->last_seen > IDLE_TIMEOUT;
		bool closed = s->closing && now - s->closed_at > CLOSED_LINGER;
		if ((idle || closed) && !s->held_since[0] && !s->held_since[1])
			session_free(a, s);
	}
}

void alg_shutdown(struct alg *a, void (*emit)(void *ctx, const struct alg_verdicts *v), void *ctx)
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
	keyset_free(a->live);
	keyset_free(a->armed);
	free(a->pktbuf);
	free(a);
}

static void put_endpoint(FILE *f, int family, const uint8_t *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN];
	addr_str(family, addr, a, sizeof(a));
	if (family == AF_INET6)
		fprintf(f, "[%s]:%u", a, port);
	else
		fprintf(f, "%s:%u", a, port);
}

static void put_json_endpoint(FILE *f, const char *key, int family, const uint8_t *addr, uint16_t port)
{
	fprintf(f, "\"%s\":\"", key);
	put_endpoint(f, family, addr, port);
	fputc('"', f);
}

/* The workers' counters added up; refusal reasons merged by name. */
static void sum_counters(struct alg *const *v, unsigned nv, struct alg_counters *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned w = 0; w < nv; w++) {
		const struct alg_counters *c = &v[w]->ctr;
		sum->packets += c->packets;
		sum->sessions += c->sessions;
		sum->rewrites += c->rewrites;
		sum->pinholes += c->pinholes;
		sum->pinholes_used += c->pinholes_used;
		sum->pinholes_expired += c->pinholes_expired;
		sum->pinholes_closed += c->pinholes_closed;
		sum->refused += c->refused;
		sum->dropped += c->dropped;
		sum->errors += c->errors;
		for (unsigned i = 0; i < ALG_REASONS_MAX && c->refusals[i].reason; i++)
			for (unsigned j = 0; j < ALG_REASONS_MAX; j++) {
				if (!sum->refusals[j].reason)
					sum->refusals[j].reason = c->refusals[i].reason;
				if (strcmp(sum->refusals[j].reason, c->refusals[i].reason) == 0) {
					sum->refusals[j].count += c->refusals[i].count;
					break;
				}
			}
	}
}

char *alg_status(struct alg *const *v, unsigned nv, time_t now, bool json, const char *version, const char *queue_path,
		 const char *extra_json, const char *extra_text)
{
	char *buf = NULL;
	size_t len = 0;
	if (nv == 0)
		return NULL;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	const struct alg *a = v[0];
	struct alg_counters sum;
	sum_counters(v, nv, &sum);
	const struct alg_counters *c = &sum;
	unsigned nsessions = 0, nholes = 0;
	for (unsigned w = 0; w < nv; w++) {
		nsessions += v[w]->nsessions;
		nholes += v[w]->nholes;
	}
	unsigned last_queue = a->cfg.queue + 2 * nv - 1;
	if (json) {
		fprintf(f, "{\"version\":\"%s\",\"uptime\":%lld,\"queue_path\":\"%s\",\"table\":\"%s\",", version,
			(long long)(now - a->started), queue_path, a->cfg.table);
		fprintf(f, "\"workers\":%u,\"queues\":[", nv);
		for (unsigned q = a->cfg.queue; q <= last_queue; q++)
			fprintf(f, "%s%u", q == a->cfg.queue ? "" : ",", q);
		fprintf(f, "],\"max_sessions\":%u,", a->cfg.max_sessions);
		fprintf(f, "\"pinholes_armed\":%u,\"max_pinholes\":%u,\"max_pinholes_per_client\":%u,", nholes,
			a->cfg.max_pinholes, a->cfg.max_pinholes_per_client);
		fprintf(f,
			"\"counters\":{\"packets\":%llu,\"sessions\":%llu,\"rewrites\":%llu,"
			"\"pinholes_opened\":%llu,\"pinholes_used\":%llu,\"pinholes_expired\":%llu,"
			"\"pinholes_closed\":%llu,\"refused\":%llu,\"dropped\":%llu,\"errors\":%llu,\"refused_by_"
			"reason\":{",
			(unsigned long long)c->packets, (unsigned long long)c->sessions,
			(unsigned long long)c->rewrites, (unsigned long long)c->pinholes,
			(unsigned long long)c->pinholes_used, (unsigned long long)c->pinholes_expired,
			(unsigned long long)c->pinholes_closed, (unsigned long long)c->refused,
			(unsigned long long)c->dropped, (unsigned long long)c->errors);
		for (unsigned i = 0; i < ALG_REASONS_MAX && c->refusals[i].reason; i++)
			fprintf(f, "%s\"%s\":%llu", i ? "," : "", c->refusals[i].reason,
				(unsigned long long)c->refusals[i].count);
		fprintf(f, "}},\"per_worker\":[");
		for (unsigned w = 0; w < nv; w++)
			fprintf(f, "%s{\"sessions\":%u,\"sessions_opened\":%llu,\"packets\":%llu}", w ? "," : "",
				v[w]->nsessions, (unsigned long long)v[w]->ctr.sessions,
				(unsigned long long)v[w]->ctr.packets);
		fprintf(f, "],");
		if (extra_json)
			fprintf(f, "%s,", extra_json);
		fprintf(f, "\"sessions\":[");
		bool first = true;
		for (unsigned w = 0; w < nv; w++)
			for (struct session *s = v[w]->all; s; s = s->next_all) {
				fprintf(f, "%s{\"id\":%llu,\"worker\":%u,", first ? "" : ",", (unsigned long long)s->id,
					v[w]->worker);
				first = false;
				put_json_endpoint(f, "client", s->orig.family, s->orig.saddr, s->orig.sport);
				fputc(',', f);
				put_json_endpoint(f, "public", s->orig.family, s->orig.daddr, s->orig.dport);
				if (s->have_reply) {
					fputc(',', f);
					put_json_endpoint(f, "server", s->reply.family, s->reply.saddr, s->reply.sport);
				}
				fprintf(f,
					",\"state\":\"%s\",\"nat\":\"%s\",\"rewrites\":%llu,\"packets\":%llu,"
					"\"seq_offset\":{\"client\":%d,\"server\":%d},\"pinholes\":[",
					s->closing	   ? "closing"
					: s->dir[0].opaque ? "encrypted"
							   : "open",
					s->dnat	  ? (s->snat ? "dnat+snat" : "dnat")
					: s->snat ? "snat"
						  : "routed",
					(unsigned long long)s->rewrites, (unsigned long long)s->packets,
					s->dir[0].off_after, s->dir[1].off_after);
				for (unsigned i = 0; i < s->nholes; i++) {
					const struct pinhole *p = &s->holes[i].p;
					char from[INET6_ADDRSTRLEN];
					fprintf(f, "%s{\"from\":\"%s\",", i ? "," : "",
						addr_str(p->family, p->client, from, sizeof(from)));
					put_json_endpoint(f, "public", p->family, p->local, p->port);
					fputc(',', f);
					put_json_endpoint(f, "to", p->family, p->target, p->target_port);
					fprintf(f, ",\"expires_in\":%lld}", (long long)(s->holes[i].expires - now));
				}
				fprintf(f, "]}");
			}
		fprintf(f, "]}\n");
	} else {
		fprintf(f, "ftp-alg %s, up %llds, %u worker%s, queues %u-%u (%s), table inet %s\n", version,
			(long long)(now - a->started), nv, nv == 1 ? "" : "s", a->cfg.queue, last_queue, queue_path,
			a->cfg.table);
		fprintf(f, "sessions: %u (limit %u, %u per client)\n", nsessions, a->cfg.max_sessions,
			a->cfg.max_sessions_per_client);
		fprintf(f, "pinholes armed: %u (limit %u, %u per client)\n", nholes, a->cfg.max_pinholes,
			a->cfg.max_pinholes_per_client);
		for (unsigned w = 0; w < nv; w++)
			for (struct session *s = v[w]->all; s; s = s->next_all) {
				fprintf(f, "  #%llu ", (unsigned long long)s->id);
				put_endpoint(f, s->orig.family, s->orig.saddr, s->orig.sport);
				fputs(" -> ", f);
				put_endpoint(f, s->orig.family, s->orig.daddr, s->orig.dport);
				if (s->have_reply) {
					fputs(" (server ", f);
					put_endpoint(f, s->reply.family, s->reply.saddr, s->reply.sport);
					fputc(')', f);
				}
				fprintf(f, " %s, %llu rewrites, offsets client %+d server %+d\n",
					s->closing	   ? "closing"
					: s->dir[0].opaque ? "encrypted"
							   : "open",
					(unsigned long long)s->rewrites, s->dir[0].off_after, s->dir[1].off_after);
				for (unsigned i = 0; i < s->nholes; i++) {
					const struct pinhole *p = &s->holes[i].p;
					char from[INET6_ADDRSTRLEN];
					fputs("      pinhole ", f);
					put_endpoint(f, p->family, p->local, p->port);
					fputs(" -> ", f);
					put_endpoint(f, p->family, p->target, p->target_port);
					fprintf(f, " for %s, %llds left\n",
						addr_str(p->family, p->client, from, sizeof(from)),
						(long long)(s->holes[i].expires - now));
				}
			}
		fprintf(f,
			"counters: %llu packets, %llu sessions, %llu rewrites, pinholes %llu opened / %llu used / "
			"%llu expired / %llu closed with their session, %llu refused",
			(unsigned long long)c->packets, (unsigned long long)c->sessions,
			(unsigned long long)c->rewrites, (unsigned long long)c->pinholes,
			(unsigned long long)c->pinholes_used, (unsigned long long)c->pinholes_expired,
			(unsigned long long)c->pinholes_closed, (unsigned long long)c->refused);
		for (unsigned i = 0; i < ALG_REASONS_MAX && c->refusals[i].reason; i++)
			fprintf(f, "%s%s %llu", i ? ", " : " (", c->refusals[i].reason,
				(unsigned long long)c->refusals[i].count);
		fprintf(f, "%s, %llu dropped, %llu errors\n", c->refusals[0].reason ? ")" : "",
			(unsigned long long)c->dropped, (unsigned long long)c->errors);
		if (extra_text)
			fputs(extra_text, f);
	}
	fclose(f);
	return buf;
}
