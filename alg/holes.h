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
 *
 * The public keys (client, local address, port) are one set for the whole
 * gateway (struct holekeys), shared by the workers' books under a mutex: a
 * key is taken from the moment a line is rewritten to name it until its
 * pinhole is gone, so no two announcements anywhere get the same one.
 */

struct holekeys;

/* A key set for books to share; a book without one gets its own. NULL if out of memory. */
struct holekeys *holekeys_new(void);
void holekeys_free(struct holekeys *k);

struct hole {
	struct pinhole p;
	time_t expires;
	bool seen;	  /* still armed in the kernel at the last check */
	unsigned *client; /* retired: the client's count it still takes part in */
};

/*
 * One session's armed pinholes, oldest first, and the ones chosen for a line
 * already rewritten but not yet armed (reserved: their keys are taken).
 */
struct holeset {
	struct hole *v;
	unsigned n;
	struct hole *resv;
	unsigned nresv;
	unsigned cap;	  /* MaxPinholesPerSession (per direction) when the session began; a reload does not resize */
	unsigned *client; /* the count of the client's armed pinholes, shared by its sessions */
	const struct flow *ctl; /* the control connection: its conntrack's labels record the newest pinhole */
};

struct keynode;

struct holebook {
	const struct alg_kernel_ops *ops;
	void *kernel;
	struct alg_counters *ctr; /* pinholes opened, used, expired; kernel errors */
	unsigned max;		  /* this worker's share of MaxPinholes */
	unsigned max_per_client;
	bool record;		/* HighAvailability: each session's newest pinhole goes into its conntrack's labels */
	unsigned n;		/* armed pinholes of all sessions */
	time_t accounted;	/* when the kernel's list of armed pinholes was last read */
	struct holekeys *keys;	/* the gateway's keys, armed or reserved */
	bool own_keys;		/* keys is this book's own, freed with it */
	struct keynode **armed; /* keys the kernel still had at the last check (built per tick) */
	uint16_t next_passive;
	struct hole *retiring; /* removed with their session, to leave the kernel at the next tick */
	unsigned nretiring, capretiring;
};

/* Share k (before the book is used); without it the book makes its own at first use. */
void holebook_share(struct holebook *b, struct holekeys *k);
void holebook_free(struct holebook *b);

int holeset_init(struct holeset *hs, unsigned cap, unsigned *client);
void holeset_free(struct holeset *hs);

/*
 * Why a new pinhole of this direction (active: PORT/EPRT) in hs would break
 * a limit, or NULL. A set full in that direction replaces its oldest.
 */
const char *holes_limit(const struct holebook *b, const struct holeset *hs, bool active);

/*
 * Give p a public port no pinhole of the gateway uses or has reserved with
 * its client and local address: from lo..hi in turn if lo is set, else
 * p->port or the next free one above it, never target_port itself if remap.
 * The key is reserved for hs until holes_arm or holes_release, the session's
 * end, or p's timeout; a session holds at most cap reservations per
 * direction, a newer one replacing the oldest. -EADDRINUSE if none is free.
 */
int holes_choose_port(struct holebook *b, struct holeset *hs, struct pinhole *p, uint16_t lo, uint16_t hi, bool remap,
		      time_t now);

/* Give up the reservation of p (its line was not rewritten after all). */
void holes_release(struct holebook *b, struct holeset *hs, const struct pinhole *p);

/*
 * Arm the reserved p in the kernel and the books. A set full in p's
 * direction gives up its oldest in the same kernel change. The limits are
 * checked again here. Returns 0 or -errno: -ESTALE if the reservation was
 * replaced by a newer announcement or timed out, -ENOSPC over MaxPinholes or
 * MaxPinholesPerClient (counted as a refusal), -EEXIST if the kernel already
 * has the key (then the key stays taken for p's timeout: choose again), else
 * a kernel error (counted). The reservation is gone either way.
 */
int holes_arm(struct holebook *b, struct holeset *hs, const struct pinhole *p, time_t now);

/* Remove every pinhole of hs, from the kernel where still armed. */
void holes_remove_all(struct holebook *b, struct holeset *hs, time_t now);
/*
 * The same for a session that ended: its pinholes leave the session now and
 * the kernel at the next tick (holes_retired), all in one change. Until
 * then their keys stay taken and they still count against MaxPinholes and
 * their client's MaxPinholesPerClient (*hs->client must outlive them: its
 * owner keeps it while it is not zero).
 */
void holes_retire_all(struct holebook *b, struct holeset *hs, time_t now);
/* After holes_account (the kernel's list, if read, tells which were used): remove the retired pinholes. */
void holes_retired(struct holebook *b, time_t now);
/* Forget the retired pinholes without asking the kernel (the daemon's end: its table goes with it). */
void holes_drop_retired(struct holebook *b);

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
