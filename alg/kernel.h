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
	bool has_labels; /* and labels are the conntrack's label bits, byte j bit k = label 8j+k */
	uint8_t labels[16];
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

/*
 * The newest armed pinhole of a control connection, kept in its conntrack's
 * labels so that conntrackd carries it to the peer gateway, which re-arms it
 * on "ftp-alg takeover". Labels 56..127 (bytes 7..15); the administrator
 * keeps labels 0..55. Byte 7: 0x01 a record, 0x02 active (PORT/EPRT); bytes
 * 8-9 the public port, 10-11 the target port, 12-15 when it expires
 * (wall-clock seconds, both gateways run NTP), all big-endian. A record
 * with port 0 says "none": conntrackd does not carry labels cleared to all
 * zeros to the peer (measured), so the record is never cleared.
 */
#define CT_REC_FIRST 7
struct ct_hole_rec {
	bool active;
	uint16_t port;
	uint16_t target_port;
	uint32_t expires;
};

static inline void ct_rec_encode(const struct ct_hole_rec *r, uint8_t labels[16], uint8_t mask[16])
{
	for (int i = 0; i < 16; i++) {
		labels[i] = 0;
		mask[i] = i >= CT_REC_FIRST ? 0xff : 0;
	}
	labels[7] = (uint8_t)(0x01 | (r->active ? 0x02 : 0));
	labels[8] = (uint8_t)(r->port >> 8);
	labels[9] = (uint8_t)r->port;
	labels[10] = (uint8_t)(r->target_port >> 8);
	labels[11] = (uint8_t)r->target_port;
	for (int i = 0; i < 4; i++)
		labels[12 + i] = (uint8_t)(r->expires >> (24 - 8 * i));
}

/* False if labels carry no record (or one no gateway writes: unknown flags, port 0). */
static inline bool ct_rec_decode(const uint8_t labels[16], struct ct_hole_rec *r)
{
	if ((labels[7] & 0x01) == 0 || (labels[7] & ~0x03) != 0)
		return false;
	r->active = (labels[7] & 0x02) != 0;
	r->port = (uint16_t)(labels[8] << 8 | labels[9]);
	r->target_port = (uint16_t)(labels[10] << 8 | labels[11]);
	r->expires = 0;
	for (int i = 0; i < 4; i++)
		r->expires = r->expires << 8 | labels[12 + i];
	return r->port != 0 && r->target_port != 0;
}

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
	/* Set the label bits under mask of the conntrack with this original tuple. NULL: not kept. */
	int (*labels_set)(void *k, const struct flow *orig, const uint8_t labels[16], const uint8_t mask[16]);
	/* Adds p and, in the same change, removes replaced (if not NULL). */
	int (*pinhole_add)(void *k, const struct pinhole *p, const struct pinhole *replaced);
	/* Removes p if still armed: 1 if it was, 0 if it had been used or had expired, or -errno. */
	int (*pinhole_del)(void *k, const struct pinhole *p);
	/*
	 * Removes the n pinholes in one change, whether still armed or not;
	 * -EOPNOTSUPP where it cannot. NULL: not kept.
	 */
	int (*pinholes_destroy)(void *k, const struct pinhole *v, unsigned n);
	/* 1 if addr lies beyond a default route (outside), 0 if not, -errno if unknown. */
	int (*via_default)(void *k, int family, const uint8_t *addr);
	/* Call cb for every pinhole key still armed in the kernel. */
	int (*pinholes_armed)(void *k, void (*cb)(void *ctx, const struct pinhole *p), void *ctx);
};
