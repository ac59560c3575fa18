/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * fuzz_session's model of a session's two peers and the kernel: what each
 * receiver has got, what was announced, which pinholes were armed, and the
 * invariants checked against them (session_model.c).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "alg/session.h"
#include "tests/common/fake_kernel.h"

#define LOG_MAX	 (1u << 16) /* bytes of one direction the model follows */
#define SEG_MAX	 1400
#define BUF_MAX	 (1u << 16)
#define HOLE_MAX 512
#define PORT_MAX 4096

static const uint8_t FOREIGN[4] = {198, 51, 100, 66};

struct dirmodel {
	/* The sender. */
	uint32_t isn, next; /* next new sequence number */
	uint8_t buf[BUF_MAX];
	size_t nbuf;
	uint8_t first[LOG_MAX], last[LOG_MAX]; /* bytes from isn + 1: as first sent, as last sent */
	size_t hi;			       /* bytes [0, hi) were sent */
	/* The receiver, in its own (adjusted) sequence space from rbase. */
	bool based;
	uint32_t rbase;
	uint8_t rbuf[LOG_MAX];
	uint8_t rhave[LOG_MAX];
	uint8_t rflag[LOG_MAX]; /* RF_*: how each byte was released, for naming a failure's class */
	size_t rhi;		/* highest position received + 1 */
	size_t rcont;		/* first position not received */
	size_t rline;		/* start of the next line not yet checked */
	bool mid_line;		/* joined without a SYN: the first bytes may be the end of a line */
	size_t opaque_at;
	size_t sess_from;   /* the first position the current session released (LOG_MAX: none yet) */
	bool data_queued;   /* data went into the queue since the connection began: a later SYN does not start it */
	bool adopt_open;    /* in an adopted session's first line, which it never parses */
	size_t exempt_b_at; /* lines from here need not pass (b): the stream is TLS */
};

enum { RF_OPAQUE = 1, RF_FLUSH = 2, RF_ADOPTED = 4, RF_OLD = 8 };

struct pkt_rec {
	int dir;
	size_t off, len;
	bool verdict;
};

struct hole_rec {
	struct pinhole p;
	time_t at;
	uint64_t session; /* the ALG's session count when it was armed */
	bool gone;
};

struct model {
	struct fake_kernel k;
	struct alg *a;
	struct alg_config cfg;
	uint16_t floor;
	uint8_t client[4], server[4], cli_seen[4]; /* client, server, and the client as the server sees it */
	uint16_t cport, cport_seen;
	uint8_t dst[4]; /* the client's destination */
	struct dirmodel d[2];
	uint8_t *arena;
	size_t arena_len, arena_cap;
	struct pkt_rec *pk;
	size_t npk, pk_cap;
	struct hole_rec holes[HOLE_MAX];
	unsigned nholes;
	uint16_t passive_ports[PORT_MAX], active_ports[PORT_MAX];
	unsigned npassive, nactive;
	time_t now;
	uint64_t sessions;
	bool client_syn_op;
	bool flushing; /* in alg_tick or alg_shutdown */
	bool adopted;  /* the current session began without the client's SYN: the ALG forgot the one before */
	uint64_t not_ftp;
};

extern struct model *m;

extern const char *skip_list;
extern bool trace;

void scan_sent(int dir, const uint8_t *view, size_t from, size_t to);
void send_pkt(int dir, uint32_t seq, uint8_t flags, const uint8_t *payload, size_t plen);
/* A violated invariant: abort, unless FUZZ_SESSION_SKIP names its class. */
__attribute__((format(printf, 3, 4))) void fail(const char *inv, const char *cls, const char *fmt, ...);
/* The fake kernel's hook: every pinhole added or deleted, checked against what was announced. */
void on_pinhole(void *ctx, int what, const struct pinhole *p);
/* alg_packet's emit: each verdict's packet placed at its receiver, checked. */
void emit(void *ctx, const struct alg_verdicts *v);
