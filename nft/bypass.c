/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What never crosses the queue: segments without payload (bare ACKs, and
 * the server's bare SYN-ACK, whose MSS the kernel lowers as the daemon
 * would), and the sets those rules look up. A bare FIN still crosses: one
 * that did not would overtake the data still in the queue before it, and
 * the receiver's dup ACK would make the sender resend that data.
 */
#include "build_int.h"

#include <netinet/in.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_tables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "../alg/pkt.h"
#include "../alg/stream.h"

/* ip length . @th,96,4 @set (ip6 length for IPv6): the segment has no payload. */
static void e_bare(struct nftnl_rule *r, uint8_t nfproto, const char *set)
{
	static const uint8_t doff_mask = 0xf0;
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, nfproto == NFPROTO_IPV4 ? 2 : 4, 2, NFT_REG32_00);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 12, 1, NFT_REG32_01);
	e_bitwise(r, NFT_REG32_01, 1, &doff_mask);
	e_lookup(r, set, NFT_REG32_00, -1);
}

static void e_return(struct nftnl_rule *r)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NFT_RETURN);
	add_expr(r, e);
}

static void rule_pure_ack(struct nft_batch *bt, uint8_t nfproto, const char *set)
{
	static const uint8_t flags_mask = 0x07, zero = 0;
	struct nftnl_rule *r = rule_new(bt, "control");
	e_nfproto(r, nfproto);
	e_l4proto_tcp(r);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);
	e_bitwise(r, NFT_REG_1, 1, &flags_mask);
	e_cmp(r, NFT_REG_1, NFT_CMP_EQ, &zero, 1);
	e_bare(r, nfproto, set);
	e_return(r);
	rule_put(bt, r);
}

/* tcp option maxseg size, read into or written from reg. */
static void e_mss(struct nftnl_rule *r, uint32_t reg, bool write)
{
	struct nftnl_expr *e = nftnl_expr_alloc("exthdr");
	nftnl_expr_set_u32(e, write ? NFTNL_EXPR_EXTHDR_SREG : NFTNL_EXPR_EXTHDR_DREG, reg);
	nftnl_expr_set_u8(e, NFTNL_EXPR_EXTHDR_TYPE, 2); /* TCPOPT_MAXSEG */
	nftnl_expr_set_u32(e, NFTNL_EXPR_EXTHDR_OFFSET, 2);
	nftnl_expr_set_u32(e, NFTNL_EXPR_EXTHDR_LEN, 2);
	nftnl_expr_set_u32(e, NFTNL_EXPR_EXTHDR_OP, NFT_EXTHDR_OP_TCPOPT);
	add_expr(r, e);
}

/*
 * meta nfproto ipv4 meta l4proto tcp ct original proto-dst @ctl_ports ct direction reply
 *   tcp flags & (fin | syn | rst | ack) == syn | ack ip length . @th,96,4 @pure_ack4
 *   tcp option maxseg size set tcp option maxseg size map @mss_clamp return
 * (IPv6: ip6 length) The server's bare SYN-ACK does not cross the queue: the
 * kernel lowers its MSS as the daemon would, so that a client line rewritten
 * longer still fits the server's segments. One without the option, with an
 * MSS the map leaves alone (256 + 64 or less), or with data still crosses.
 */
static void rule_synack(struct nft_batch *bt, uint8_t nfproto, const char *set)
{
	static const uint8_t flags_mask = 0x17, synack = 0x12, reply = IP_CT_DIR_REPLY;
	struct nftnl_rule *r = rule_new(bt, "control");
	e_nfproto(r, nfproto);
	e_l4proto_tcp(r);
	e_ct(r, NFT_CT_PROTO_DST, IP_CT_DIR_ORIGINAL, NFT_REG_1);
	e_lookup(r, NFT_SET_CTL_PORTS, NFT_REG_1, -1);
	e_ct(r, NFT_CT_DIRECTION, -1, NFT_REG_1);
	e_cmp(r, NFT_REG_1, NFT_CMP_EQ, &reply, 1);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1);
	e_bitwise(r, NFT_REG_1, 1, &flags_mask);
	e_cmp(r, NFT_REG_1, NFT_CMP_EQ, &synack, 1);
	e_bare(r, nfproto, set);
	e_mss(r, NFT_REG_1, false);
	e_lookup(r, NFT_MAP_MSS, NFT_REG_1, NFT_REG_1);
	e_mss(r, NFT_REG_1, true);
	e_return(r);
	rule_put(bt, r);
}

