/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The stream unit tests' simulation: a fake policy (227 rewritten to an
 * address, PORT neutralized if asked) and a receiver that places released
 * bytes where the kernel's seqadj puts them, counting conflicting copies.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alg/stream.h"

#define HDR 4		/* fake packet header in front of each payload */
#define ISN 4000000000u /* wraps during the tests */

struct fake {
	uint8_t to_addr[4];
	int lines;
	int rewrites;
	size_t extra; /* bytes each rewrite adds on top, to test the growth cap */
	bool port_x;  /* PORT lines are neutralized ("XXXX"), as the policy does for a refused one */
};

extern const struct stream_ops sim_ops;

struct rx {
	uint8_t buf[1 << 17];
	bool has[1 << 17];
	size_t end;
	int conflicts;
};

struct pktrec {
	uint32_t seq;
	uint8_t pkt[2048];
	size_t len;
};

struct sim {
	struct stream s;
	struct fake f;
	struct rx rx;
	struct pktrec pk[512]; /* by id */
	uint32_t next_id;
	unsigned drops;
	unsigned modified;
};

void deliver(struct sim *m, const struct stream_result *r, uint32_t cur_id);
void sim_init(struct sim *m, const uint8_t to[4]);
/* Send bytes [off, off+len) of text as one segment; returns the result's hold flag. */
bool sim_send(struct sim *m, const char *text, size_t off, size_t len);
/* As sim_send; lost: what the stream releases is lost on the way to the receiver. */
bool sim_send_to(struct sim *m, const char *text, size_t off, size_t len, bool lost);
void expect_rx(struct sim *m, const char *want);
/* Client-side sim: PORT lines may be rewritten and are neutralized when they leave unparsed. */
struct sim *client_sim(void);
void run_cuts(const char *in, const char *out, const uint8_t to[4], const size_t *cuts, size_t ncuts);

extern const char *const LONG_IN, *const LONG_OUT, *const SHORT_IN, *const SHORT_OUT;
extern const uint8_t LONG_TO[4], SHORT_TO[4];
