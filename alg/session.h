/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../conf/config.h"
#include "ftp.h"
#include "stream.h"

enum { DIR_ORIG = 0, DIR_REPLY = 1 };

/* Addresses in network byte order, ports in host byte order. */
struct flow {
	int family;
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint16_t sport;
	uint16_t dport;
};

struct ct_info {
	struct flow orig;
	struct flow reply;
	char helper[16]; /* a kernel conntrack helper attached to this connection, if any */
	bool seqadj_present[2];
	uint32_t corr_pos[2];
	int32_t off_before[2];
	int32_t off_after[2];
};

/*
 * A pinhole: one TCP connection from client to local:port, DNATed to
 * target:target_port, allowed once within timeout seconds.
 */
struct pinhole {
	int family;
	uint8_t client[16];
	uint8_t local[16];
	uint16_t port;
	uint8_t target[16];
	uint16_t target_port;
	uint32_t timeout;
};

/* Everything the session layer asks of the kernel; one implementation each, plus a fake. */
struct alg_kernel_ops {
	int (*ct_get)(void *k, const struct flow *seen, int dir, struct ct_info *out);
	int (*seqadj_set)(void *k, const struct flow *orig, int dir, uint32_t pos, int32_t before, int32_t after);
	/* Adds p and, in the same change, removes replaced (if not NULL). */
	int (*pinhole_add)(void *k, const struct pinhole *p, const struct pinhole *replaced);
	/* Removes p whether or not it was used already; 0 or -errno. */
	int (*pinhole_del)(void *k, const struct pinhole *p);
	/* 1 if addr lies beyond a default route (outside), 0 if not, -errno if unknown. */
	int (*via_default)(void *k, int family, const uint8_t *addr);
	/* Call cb for every pinhole key still armed in the kernel. */
	int (*pinholes_armed)(void *k, void (*cb)(void *ctx, const struct pinhole *p), void *ctx);
};

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
	uint64_t pinholes_closed;  /* removed with their session, used meanwhile or not */
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

struct alg *alg_new(const struct alg_config *cfg, const struct alg_kernel_ops *ops, void *kernel);
void alg_free(struct alg *a);
void alg_set_config(struct alg *a, const struct alg_config *cfg);
/* Worker index of count: session ids are striped, global limits shared out. */
void alg_set_worker(struct alg *a, unsigned index, unsigned count);

/*
 * One queued packet of a control connection, seen at prerouting after
 * conntrack and before NAT. dir says which conntrack direction it belongs to.
 * Verdicts for this and any released held packets go to v; call
 * alg_verdicts_done once they are issued.
 */
void alg_packet(struct alg *a, int dir, uint32_t id, const uint8_t *pkt, size_t len, time_t now,
		struct alg_verdicts *v);
void alg_verdicts_done(struct alg *a);

/* Timers: release held segments that waited too long, forget idle sessions. */
void alg_tick(struct alg *a, time_t now, void (*emit)(void *ctx, const struct alg_verdicts *v), void *ctx);

/* Release everything held (shutdown) and remove every pinhole. */
void alg_shutdown(struct alg *a, void (*emit)(void *ctx, const struct alg_verdicts *v), void *ctx);

const struct alg_counters *alg_counters(const struct alg *a);

/*
 * What "ftp-alg status" shows for all workers' states v, as text or JSON;
 * extra_json (a member) and extra_text (lines) are the caller's, or NULL.
 * Returns a malloc'd string.
 */
char *alg_status(struct alg *const *v, unsigned nv, time_t now, bool json, const char *version, const char *queue_path,
		 const char *extra_json, const char *extra_text);
