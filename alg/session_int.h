/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * What the files of the session layer share: session.c (the session table
 * and packet path), policy.c (the FTP policy), verdict.c (verdicts and
 * rebuilt packets), status.c (status rendering) and, through holes.h, the
 * pinhole book.
 */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "holes.h"
#include "pkt.h"
#include "session.h"
#include "stream.h"

#define HASH_BUCKETS 4096
#define PENDING_MAX  32
#define SESSION_POOL 64

/* Everything of one client address: the per-client limits count here. */
struct peer {
	int family;
	uint8_t addr[16];
	unsigned nsessions;
	unsigned nclosed; /* of those, closed (they no longer count against MaxSessionsPerClient) */
	unsigned nholes;
	unsigned nheld;	  /* segments its sessions hold */
	time_t rl_second; /* its log lines this second, for the per-client gate */
	unsigned rl_count;
	struct peer *next;
	/* Without sessions but with retired pinholes still in the kernel: kept until they are gone. */
	bool orphan;
	struct peer *next_orphan;
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
	bool seqadj_unasked; /* NATed and seen from its SYN: seqadj is all but certain, asked only when needed */
	bool from_syn;	     /* seen from the client's SYN, so the expectation rule gave it a seqadj extension */
	/*
	 * Adopted or rejoined (takeover): the next segment in each direction
	 * begins a line, and after a rejoin the offsets are read again first.
	 */
	bool join_at_start;
	bool join_first_line; /* the next complete client line is the first after a join */
	bool reread_adj;
	bool has_ct_id; /* and ct_id is the id of the conntrack this session follows */
	uint32_t ct_id;
	struct stream dir[2];
	time_t last_seen;
	time_t held_since[2];

	bool greeted;
	bool client_spoke; /* the client's first line has been seen */
	bool not_ftp;	   /* not FTP (HTTP, say): only PORT/EPRT/LPRT verbs are neutralized */
	bool logged_in;	   /* a 230/232 answered USER, PASS or ACCT */
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

	struct holeset holes;
	uint64_t rewrites;
	uint64_t packets;
	bool closing; /* a FIN or RST the endpoint takes: its pinholes are retired */
	time_t closed_at;
	time_t checked_at; /* when alg_tick last asked whether its conntrack is gone */
	bool fin_taken[2]; /* a FIN exactly in order, per direction */
	bool released;	   /* over for both ends: out of the session limits, on the closed list */

	struct session *next_orig;
	struct session *next_reply;
	struct session *next_all;
	struct session *prev_all;
	struct session *next_closed, *prev_closed; /* closed ones, oldest first */
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
	/*
	 * Of those, closed: kept until their conntrack goes (TIME_WAIT, two
	 * minutes) for stray segments, but not counted against the session
	 * limits; the oldest gives way when the table is full.
	 */
	unsigned nclosed;
	struct session *closed_head, *closed_tail;
	struct peer *peers[HASH_BUCKETS];
	struct peer *orphans;
	unsigned nheld; /* segments all sessions hold */
	struct holebook book;
	uint64_t next_id;
	unsigned worker, workers; /* this one's index, and how many share the global limits */
	struct alg_counters ctr;
	uint8_t *pktbuf;
	size_t pktbuf_cap;
	size_t pktbuf_used;
	time_t now;
	time_t started;
	/* Refusal logs: at most RL_PER_SECOND a second, the rest counted. */
	time_t rl_second;
	unsigned rl_count;
	unsigned long rl_suppressed;
	/* Ended sessions kept with their stream buffers for the next ones: no heap churn per session. */
	struct session *pool;
	unsigned npool;
};

/* session.c */
const char *addr_str(int family, const uint8_t *a, char *buf, size_t len);
void count_refusal(struct alg *a, const char *reason);
/* Refusal logs are capped per second so a flood cannot fill the journal; false: do not log. */
/*
 * May a log line that a peer can cause go out now? At most RL_PER_SECOND a
 * second in all and RL_PER_CLIENT for one client address (s's, if s is not
 * NULL); the rest are counted and reported once a second, by alg_tick too.
 */
bool log_gate(struct alg *a, const struct session *s);
/* Report the log lines the gate held back, once their second is over. */
void log_gate_report(struct alg *a);
/*
 * Whether the kernel adjusts sequence numbers for s, so a rewrite may change
 * a line's length: asked of the kernel the first time it matters.
 */
bool session_seqadj_ok(struct session *s);

/* A stream of s took (n > 0) or gave up held segments: the per-client and global counts follow. */
void count_held(struct alg *a, struct session *s, int n);

/* verdict.c */
void add_verdict(struct alg_verdicts *v, uint32_t id, bool accept, const uint8_t *data, size_t len);
/* Turn a stream result into queue verdicts, rebuilding modified packets. */
void to_verdicts(struct alg *a, struct session *s, int dir, const struct stream_result *res, const uint8_t *cur_pkt,
		 size_t cur_len, bool cur_urgent, struct alg_verdicts *v);
/* A SYN's verdict, its MSS lowered by what rewrites may add. */
void syn_verdict(struct alg *a, uint32_t id, const uint8_t *pkt, size_t len, const struct pkt_info *pi,
		 struct alg_verdicts *v);
/* Release what direction dir of s holds, with a partial line's verb neutralized if asked. */
void flush_dir(struct alg *a, struct session *s, int dir, alg_emit_fn emit, void *ctx, bool neutralize_partial);

/* policy.c: the FTP policy the streams of a session call for each line. */
extern const struct stream_ops policy_stream_ops;

/* session.c's table and lifecycle, for packet.c's packet path and timers. */
struct session *find_orig(struct alg *a, const struct flow *f);
struct session *find_reply(struct alg *a, const struct flow *f);
bool server_full(struct alg *a, const struct flow *orig);
void set_hold_cap(struct alg *a, struct session *s, int dir);
struct session *session_new(struct alg *a, const struct flow *orig, const char **refuse);
void session_free(struct alg *a, struct session *s);
/*
 * s is over for both ends (both FINs in order, an in-order RST, or
 * conntrack's word): it leaves the session limits and joins the closed list.
 */
void session_leave_limits(struct alg *a, struct session *s);

/* Closed sessions wait for their conntrack's TIME_WAIT: not followed, nor counted in the limits. */
static inline unsigned open_sessions(const struct alg *a)
{
	return a->nsessions - a->nclosed;
}
/* Free the clients kept only for their retired pinholes, once those are gone (each tick). */
void peers_reap(struct alg *a);
void log_session_start(struct session *s, const char *how);
/* Learn the reply tuple and the sequence offsets from conntrack. */
void learn_from_ct(struct alg *a, struct session *s, const struct ct_info *ct);
