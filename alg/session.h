/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../conf/config.h"
#include "ftp.h"
#include "kernel.h"
#include "stream.h"

struct alg_verdict {
	uint32_t id;
	bool accept;
	const uint8_t *data; /* replacement packet or NULL */
	size_t len;
};

#define ALG_VERDICT_MAX (STREAM_HOLD_MAX + 2)

struct alg_verdicts {
	int dir; /* the queue direction all of these belong to */
	unsigned n;
	struct alg_verdict v[ALG_VERDICT_MAX];
};

#define ALG_REASONS_MAX 24

struct alg_counters {
	uint64_t packets;
	uint64_t sessions;
	uint64_t rewrites;
	uint64_t pinholes;	   /* opened */
	uint64_t pinholes_used;	   /* consumed by their data connection */
	uint64_t pinholes_expired; /* timed out unused */
	uint64_t pinholes_closed;  /* removed unused with their session */
	uint64_t refused;
	uint64_t dropped;
	uint64_t errors;
	struct {
		const char *reason;
		uint64_t count;
	} refusals[ALG_REASONS_MAX];
};

struct session;
struct alg;
struct holekeys;

/* Count one refusal under reason (a static string) in c. */
void counters_refusal(struct alg_counters *c, const char *reason);

/*
 * The session layer's clock: seconds of CLOCK_MONOTONIC (plus one, so never
 * 0), for every `now` passed in. Timers and the remaining times status shows
 * are differences on it, unmoved when the wall clock is set.
 */
time_t alg_clock(void);

struct alg *alg_new(const struct alg_config *cfg, const struct alg_kernel_ops *ops, void *kernel);
void alg_free(struct alg *a);
void alg_set_config(struct alg *a, const struct alg_config *cfg);
/* Worker index of count: session ids are striped, global limits shared out. */
void alg_set_worker(struct alg *a, unsigned index, unsigned count);
/*
 * The gateway's pinhole keys, shared by all workers' algs (holes.h), so that
 * no two announcements get the same public key. Before the first packet; the
 * caller frees k after the algs.
 */
void alg_set_keys(struct alg *a, struct holekeys *k);

/*
 * Every function that decides verdicts hands them to emit, once per batch of
 * one queue direction; the verdicts and their packets are valid only during
 * the call.
 */
typedef void (*alg_emit_fn)(void *ctx, const struct alg_verdicts *v);

/*
 * One queued packet of a control connection, seen at prerouting after
 * conntrack and before NAT. dir says which conntrack direction it belongs to.
 * Verdicts for this and any released held packets go to emit, in one batch.
 */
void alg_packet(struct alg *a, int dir, uint32_t id, const uint8_t *pkt, size_t len, time_t now, alg_emit_fn emit,
		void *ctx);

/* Timers: release held segments that waited too long, forget idle sessions. */
void alg_tick(struct alg *a, time_t now, alg_emit_fn emit, void *ctx);

/*
 * The gateway becomes the active one (or stops being it): release what is
 * held, forget sessions whose conntrack is gone, and restart the others'
 * streams at their next segment. Returns the sessions kept.
 */
unsigned alg_takeover(struct alg *a, time_t now, alg_emit_fn emit, void *ctx);

/* Release everything held (shutdown) and remove every pinhole. */
void alg_shutdown(struct alg *a, alg_emit_fn emit, void *ctx);

const struct alg_counters *alg_counters(const struct alg *a);

/*
 * What "ftp-alg status" shows for all workers' states v, as text or JSON;
 * extra_json (a member) and extra_text (lines) are the caller's, or NULL.
 * Returns a malloc'd string.
 */
char *alg_status(struct alg *const *v, unsigned nv, time_t now, bool json, const char *version, const char *queue_path,
		 const char *extra_json, const char *extra_text);
/* The same as Prometheus text exposition format 0.0.4; extra_prom: the caller's metric lines, or NULL. */
char *alg_status_prometheus(struct alg *const *v, unsigned nv, time_t now, const char *version, const char *queue_path,
			    const char *extra_prom);
/* Sessions followed and pinholes armed over all workers. */
void alg_totals(struct alg *const *v, unsigned nv, unsigned *sessions, unsigned *pinholes);
