/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The session unit tests' harness: one control connection through alg_packet
 * over the fake kernel, its packets built as seen at prerouting before NAT.
 */
#include <stddef.h>
#include <stdint.h>

#include "alg/pkt.h"
#include "alg/session.h"
#include "tests/common/fake_kernel.h"

extern const uint8_t CLIENT[4], PUBLIC[4], SERVER[4];
/* A LAN client behind masquerade talking to an outside server. */
extern const uint8_t LAN_CLIENT[4], OUT_SERVER[4], GW[4];

struct conn {
	struct alg *alg;
	struct fake_kernel k;
	uint32_t seq[2];
	uint32_t id;
	struct alg_verdicts v;
	unsigned emits; /* batches of verdicts handed out */
	uint8_t last_out[2048];
	size_t last_out_len;
};

/* One packet of the connection ct in direction dir; returns its length. */
size_t build(const struct ct_info *ct, uint8_t *p, int dir, uint32_t seq, uint8_t flags, const char *payload);
/* alg_packet's emit callback: keeps the last batch and a copy of its last rebuilt packet. */
void keep(void *ctx, const struct alg_verdicts *v);
/* The daemon's one-second tick at time now (the packets are at 1000). */
void tick(struct conn *c, time_t now);
/* Send one packet through alg_packet, keep the last rewritten packet, advance the sequence. */
void send_pkt(struct conn *c, int dir, uint8_t flags, const char *payload);
/* The payload of the last rewritten packet, or "" if nothing was rewritten. */
const char *out_payload(struct conn *c);
/*
 * A fresh connection with no alg yet, whose fake kernel has the seqadj extension and one conntrack
 * entry: client:40000 -> dst:21, answered by server:21 -> reply_dst:40000.
 */
void init_conn(struct conn *c, const uint8_t *client, const uint8_t *dst, const uint8_t *server,
	       const uint8_t *reply_dst);
/* A new alg over c's kernel, then the handshake, the greeting and a login. */
void start_conn(struct conn *c, const struct alg_config *cfg);
/* The same on the alg a (which another conn may own). */
/* The handshake and the 220 greeting on alg a (the client has not spoken yet). */
void greet_on(struct conn *c, struct alg *a);
void start_on(struct conn *c, struct alg *a);
/* CLIENT to PUBLIC, DNATed to SERVER, established before the alg started: the next packets are adopted. */
void adopt_conn(struct conn *c, const struct alg_config *cfg);
/* CLIENT to PUBLIC, DNATed to SERVER, logged in, with the seqadj extension. */
/*
 * Start c's connection on a new daemon mid-stream (adopted: conntrack says it
 * predates the daemon), each direction resynchronized by one line.
 */
void start_adopted(struct conn *c, const struct alg_config *cfg);

void setup_conn(struct conn *c, const struct alg_config *cfg);
/* setup_conn with the default configuration. */
void open_conn(struct conn *c);
/* EPSV answered by 229 with port. */
void epsv(struct conn *c, int port);
/* How often the session layer refused for reason. */
uint64_t refusals_for(struct conn *c, const char *reason);
/* LAN_CLIENT to OUT_SERVER, masqueraded as GW, logged in. */
void setup_active(struct conn *c);
