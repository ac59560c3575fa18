/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct daemon;

/* Where a worker's time goes: each kernel call and each packet, counted and timed. */
enum { T_PACKET, T_VERDICT, T_NFT, T_CT, T_ROUTE, T_MAX };

struct op_clock {
	uint64_t n, ns;
};

/*
 * One queue thread: its two queues, its own ctnetlink and rtnetlink sockets,
 * and the sessions the balancing rules send it (all of some clients').
 */
struct worker {
	struct daemon *d;
	unsigned idx;
	pthread_t th;
	bool running;
	/* Held while the worker changes its sessions; status and reload take it to look or change. */
	pthread_mutex_t lock;
	int stop_fd;  /* eventfd: the main thread asks it to finish */
	int timer_fd; /* once a second: timeouts, pinhole accounting */
	struct queue *q;
	struct ct *ct;
	struct route *route;
	struct alg *alg;
	struct op_clock t[T_MAX];
};

/* A worker's kernel sockets and state; logs what failed. */
int worker_open(struct daemon *d, unsigned idx);
void worker_close(struct worker *w);
/* The thread body: packets, the once-a-second tick, and the stop request. */
void *worker_main(void *arg);
void workers_stop(struct daemon *d);
/*
 * ftp-alg takeover: with every worker stopped, sn becomes the snapshot of
 * adoptable conntracks and each worker rejoins its sessions (alg_takeover).
 * Returns the old snapshot for the caller to free; kept: sessions rejoined.
 */
struct ct_snapshot;
struct ct_snapshot *workers_takeover(struct daemon *d, struct ct_snapshot *sn, unsigned *kept);
/* The workers' operation clocks, for status: a JSON member and a text line. Called with their locks held. */
void workers_timing(const struct daemon *d, char *json, size_t jcap, char *text, size_t tcap);
