/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What build.c (the table, its rules) and elements.c (set elements, requests) share. */
#include <stdint.h>

#include "batch.h"

struct nlmsghdr;
struct nftnl_set;
struct nftnl_rule;
struct nftnl_expr;

/* nft's datatype ids, so that "nft list" shows our sets readably. */
#define TYPE_IPADDR	  7
#define TYPE_IP6ADDR	  8
#define TYPE_INTEGER	  4
#define TYPE_INET_SERVICE 13
#define TYPE_BITS	  6
#define KEY_TYPE(a)	  ((((a) << TYPE_BITS | (a)) << TYPE_BITS) | TYPE_INET_SERVICE)

/*
 * The register layout nft itself uses for a concatenation: IPv4 fields in
 * consecutive 32-bit registers from reg 1, IPv6 fields in 128-bit registers.
 */
struct pinhole_layout {
	uint8_t nfproto;
	uint32_t alen, saddr_off, daddr_off;
	uint32_t reg_daddr, reg_port;
	/* Where a pinhole's map lookup puts its target, past the key it still needs. */
	uint32_t reg_target, reg_target_port;
	/* Where a [server] lookup puts its target: the key is no longer needed. */
	uint32_t reg_publish_port;
	const char *set, *map;
};

extern const struct pinhole_layout layout4, layout6;

/* The next message of an open batch, and the step past it once its payload is written. */
struct nlmsghdr *batch_msg(struct nft_batch *bt, uint16_t type, uint16_t flags);
void batch_next(struct nft_batch *bt);
/* The set s, as created (NEWSET), and its elements added (NEWSETELEM), as messages of an open batch. */
void put_set(struct nft_batch *bt, struct nftnl_set *s);
void put_set_elems(struct nft_batch *bt, struct nftnl_set *s);
/* A set of ours, by name, for a set or element message. */
struct nftnl_set *set_new(const char *table, const char *name);

/* Rule expressions (expr.c): each appends to r, reading or writing the registers named. */
void add_expr(struct nftnl_rule *r, struct nftnl_expr *e);
void e_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg);
void e_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len);
void e_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg);
/* dir < 0: no direction */
void e_ct(struct nftnl_rule *r, uint32_t key, int dir, uint32_t dreg);
/* dreg < 0: a set lookup, no map data */
void e_lookup(struct nftnl_rule *r, const char *set, uint32_t sreg, int dreg);
void e_l4proto_tcp(struct nftnl_rule *r);
void e_nfproto(struct nftnl_rule *r, uint8_t proto);
void e_bitwise(struct nftnl_rule *r, uint32_t reg, uint32_t len, const void *mask);
void e_ct_new(struct nftnl_rule *r);
struct nftnl_rule *rule_new(const struct nft_batch *bt, const char *chain);
void rule_put(struct nft_batch *bt, struct nftnl_rule *r);

/* bypass.c: the sets (pure_ack4/6, mss_clamp) and control-chain rules for what never crosses the queue. */
void nft_put_bypass_sets(struct nft_batch *bt);
void nft_put_bypass_rules(struct nft_batch *bt, const struct alg_config *cfg);
