/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "holes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

void holebook_free(struct holebook *b)
{
	keyset_free(b->live);
	keyset_free(b->armed);
	b->live = b->armed = NULL;
}

int holeset_init(struct holeset *hs, unsigned cap, unsigned *client)
{
	*hs = (struct holeset){.cap = cap, .client = client};
	hs->v = calloc(cap, sizeof(*hs->v));
	return hs->v ? 0 : -ENOMEM;
}

void holeset_free(struct holeset *hs)
{
	free(hs->v);
	hs->v = NULL;
}

/*
 * A pinhole leaves the books (the kernel side is the caller's): its key, the
 * set's slot, the per-client and the global count. Every removal goes
 * through here so that the limits stay exact.
 */
static void forget(struct holebook *b, struct holeset *hs, unsigned i)
{
	keyset_del(b->live, &hs->v[i].p);
	memmove(&hs->v[i], &hs->v[i + 1], (hs->n - i - 1) * sizeof(hs->v[0]));
	hs->n--;
	(*hs->client)--;
	b->n--;
}

const char *holes_limit(const struct holebook *b, const struct holeset *hs)
{
	if (hs->n == hs->cap)
		return NULL;
	if (b->n >= b->max)
		return "max-pinholes";
	if (*hs->client >= b->max_per_client)
		return "client-max-pinholes";
	return NULL;
}

static bool in_use(const struct holebook *b, const struct pinhole *p)
{
	return keyset_find(b->live, p) != NULL;
}

int holes_choose_port(struct holebook *b, struct pinhole *p, uint16_t lo, uint16_t hi, bool remap)
{
	uint16_t target_port = p->target_port;
	unsigned tries = 0;

	if (lo) {
		unsigned span = (unsigned)hi - lo + 1;
		do {
			if (b->next_passive < lo || b->next_passive > hi)
				b->next_passive = lo;
			p->port = b->next_passive++;
		} while (in_use(b, p) && ++tries < span);
		return tries >= span ? -EADDRINUSE : 0;
	}
	if (remap)
		p->port = (uint16_t)(p->port >= 65535 ? 1024 : p->port + 1);
	while ((in_use(b, p) || (remap && p->port == target_port)) && ++tries < 64)
		p->port = (uint16_t)(p->port >= 65535 ? 1024 : p->port + 1);
	return tries >= 64 ? -EADDRINUSE : 0;
}

int holes_arm(struct holebook *b, struct holeset *hs, const struct pinhole *p, time_t now)
{
	/* Bounded per session: the oldest announcement loses its hole, in the same kernel change. */
	struct pinhole oldest;
	bool replace = hs->n == hs->cap;
	if (replace) {
		oldest = hs->v[0].p;
		replace = hs->v[0].expires > now;
		forget(b, hs, 0);
	}
	int r = keyset_add(&b->live, p);
	if (r == 0) {
		r = b->ops->pinhole_add(b->kernel, p, replace ? &oldest : NULL);
		if (r < 0)
			keyset_del(b->live, p);
	}
	if (r < 0) {
		b->ctr->errors++;
		return r;
	}
	hs->v[hs->n++] = (struct hole){.p = *p, .expires = now + (time_t)p->timeout};
	(*hs->client)++;
	b->n++;
	b->ctr->pinholes++;
	return 0;
}

void holes_remove_all(struct holebook *b, struct holeset *hs, time_t now)
{
	for (unsigned i = 0; i < hs->n; i++) {
		if (hs->v[i].expires > now) {
			int r = b->ops->pinhole_del(b->kernel, &hs->v[i].p);
			if (r < 0)
				b->ctr->errors++;
			else if (r == 0)
				b->ctr->pinholes_used++; /* gone before its time: its connection took it */
			else
				b->ctr->pinholes_closed++;
		} else {
			b->ctr->pinholes_expired++;
		}
	}
	while (hs->n)
		forget(b, hs, hs->n - 1);
}

/* Forget the pinholes that expired and, if by_seen, those the kernel no longer had. */
static void sweep(struct holebook *b, struct holeset *hs, time_t now, bool by_seen)
{
	for (unsigned i = 0; i < hs->n;) {
		struct hole *h = &hs->v[i];
		if (h->expires <= now || (by_seen && !h->seen)) {
			/* A used pinhole's data connection removed both of its entries. */
			if (h->expires <= now)
				b->ctr->pinholes_expired++;
			else
				b->ctr->pinholes_used++;
			forget(b, hs, i);
		} else {
			i++;
		}
	}
}

void holes_expire(struct holebook *b, struct holeset *hs, time_t now)
{
	sweep(b, hs, now, false);
}

static void mark_armed(void *ctx, const struct pinhole *k)
{
	struct holebook *b = ctx;
	keyset_add(&b->armed, k);
}

bool holes_account_begin(struct holebook *b, time_t now)
{
	if (b->n == 0 || !b->ops->pinholes_armed)
		return false;
	if (b->n >= ACCOUNT_LARGE && now - b->accounted < ACCOUNT_EVERY_LARGE)
		return false;
	b->accounted = now;
	int r = b->ops->pinholes_armed(b->kernel, mark_armed, b);
	if (r < 0 || !b->armed) {
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
