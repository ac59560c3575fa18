/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kernel.h"
#include "session.h"

/*
 * The pinhole book of one worker: which pinholes are armed, by which
 * session, under which limits, and when they expire or are used. It owns
 * the kernel's pinhole calls and knows nothing of sessions: a session hands
 * in its own list (struct holeset).
 */

struct hole {
	struct pinhole p;
	time_t expires;
	bool seen; /* still armed in the kernel at the last check */
};

/* One session's armed pinholes, oldest first. */
struct holeset {
	struct hole *v;
	unsigned n;
	unsigned cap;	  /* MaxPinholesPerSession when the session began; a reload does not resize */
	unsigned *client; /* the count of the client's armed pinholes, shared by its sessions */
};

struct keynode;

struct holebook {
	const struct alg_kernel_ops *ops;
	void *kernel;
	struct alg_counters *ctr; /* pinholes opened, used, expired; kernel errors */
	unsigned max;		  /* this worker's share of MaxPinholes */
	unsigned max_per_client;
	unsigned n;		/* armed pinholes of all sessions */
	time_t accounted;	/* when the kernel's list of armed pinholes was last read */
	struct keynode **live;	/* their keys */
	struct keynode **armed; /* keys the kernel still had at the last check (built per tick) */
	uint16_t next_passive;
};

void holebook_free(struct holebook *b);

int holeset_init(struct holeset *hs, unsigned cap, unsigned *client);
void holeset_free(struct holeset *hs);

/* Why a new pinhole in hs would break a limit, or NULL. A full set replaces its oldest. */
const char *holes_limit(const struct holebook *b, const struct holeset *hs);

/*
 * Give p a public port no armed pinhole with its client and local address
 * uses: from lo..hi in turn if lo is set, else p->port or the next free one
 * above it, never target_port itself if remap. -EADDRINUSE if none is free.
 */
int holes_choose_port(struct holebook *b, struct pinhole *p, uint16_t lo, uint16_t hi, bool remap);

/*
 * Arm p in the kernel and the books. A full set gives up its oldest in the
 * same kernel change. Returns 0 or -errno (counted as an error).
 */
int holes_arm(struct holebook *b, struct holeset *hs, const struct pinhole *p, time_t now);

/* Remove every pinhole of hs, from the kernel where still armed. */
void holes_remove_all(struct holebook *b, struct holeset *hs, time_t now);

/* Forget the pinholes of hs whose time has passed. */
void holes_expire(struct holebook *b, struct holeset *hs, time_t now);

/*
 * Which pinholes their data connection has used: holes_account_begin reads
 * the kernel's list of armed keys (at most every few seconds when there are
 * many) and returns true if it did; then holes_account for each session's
 * set, and holes_account_end.
 */
bool holes_account_begin(struct holebook *b, time_t now);
void holes_account(struct holebook *b, struct holeset *hs, time_t now);
void holes_account_end(struct holebook *b);
