/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * What the session layer and the kernel interfaces (ct.c, nft/nft.c,
 * route.c) share: connection tuples, conntrack facts, pinholes, and the
 * table of kernel operations. Nothing here knows about sessions, so no
 * kernel interface depends on the session layer.
 */

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
	bool has_id;	 /* and id is the kernel's id of this conntrack (CTA_ID): another one is another connection */
	uint32_t id;
	bool seen_reply;    /* status SEEN_REPLY: both sides have spoken */
	bool has_tcp_state; /* and tcp_state is conntrack's TCP state (TCP_CONNTRACK_*) */
	uint8_t tcp_state;
	bool seqadj_present[2];
	uint32_t corr_pos[2];
	int32_t off_before[2];
	int32_t off_after[2];
};

/* Bytes of an address of this family in struct flow and struct pinhole. */
static inline size_t flow_addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

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
	bool active; /* for a PORT/EPRT (the server connects back); not part of the kernel's key */
};

/* Everything the session layer asks of the kernel; one implementation each, plus a fake. */
struct alg_kernel_ops {
	int (*ct_get)(void *k, const struct flow *seen, int dir, struct ct_info *out);
	/*
	 * Whether the conntrack ct (as ct_get answered) existed before this daemon
	 * could see its first packet (it was in the dump taken at start, same id),
	 * so its SYN was never ours to see. NULL: none did.
	 */
	bool (*ct_predates)(void *k, const struct ct_info *ct);
	int (*seqadj_set)(void *k, const struct flow *orig, int dir, uint32_t pos, int32_t before, int32_t after);
	/* Adds p and, in the same change, removes replaced (if not NULL). */
	int (*pinhole_add)(void *k, const struct pinhole *p, const struct pinhole *replaced);
	/* Removes p if still armed: 1 if it was, 0 if it had been used or had expired, or -errno. */
	int (*pinhole_del)(void *k, const struct pinhole *p);
	/* 1 if addr lies beyond a default route (outside), 0 if not, -errno if unknown. */
	int (*via_default)(void *k, int family, const uint8_t *addr);
	/* Call cb for every pinhole key still armed in the kernel. */
	int (*pinholes_armed)(void *k, void (*cb)(void *ctx, const struct pinhole *p), void *ctx);
};
