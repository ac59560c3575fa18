/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "holes.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

/*
 * Pinhole keys (client, local address, port) in a hash: which are armed or
 * reserved by some session, and which the kernel still has. Keeps the
 * per-PASV and per-tick work flat as sessions grow.
 */
struct keynode {
	struct keynode *next;
	struct pinhole key;
	unsigned count;
	time_t foreign_until; /* the kernel had this key without us (EEXIST): taken until then */
};

struct holekeys {
	pthread_mutex_t lock;
	struct keynode **set;
};

#define KEY_BUCKETS 16384

/* With many pinholes the kernel's list is read less often: the dump grows with them. */
#define ACCOUNT_EVERY_LARGE 10
#define ACCOUNT_LARGE	    1024

static uint32_t key_hash(const struct pinhole *p)
{
	uint32_t h = 2166136261u ^ p->port;
	size_t l = flow_addr_len(p->family);
	for (size_t i = 0; i < l; i++)
		h = (h ^ p->client[i]) * 16777619u;
	for (size_t i = 0; i < l; i++)
		h = (h ^ p->local[i]) * 16777619u;
	return h % KEY_BUCKETS;
}

static bool same_key(const struct pinhole *a, const struct pinhole *b)
{
	size_t l = flow_addr_len(a->family);
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

struct holekeys *holekeys_new(void)
{
	struct holekeys *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	pthread_mutex_init(&k->lock, NULL);
	return k;
}

void holekeys_free(struct holekeys *k)
{
	if (!k)
		return;
	keyset_free(k->set);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void holebook_share(struct holebook *b, struct holekeys *k)
{
	if (b->own_keys)
		holekeys_free(b->keys);
	b->keys = k;
	b->own_keys = false;
}

static struct holekeys *book_keys(struct holebook *b)
{
	if (!b->keys && (b->keys = holekeys_new()) != NULL)
		b->own_keys = true;
	return b->keys;
}

void holebook_free(struct holebook *b)
{
	if (b->own_keys)
		holekeys_free(b->keys);
	b->keys = NULL;
	keyset_free(b->armed);
	b->armed = NULL;
	free(b->retiring);
	b->retiring = NULL;
	b->nretiring = b->capretiring = 0;
}

int holeset_init(struct holeset *hs, unsigned cap, unsigned *client)
{
	/* cap per direction: passive and active pinholes each. */
	*hs = (struct holeset){.cap = cap, .client = client};
	hs->v = calloc(2 * (size_t)cap, sizeof(*hs->v));
	hs->resv = calloc(2 * (size_t)cap, sizeof(*hs->resv));
	if (hs->v && hs->resv)
		return 0;
	holeset_free(hs);
	return -ENOMEM;
}

void holeset_free(struct holeset *hs)
{
	free(hs->v);
	free(hs->resv);
	hs->v = hs->resv = NULL;
}

/* A key leaves the gateway's set: its pinhole or reservation is gone. */
static void key_put(struct holebook *b, const struct pinhole *p)
{
	if (!b->keys)
		return;
	pthread_mutex_lock(&b->keys->lock);
	keyset_del(b->keys->set, p);
	pthread_mutex_unlock(&b->keys->lock);
}

static bool same_hole(const struct pinhole *a, const struct pinhole *b)
{
	return same_key(a, b) && a->active == b->active && a->target_port == b->target_port &&
	       memcmp(a->target, b->target, flow_addr_len(a->family)) == 0;
}

static void drop_resv(struct holebook *b, struct holeset *hs, unsigned i)
{
	key_put(b, &hs->resv[i].p);
	memmove(&hs->resv[i], &hs->resv[i + 1], (hs->nresv - i - 1) * sizeof(hs->resv[0]));
	hs->nresv--;
}

static unsigned count_kind(const struct hole *v, unsigned n, bool active, unsigned *oldest)
{
	unsigned c = 0;
	for (unsigned i = n; i-- > 0;)
		if (v[i].p.active == active) {
			c++;
			*oldest = i;
		}
	return c;
}

/*
 * A pinhole leaves the books (the kernel side is the caller's): its key, the
 * set's slot, the per-client and the global count. Every removal goes
 * through here so that the limits stay exact.
 */
static void forget(struct holebook *b, struct holeset *hs, unsigned i)
{
	key_put(b, &hs->v[i].p);
	memmove(&hs->v[i], &hs->v[i + 1], (hs->n - i - 1) * sizeof(hs->v[0]));
	hs->n--;
	(*hs->client)--;
	b->n--;
}

/* A retired pinhole has left the kernel: its key and its place in the counts go. */
static void forget_retired(struct holebook *b, const struct hole *h)
{
	key_put(b, &h->p);
	(*h->client)--;
	b->n--;
}

static const char *over_limit(const struct holebook *b, const struct holeset *hs)
{
	if (b->n >= b->max)
		return "max-pinholes";
	if (*hs->client >= b->max_per_client)
		return "client-max-pinholes";
	return NULL;
}

const char *holes_limit(const struct holebook *b, const struct holeset *hs, bool active)
{
	unsigned oldest = 0;
	if (count_kind(hs->v, hs->n, active, &oldest) >= hs->cap)
		return NULL;
	return over_limit(b, hs);
}

/* Called with the key set locked. */
static bool taken(struct holekeys *k, const struct pinhole *p, time_t now)
{
	struct keynode *n = keyset_find(k->set, p);
	return n && (n->count > 0 || n->foreign_until > now);
}

static int pick(struct holebook *b, struct holekeys *k, struct pinhole *p, uint16_t lo, uint16_t hi, bool remap,
		time_t now)
{
	uint16_t target_port = p->target_port;
	unsigned tries = 0;

	if (lo) {
		unsigned span = (unsigned)hi - lo + 1;
		do {
			if (b->next_passive < lo || b->next_passive > hi)
				b->next_passive = lo;
			p->port = b->next_passive++;
		} while (taken(k, p, now) && ++tries < span);
		return tries >= span ? -EADDRINUSE : 0;
	}
	if (remap)
		p->port = (uint16_t)(p->port >= 65535 ? 1024 : p->port + 1);
	while ((taken(k, p, now) || (remap && p->port == target_port)) && ++tries < 64)
		p->port = (uint16_t)(p->port >= 65535 ? 1024 : p->port + 1);
	return tries >= 64 ? -EADDRINUSE : 0;
}

int holes_choose_port(struct holebook *b, struct holeset *hs, struct pinhole *p, uint16_t lo, uint16_t hi, bool remap,
		      time_t now)
{
	struct holekeys *k = book_keys(b);
	if (!k)
		return -ENOMEM;
	/* Bounded per session: a newer announcement of a direction replaces the oldest reservation. */
	unsigned oldest = 0;
	if (hs->cap && count_kind(hs->resv, hs->nresv, p->active, &oldest) >= hs->cap)
		drop_resv(b, hs, oldest);
	if (!hs->cap || hs->nresv >= 2 * hs->cap)
		return -EADDRINUSE;
	/* Choice and reservation under one lock: another worker cannot take the same key in between. */
	pthread_mutex_lock(&k->lock);
	int r = pick(b, k, p, lo, hi, remap, now);
	if (r == 0) {
		r = keyset_add(&k->set, p);
		if (r == 0)
			keyset_find(k->set, p)->foreign_until = 0;
	}
	pthread_mutex_unlock(&k->lock);
	if (r == 0)
		hs->resv[hs->nresv++] = (struct hole){.p = *p, .expires = now + (time_t)p->timeout};
	return r;
}

static int find_resv(const struct holeset *hs, const struct pinhole *p)
{
	for (unsigned i = 0; i < hs->nresv; i++)
		if (same_hole(&hs->resv[i].p, p))
			return (int)i;
	return -1;
}

void holes_release(struct holebook *b, struct holeset *hs, const struct pinhole *p)
{
	int i = find_resv(hs, p);
	if (i >= 0)
		drop_resv(b, hs, (unsigned)i);
}

/* The kernel has this key though no session of ours armed it: leave it alone until it times out. */
static void mark_foreign(struct holebook *b, const struct pinhole *p, time_t now)
{
	pthread_mutex_lock(&b->keys->lock);
	if (keyset_add(&b->keys->set, p) == 0) {
		struct keynode *n = keyset_find(b->keys->set, p);
		n->foreign_until = now + (time_t)p->timeout;
		n->count--;
	}
	pthread_mutex_unlock(&b->keys->lock);
}

/*
 * For the peer gateway (kernel.h): the session's newest pinhole, valid for
 * seconds more, or none (p NULL). A failure costs only the failover.
 */
static void record(struct holebook *b, struct holeset *hs, const struct pinhole *p, time_t seconds)
{
	if (!b->record || !hs->ctl || !b->ops->labels_set)
		return;
	uint8_t labels[16], mask[16];
	struct ct_hole_rec rec = {0};
	if (p)
		rec = (struct ct_hole_rec){.active = p->active,
					   .port = p->port,
					   .target_port = p->target_port,
					   .expires = (uint32_t)(time(NULL) + seconds)};
	/* None is a record with port 0, not zeros: conntrackd does not carry labels cleared to nothing. */
	ct_rec_encode(&rec, labels, mask);
	b->ops->labels_set(b->kernel, hs->ctl, labels, mask);
}

int holes_arm(struct holebook *b, struct holeset *hs, const struct pinhole *p, time_t now)
{
	int ri = find_resv(hs, p);
	if (ri < 0 || hs->resv[ri].expires <= now) {
		if (ri >= 0)
			drop_resv(b, hs, (unsigned)ri);
		return -ESTALE;
	}
	/* From here the reservation's key is the pinhole's: it leaves the reservations without a key_put. */
	memmove(&hs->resv[ri], &hs->resv[ri + 1], (hs->nresv - (unsigned)ri - 1) * sizeof(hs->resv[0]));
	hs->nresv--;

	/* Bounded per session and direction: the oldest announcement loses its hole, in the same kernel change. */
	struct pinhole oldest;
	unsigned oi = 0;
	bool full = count_kind(hs->v, hs->n, p->active, &oi) >= hs->cap;
	bool replace = false;
	if (!full) {
		/* The limits may have filled since the line passed (other sessions, other workers' shares). */
		const char *why = over_limit(b, hs);
		if (why) {
			key_put(b, p);
			counters_refusal(b->ctr, why);
			return -ENOSPC;
		}
	} else {
		oldest = hs->v[oi].p;
		replace = hs->v[oi].expires > now;
		forget(b, hs, oi);
	}
	int r = b->ops->pinhole_add(b->kernel, p, replace ? &oldest : NULL);
	if (r < 0) {
		key_put(b, p);
		if (r == -EEXIST)
			mark_foreign(b, p, now);
		else
			b->ctr->errors++;
		return r;
	}
	hs->v[hs->n++] = (struct hole){.p = *p, .expires = now + (time_t)p->timeout};
	record(b, hs, p, (time_t)p->timeout);
	(*hs->client)++;
	b->n++;
	b->ctr->pinholes++;
	return 0;
}

/* p leaves the kernel now: 1 if it was still armed, 0 if used, or -errno; counted either way. */
static int remove_now(struct holebook *b, const struct pinhole *p)
{
	int r = b->ops->pinhole_del(b->kernel, p);
	if (r < 0)
		b->ctr->errors++;
	else if (r == 0)
		b->ctr->pinholes_used++; /* gone before its time: its connection took it */
	else
		b->ctr->pinholes_closed++;
	return r;
}

/* Keep h, with its key and counts, for the next holes_retired; -ENOMEM if there is no room. */
static int retire(struct holebook *b, const struct hole *h, unsigned *client)
{
	if (b->nretiring == b->capretiring) {
		unsigned cap = b->capretiring ? 2 * b->capretiring : 64;
		struct hole *v = realloc(b->retiring, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		b->retiring = v;
		b->capretiring = cap;
	}
	b->retiring[b->nretiring] = *h;
	b->retiring[b->nretiring++].client = client;
	return 0;
}

static void remove_all(struct holebook *b, struct holeset *hs, time_t now, bool defer)
{
	/* The peer gateway must not re-arm what this one removes. */
	if (hs->n)
		record(b, hs, NULL, 0);
	while (hs->n) {
		unsigned i = hs->n - 1;
		const struct hole *h = &hs->v[i];
		if (h->expires <= now) {
			b->ctr->pinholes_expired++;
		} else if (defer && retire(b, h, hs->client) == 0) {
			/* Its key and counts stay until the kernel has let it go. */
			hs->n--;
			continue;
		} else {
			remove_now(b, &h->p);
		}
		forget(b, hs, i);
	}
	while (hs->nresv)
		drop_resv(b, hs, hs->nresv - 1);
}

void holes_remove_all(struct holebook *b, struct holeset *hs, time_t now)
{
	remove_all(b, hs, now, false);
}

void holes_retire_all(struct holebook *b, struct holeset *hs, time_t now)
{
	remove_all(b, hs, now, true);
}

/* Forget the pinholes that expired and, if by_seen, those the kernel no longer had. */
static void sweep(struct holebook *b, struct holeset *hs, time_t now, bool by_seen)
{
	bool newest_used = false;
	for (unsigned i = 0; i < hs->n;) {
		struct hole *h = &hs->v[i];
		if (h->expires <= now || (by_seen && !h->seen)) {
			/* A used pinhole's data connection removed both of its entries. */
			if (h->expires <= now) {
				b->ctr->pinholes_expired++;
			} else {
				b->ctr->pinholes_used++;
				newest_used = newest_used || i == hs->n - 1;
			}
			forget(b, hs, i);
		} else {
			i++;
		}
	}
	/* The record names the newest pinhole: once used, a takeover must not open it again. */
	if (newest_used)
		record(b, hs, hs->n ? &hs->v[hs->n - 1].p : NULL, hs->n ? hs->v[hs->n - 1].expires - now : 0);
}

void holes_expire(struct holebook *b, struct holeset *hs, time_t now)
{
	sweep(b, hs, now, false);
	for (unsigned i = 0; i < hs->nresv;)
		if (hs->resv[i].expires <= now)
			drop_resv(b, hs, i);
		else
			i++;
}

static void mark_armed(void *ctx, const struct pinhole *k)
{
	struct holebook *b = ctx;
	keyset_add(&b->armed, k);
}

bool holes_account_begin(struct holebook *b, time_t now)
{
	if ((b->n == 0 && b->nretiring == 0) || !b->ops->pinholes_armed)
		return false;
	/* Retired pinholes are removed at the next tick, which needs to know which were used. */
	if (b->nretiring == 0 && b->n >= ACCOUNT_LARGE && now - b->accounted < ACCOUNT_EVERY_LARGE)
		return false;
	b->accounted = now;
	/* Allocated first: a kernel with no armed key answers an empty set, and then every pinhole was used. */
	b->armed = calloc(KEY_BUCKETS, sizeof(*b->armed));
	if (!b->armed)
		return false;
	int r = b->ops->pinholes_armed(b->kernel, mark_armed, b);
	if (r < 0) {
		holes_account_end(b);
		return false;
	}
	return true;
}

/* A key gone from the kernel before its timeout was consumed by its data connection. */
void holes_account(struct holebook *b, struct holeset *hs, time_t now)
{
	for (unsigned i = 0; i < hs->n; i++)
		hs->v[i].seen = keyset_find(b->armed, &hs->v[i].p) != NULL;
	sweep(b, hs, now, true);
}

void holes_account_end(struct holebook *b)
{
	keyset_free(b->armed);
	b->armed = NULL;
}

/*
 * The pinholes retired since the last tick: those the kernel's list (if it
 * was read this tick) no longer has were used, those past their time
 * expired, and the rest go in one change. Without the list, or on a kernel
 * without DESTROYSETELEM, each is looked up and removed alone.
 */
void holes_retired(struct holebook *b, time_t now)
{
	unsigned nd = 0;
	for (unsigned i = 0; i < b->nretiring; i++) {
		struct hole *h = &b->retiring[i];
		if (h->expires <= now) {
			b->ctr->pinholes_expired++;
			forget_retired(b, h);
			continue;
		}
		/*
		 * Absent from the kernel's list: used, as far as the list tells. It is
		 * destroyed all the same: a dump read in parts can skip an entry that
		 * another one's removal moved, so the list only decides the counter.
		 */
		h->seen = !b->armed || keyset_find(b->armed, &h->p) != NULL;
		b->retiring[nd++] = *h;
	}
	b->nretiring = nd;
	if (nd == 0)
		return;
	int r = -EOPNOTSUPP;
	struct pinhole *v = b->armed && b->ops->pinholes_destroy ? malloc(nd * sizeof(*v)) : NULL;
	if (v) {
		for (unsigned i = 0; i < nd; i++)
			v[i] = b->retiring[i].p;
		r = b->ops->pinholes_destroy(b->kernel, v, nd);
		free(v);
	}
	if (r == -EOPNOTSUPP) {
		/* One by one, each looked up first; one the kernel would not delete stays for the next tick. */
		unsigned keep = 0;
		for (unsigned i = 0; i < nd; i++)
			if (remove_now(b, &b->retiring[i].p) < 0)
				b->retiring[keep++] = b->retiring[i];
			else
				forget_retired(b, &b->retiring[i]);
		b->nretiring = keep;
		return;
	}
	if (r < 0) {
		/* Kept for the next tick; the kernel times them out meanwhile in any case. */
		b->ctr->errors++;
		return;
	}
	for (unsigned i = 0; i < nd; i++) {
		if (b->retiring[i].seen)
			b->ctr->pinholes_closed++;
		else
			b->ctr->pinholes_used++;
		forget_retired(b, &b->retiring[i]);
	}
	b->nretiring = 0;
}

void holes_drop_retired(struct holebook *b)
{
	for (unsigned i = 0; i < b->nretiring; i++)
		forget_retired(b, &b->retiring[i]);
	b->nretiring = 0;
}