/*
 * nft's typeof description of the pure_ack sets, as the nft CLI (1.0.6) stores it
 * in the set's userdata for "typeof ip length . @th,96,8" (and ip6 length): the
 * kernel keeps it for nft alone, which needs it to print the keys as
 * "40 . 0x50" and the set as syntax it reads back. The two differ in one byte,
 * the payload field (0x0c ip length, 0x0d ip6 length). Read back from a set
 * the CLI made, with libnftnl's NFTNL_SET_USERDATA.
 */
static const uint8_t pure_ack4_typeof[] = {
    0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x4c, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x44, 0x00,
    0x1a, 0x00, 0x04, 0x07, 0x00, 0x00, 0x00, 0x01, 0x12, 0x00, 0x04, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x04,
    0x05, 0x00, 0x00, 0x00, 0x04, 0x04, 0x10, 0x00, 0x00, 0x00, 0x01, 0x26, 0x00, 0x04, 0x07, 0x00, 0x00,
    0x00, 0x01, 0x1e, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04,
    0x03, 0x00, 0x00, 0x00, 0x03, 0x04, 0x60, 0x00, 0x00, 0x00, 0x04, 0x04, 0x08, 0x00, 0x00, 0x00,
};
static const uint8_t pure_ack6_typeof[] = {
    0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x03, 0x4c, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x44, 0x00,
    0x1a, 0x00, 0x04, 0x07, 0x00, 0x00, 0x00, 0x01, 0x12, 0x00, 0x04, 0x0d, 0x00, 0x00, 0x00, 0x01, 0x04,
    0x05, 0x00, 0x00, 0x00, 0x04, 0x04, 0x10, 0x00, 0x00, 0x00, 0x01, 0x26, 0x00, 0x04, 0x07, 0x00, 0x00,
    0x00, 0x01, 0x1e, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04,
    0x03, 0x00, 0x00, 0x00, 0x03, 0x04, 0x60, 0x00, 0x00, 0x00, 0x04, 0x04, 0x08, 0x00, 0x00, 0x00,
};
_Static_assert(sizeof(pure_ack4_typeof) == 84 && sizeof(pure_ack6_typeof) == 84, "nft's typeof userdata");

/*
 * map mss_clamp { typeof tcp option maxseg size : tcp option maxseg size; flags interval;
 *   elements = { 321-336 : 257, 337-352 : 273, ..., 9217-65535 : 9153 } }
 * (the last start is 9217, or the nearest step below it)
 * An MSS in a bucket of 16 maps to the bucket's start less 64, so at least
 * 64 less than it (what pkt_clamp_mss takes off, STREAM_GROW_MAX); one of
 * 256 + 64 or less is not in the map and is left alone, as the daemon does.
 */
#define MSS_STEP 16
#define MSS_LAST 9217
/* nft's typeof description of the map, read back as for pure_ack4 below: "nft list" prints it as nft reads it. */
static const uint8_t mss_typeof[] = {
    0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 0x04, 0x02, 0x00, 0x00, 0x00, 0x03, 0x1a, 0x00, 0x04, 0x08, 0x00, 0x00,
    0x00, 0x01, 0x12, 0x01, 0x04, 0x02, 0x00, 0x00, 0x00, 0x02, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x02, 0x00,
    0x00, 0x00, 0x04, 0x1a, 0x00, 0x04, 0x08, 0x00, 0x00, 0x00, 0x01, 0x12, 0x01, 0x04, 0x02, 0x00, 0x00, 0x00, 0x02,
    0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00,
};
_Static_assert(sizeof(mss_typeof) == 74, "nft's typeof userdata");

static void put_mss_map(struct nft_batch *bt)
{
	struct nftnl_set *s = set_new(bt->table, NFT_MAP_MSS);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP | NFT_SET_INTERVAL);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, TYPE_INTEGER);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 2);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, TYPE_INTEGER);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, 2);
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, mss_typeof, sizeof(mss_typeof));
	nftnl_set_set_u32(s, NFTNL_SET_ID, 30);
	put_set(bt, s);
	/*
	 * As nft writes intervals: an end element where each range ends (at the
	 * next one's start, and at 0 before the first), then the range's start
	 * with its value; the last range runs to 65535, with no end.
	 */
	const unsigned first = PKT_MSS_FLOOR + STREAM_GROW_MAX + 1;
	for (unsigned start = first; start <= MSS_LAST; start += MSS_STEP) {
		unsigned lowered = start - STREAM_GROW_MAX, end = start == first ? 0 : start;
		uint8_t ekey[2] = {(uint8_t)(end >> 8), (uint8_t)end};
		uint8_t key[2] = {(uint8_t)(start >> 8), (uint8_t)start};
		uint8_t val[2] = {(uint8_t)(lowered >> 8), (uint8_t)lowered};
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, ekey, sizeof(ekey));
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
		nftnl_set_elem_add(s, e);
		e = nftnl_set_elem_alloc();
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, sizeof(key));
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, val, sizeof(val));
		nftnl_set_elem_add(s, e);
	}
	put_set_elems(bt, s);
	nftnl_set_free(s);
}

void nft_put_bypass_sets(struct nft_batch *bt)
{
	struct nftnl_set *s;

	/*
	 * set pure_ack4 { IP length . TCP data offset of a segment without payload }:
	 * { 40 . 0x50, 44 . 0x60, ..., 80 . 0xf0 }; pure_ack6 with the IPv6
	 * payload length { 20 . 0x50, ... }.
	 */
	for (int i = 0; i < 2; i++) {
		s = set_new(bt->table, i ? NFT_SET_PURE6 : NFT_SET_PURE4);
		/* integer . integer, with nft's description, so nft list prints syntax nft reads back */
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, TYPE_INTEGER << TYPE_BITS | TYPE_INTEGER);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 8);
		nftnl_set_set_data(s, NFTNL_SET_USERDATA, i ? pure_ack6_typeof : pure_ack4_typeof,
				   sizeof(pure_ack4_typeof));
		nftnl_set_set_u32(s, NFTNL_SET_ID, 20 + (uint32_t)i);
		put_set(bt, s);
		for (unsigned doff = 5; doff <= 15; doff++) {
			uint8_t key[8] = {0};
			uint16_t len = (uint16_t)((i ? 0 : 20) + 4 * doff);
			key[0] = (uint8_t)(len >> 8);
			key[1] = (uint8_t)len;
			key[4] = (uint8_t)(doff << 4);
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, sizeof(key));
			nftnl_set_elem_add(s, e);
		}
		put_set_elems(bt, s);
		nftnl_set_free(s);
	}

	put_mss_map(bt);
}

void nft_put_bypass_rules(struct nft_batch *bt, const struct alg_config *cfg)
{
	rule_pure_ack(bt, NFPROTO_IPV4, NFT_SET_PURE4);
	rule_pure_ack(bt, NFPROTO_IPV6, NFT_SET_PURE6);
	if (cfg->queue_synack)
		return;
	rule_synack(bt, NFPROTO_IPV4, NFT_SET_PURE4);
	rule_synack(bt, NFPROTO_IPV6, NFT_SET_PURE6);
}
