/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "batch.h"
#include "build_int.h"

#include <netinet/in.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OBJ_SEQADJ4 "seqadj4"
#define OBJ_SEQADJ6 "seqadj6"

/* After conntrack (-200), before DNAT (-100): the tuple is still the one the client sent to. */
#define PRIO_CONTROL -150
/* Before the admin's DNAT rules, so an armed pinhole wins for exactly its client. */
#define PRIO_PINHOLE -110
/* Published servers' control ports, after pinholes and before the admin's DNAT. */
#define PRIO_PUBLISH -105

void nft_batch_begin(struct nft_batch *bt, void *buf, size_t buflen, uint32_t *seq, const char *table,
		     enum nft_queue_path path)
{
	bt->last = NULL;
	bt->seq = seq;
	bt->first_seq = *seq;
	bt->table = table;
	bt->path = path;
	bt->overflow = false;
	bt->b = mnl_nlmsg_batch_start(buf, buflen / 2);
	nftnl_batch_begin(mnl_nlmsg_batch_current(bt->b), (*seq)++);
	mnl_nlmsg_batch_next(bt->b);
}

struct nlmsghdr *batch_msg(struct nft_batch *bt, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh =
	    nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(bt->b), type, NFPROTO_INET, flags, (*bt->seq)++);
	bt->last = nlh;
	return nlh;
}

void batch_next(struct nft_batch *bt)
{
	if (!mnl_nlmsg_batch_next(bt->b))
		bt->overflow = true;
}

/*
 * Only the last message asks for an acknowledgement: the kernel answers a
 * batch in message order, each failed message with its error, so the last
 * message's answer ends it.
 */
uint32_t nft_batch_end(struct nft_batch *bt)
{
	if (!bt->last)
		return 0;
	bt->last->nlmsg_flags |= NLM_F_ACK;
	nftnl_batch_end(mnl_nlmsg_batch_current(bt->b), (*bt->seq)++);
	mnl_nlmsg_batch_next(bt->b);
	return bt->last->nlmsg_seq;
}

const void *nft_batch_head(const struct nft_batch *bt)
{
	return mnl_nlmsg_batch_head(bt->b);
}

size_t nft_batch_size(const struct nft_batch *bt)
{
	return mnl_nlmsg_batch_size(bt->b);
}

void nft_batch_abandon(struct nft_batch *bt)
{
	mnl_nlmsg_batch_stop(bt->b);
}

const struct pinhole_layout layout4 = {
    .nfproto = NFPROTO_IPV4,
    .alen = 4,
    .saddr_off = 12,
    .daddr_off = 16,
    .reg_daddr = NFT_REG32_01,
    .reg_port = NFT_REG32_02,
    .reg_target = NFT_REG32_03,
    .reg_target_port = NFT_REG32_04,
    .reg_publish_port = NFT_REG32_01,
    .set = NFT_SET_ONCE4,
    .map = NFT_MAP_PASV4,
};
const struct pinhole_layout layout6 = {
    .nfproto = NFPROTO_IPV6,
    .alen = 16,
    .saddr_off = 8,
    .daddr_off = 24,
    .reg_daddr = NFT_REG_2,
    .reg_port = NFT_REG_3,
    .reg_target = NFT_REG32_09,
    .reg_target_port = NFT_REG32_13,
    .reg_publish_port = NFT_REG_2,
    .set = NFT_SET_ONCE6,
    .map = NFT_MAP_PASV6,
};

/* meta nfproto ipv4 meta l4proto tcp tcp dport @ctl_ports ct state new ct expectation set "seqadj4" */
static void rule_seqadj(struct nft_batch *bt, uint8_t nfproto, const char *obj)
{
	struct nftnl_rule *r = rule_new(bt, "control");
	e_nfproto(r, nfproto);
	e_l4proto_tcp(r);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
	e_lookup(r, NFT_SET_CTL_PORTS, NFT_REG_1, -1);
	e_ct_new(r);
	struct nftnl_expr *e = nftnl_expr_alloc("objref");
	nftnl_expr_set_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_CT_EXPECT);
	nftnl_expr_set_str(e, NFTNL_EXPR_OBJREF_IMM_NAME, obj);
	add_expr(r, e);
	rule_put(bt, r);
}

/*
 * meta nfproto ipv4 meta l4proto tcp tcp flags & (fin | syn | rst) == 0
 *   ip length . @th,96,4 @pure_ack4 return
 * (IPv6: ip6 length) A bare acknowledgement carries nothing to parse: the
 * IP length is exactly the headers, so it never crosses the queue. The kernel
 * still applies any sequence offset to it.
 */
/*
 * meta l4proto tcp ct original proto-dst @ctl_ports ct direction DIR queue num Q bypass
 * With W > 1 workers, one rule per family and worker k, Q = base + 2k + DIR:
 *   ... meta nfproto ipv4 jhash ct original ip saddr mod W seed 0 == k queue num Q bypass
 * The hash is over the client's address in the conntrack's original tuple,
 * the same for both directions whatever NAT did: a connection stays on one
 * worker, and so do all connections of one client (its per-client limits
 * and pinhole keys are that worker's alone).
 */
static void rule_queue(struct nft_batch *bt, uint8_t dir, uint16_t qnum, uint8_t nfproto, unsigned worker,
		       unsigned workers)
{
	struct nftnl_rule *r = rule_new(bt, "control");
	e_l4proto_tcp(r);
	e_ct(r, NFT_CT_PROTO_DST, IP_CT_DIR_ORIGINAL, NFT_REG_1);
	e_lookup(r, NFT_SET_CTL_PORTS, NFT_REG_1, -1);
	e_ct(r, NFT_CT_DIRECTION, -1, NFT_REG_1);
	e_cmp(r, NFT_REG_1, NFT_CMP_EQ, &dir, 1);
	if (workers > 1) {
		uint32_t k = worker;
		e_nfproto(r, nfproto);
		e_ct(r, nfproto == NFPROTO_IPV4 ? NFT_CT_SRC_IP : NFT_CT_SRC_IP6, IP_CT_DIR_ORIGINAL, NFT_REG_1);
		struct nftnl_expr *h = nftnl_expr_alloc("hash");
		nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS);
		nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_SREG, NFT_REG_1);
		nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_DREG, NFT_REG_1);
		nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_LEN, nfproto == NFPROTO_IPV4 ? 4 : 16);
		nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_MODULUS, workers);
		nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_SEED, 0);
		nftnl_expr_set_u32(h, NFTNL_EXPR_HASH_OFFSET, 0);
		add_expr(r, h);
		e_cmp(r, NFT_REG_1, NFT_CMP_EQ, &k, 4);
	}
	struct nftnl_expr *e;
	if (bt->path == NFT_QUEUE_NATIVE) {
		e = nftnl_expr_alloc("queue");
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, qnum);
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, 1);
		nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, NFT_QUEUE_FLAG_BYPASS);
	} else {
		/* The xt NFQUEUE target through nft_compat, as iptables-nft does. */
		/* libnftnl takes ownership of the info blob, sized as XT_ALIGN() wants. */
		size_t len = (sizeof(struct xt_NFQ_info_v3) + 7) & ~(size_t)7;
		struct xt_NFQ_info_v3 *info = calloc(1, len);
		if (!info)
			abort();
		info->queuenum = qnum;
		info->queues_total = 1;
		info->flags = NFQ_FLAG_BYPASS;
		e = nftnl_expr_alloc("target");
		nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
		nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
		nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, (uint32_t)len);
	}
	add_expr(r, e);
	rule_put(bt, r);
}

/* dnat ip to <address in reg_addr> . <port in reg_port>, after a map lookup. */
static void e_dnat_from_map(struct nftnl_rule *r, const struct pinhole_layout *l, uint32_t reg_addr, uint32_t reg_port)
{
	struct nftnl_expr *e = nftnl_expr_alloc("nat");
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, l->nfproto);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, reg_addr);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_port);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, reg_port);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
	add_expr(r, e);
}

static void e_delete(struct nftnl_rule *r, const char *set, uint32_t reg_key, int reg_data)
{
	struct nftnl_expr *e = nftnl_expr_alloc("dynset");
	nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_DELETE);
	nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, reg_key);
	if (reg_data >= 0)
		nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_DATA, (uint32_t)reg_data);
	add_expr(r, e);
}

static void e_key(struct nftnl_rule *r, const struct pinhole_layout *l)
{
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, l->saddr_off, l->alen, NFT_REG_1);
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, l->daddr_off, l->alen, l->reg_daddr);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, l->reg_port);
}

/*
 * meta nfproto ipv4 meta l4proto tcp ct state new
 *   ip saddr . ip daddr . tcp dport @once4
 *   delete @once4 { ip saddr . ip daddr . tcp dport }
 *   delete @pasv4 { ip saddr . ip daddr . tcp dport : ip daddr . tcp dport }
 *   dnat ip to ip saddr . ip daddr . tcp dport map @pasv4
 * as nft lists it. The map lookup that gives the DNAT target runs first,
 * into registers the deletes do not touch; the delete's data is any value of
 * the right length (the kernel only uses the key). The packet that uses a
 * pinhole removes both of its entries: a pinhole opens once, and the daemon
 * has nothing left to remove. IPv6 the same with ip6, once6 and pasv6.
 */
static void rule_pinhole(struct nft_batch *bt, const struct pinhole_layout *l)
{
	struct nftnl_rule *r = rule_new(bt, "pinhole");
	e_nfproto(r, l->nfproto);
	e_l4proto_tcp(r);
	e_ct_new(r);
	e_key(r, l);
	e_lookup(r, l->set, NFT_REG_1, -1);
	e_lookup(r, l->map, NFT_REG_1, (int)l->reg_target);
	e_delete(r, l->set, NFT_REG_1, -1);
	e_delete(r, l->map, NFT_REG_1, (int)l->reg_daddr);
	e_dnat_from_map(r, l, l->reg_target, l->reg_target_port);
	rule_put(bt, r);
}

/*
 * meta nfproto ipv4 meta l4proto tcp ct state new dnat ip to ip daddr . tcp dport map @publish4
 * (and ip6 with publish6): the control ports of [server] sections.
 */
static void rule_publish(struct nft_batch *bt, const struct pinhole_layout *l)
{
	struct nftnl_rule *r = rule_new(bt, "publish");
	e_nfproto(r, l->nfproto);
	e_l4proto_tcp(r);
	e_ct_new(r);
	e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, l->daddr_off, l->alen, NFT_REG_1);
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, l->reg_daddr);
	const char *map = l->nfproto == NFPROTO_IPV4 ? NFT_MAP_PUBLISH4 : NFT_MAP_PUBLISH6;
	e_lookup(r, map, NFT_REG_1, NFT_REG_1);
	e_dnat_from_map(r, l, NFT_REG_1, l->reg_publish_port);
	rule_put(bt, r);
}

static void put_chain(struct nft_batch *bt, const char *name, const char *type, uint32_t hook, int prio)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, bt->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	struct nlmsghdr *nlh = batch_msg(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	batch_next(bt);
}

/*
 * chain labels { ct label set 127 }, a chain nothing jumps to. Loading it
 * makes the kernel give every new conntrack of the namespace a label area
 * (nf_connlabels_get): ftp-alg records a control connection's newest pinhole
 * there (kernel.h), and conntrackd can write the peer's records only into
 * conntracks that have one.
 */
static void put_labels_chain(struct nft_batch *bt)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, bt->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, "labels");
	struct nlmsghdr *nlh = batch_msg(bt, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	batch_next(bt);
	struct nftnl_rule *r = rule_new(bt, "labels");
	uint8_t bit127[16] = {0};
	bit127[15] = 0x80;
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, bit127, sizeof(bit127));
	add_expr(r, e);
	e = nftnl_expr_alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_LABELS);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
	add_expr(r, e);
	rule_put(bt, r);
}

/* ct expectation seqadj4 { protocol tcp; dport 0; timeout 1s; size 0; l3proto ip } */
static void put_seqadj_obj(struct nft_batch *bt, const char *name, uint16_t l3)
{
	struct nftnl_obj *o = nftnl_obj_alloc();
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, bt->table);
	nftnl_obj_set_str(o, NFTNL_OBJ_NAME, name);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_CT_EXPECT);
	nftnl_obj_set_u16(o, NFTNL_OBJ_CT_EXPECT_L3PROTO, l3);
	nftnl_obj_set_u8(o, NFTNL_OBJ_CT_EXPECT_L4PROTO, IPPROTO_TCP);
	nftnl_obj_set_u16(o, NFTNL_OBJ_CT_EXPECT_DPORT, 0);
	/* Never used (size 0), but nft list prints a timeout of 0 as "timeout" with no value. */
	nftnl_obj_set_u32(o, NFTNL_OBJ_CT_EXPECT_TIMEOUT, 1000);
	/* Size 0: the object adds a helper extension and then never creates an expectation. */
	nftnl_obj_set_u8(o, NFTNL_OBJ_CT_EXPECT_SIZE, 0);
	struct nlmsghdr *nlh = batch_msg(bt, NFT_MSG_NEWOBJ, NLM_F_CREATE);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	batch_next(bt);
}

void put_set(struct nft_batch *bt, struct nftnl_set *s)
{
	nftnl_set_nlmsg_build_payload(batch_msg(bt, NFT_MSG_NEWSET, NLM_F_CREATE), s);
	batch_next(bt);
}

void put_set_elems(struct nft_batch *bt, struct nftnl_set *s)
{
	nftnl_set_elems_nlmsg_build_payload(batch_msg(bt, NFT_MSG_NEWSETELEM, NLM_F_CREATE), s);
	batch_next(bt);
}

struct nftnl_set *set_new(const char *table, const char *name)
{
	struct nftnl_set *s = nftnl_set_alloc();
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	return s;
}

static void put_sets(struct nft_batch *bt)
{
	struct nftnl_set *s = set_new(bt->table, NFT_SET_CTL_PORTS);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, TYPE_INET_SERVICE);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, 2);
	nftnl_set_set_u32(s, NFTNL_SET_ID, 1);
	put_set(bt, s);
	nftnl_set_free(s);

	nft_put_bypass_sets(bt);

	/* set once4 { type ipv4_addr . ipv4_addr . inet_service; flags dynamic, timeout; size 65535 } */
	/* map pasv4 { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service; flags timeout } */
	/* and once6/pasv6 with ipv6_addr */
	for (int i = 0; i < 2; i++) {
		const struct pinhole_layout *l = i ? &layout6 : &layout4;
		uint32_t atype = i ? TYPE_IP6ADDR : TYPE_IPADDR, klen = 2 * l->alen + 4;
		s = set_new(bt->table, l->set);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_TIMEOUT | NFT_SET_EVAL);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, KEY_TYPE(atype));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, klen);
		nftnl_set_set_u32(s, NFTNL_SET_ID, 2 + 2 * (uint32_t)i);
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, 65535);
		put_set(bt, s);
		nftnl_set_free(s);

		/* map publish4 { type ipv4_addr . inet_service : ipv4_addr . inet_service } */
		s = set_new(bt->table, i ? NFT_MAP_PUBLISH6 : NFT_MAP_PUBLISH4);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, atype << TYPE_BITS | TYPE_INET_SERVICE);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, l->alen + 4);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, atype << TYPE_BITS | TYPE_INET_SERVICE);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, l->alen + 4);
		nftnl_set_set_u32(s, NFTNL_SET_ID, 10 + (uint32_t)i);
		put_set(bt, s);
		nftnl_set_free(s);

		s = set_new(bt->table, l->map);
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP | NFT_SET_TIMEOUT);
		nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, KEY_TYPE(atype));
		nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, klen);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, atype << TYPE_BITS | TYPE_INET_SERVICE);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, l->alen + 4);
		nftnl_set_set_u32(s, NFTNL_SET_ID, 3 + 2 * (uint32_t)i);
		put_set(bt, s);
		nftnl_set_free(s);
	}
}

static void put_table(struct nft_batch *bt, uint16_t type, uint32_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, bt->table);
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	if (type == NFT_MSG_NEWTABLE)
		nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, flags);
	struct nlmsghdr *nlh = batch_msg(bt, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE | NLM_F_EXCL : 0);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	batch_next(bt);
}

void nft_put_setup(struct nft_batch *bt, const struct alg_config *cfg)
{
	put_table(bt, NFT_MSG_NEWTABLE, NFT_TABLE_F_OWNER);
	put_seqadj_obj(bt, OBJ_SEQADJ4, NFPROTO_IPV4);
	put_seqadj_obj(bt, OBJ_SEQADJ6, NFPROTO_IPV6);
	put_sets(bt);
	put_chain(bt, "control", "filter", NF_INET_PRE_ROUTING, PRIO_CONTROL);
	put_chain(bt, "pinhole", "nat", NF_INET_PRE_ROUTING, PRIO_PINHOLE);
	put_chain(bt, "publish", "nat", NF_INET_PRE_ROUTING, PRIO_PUBLISH);
	rule_seqadj(bt, NFPROTO_IPV4, OBJ_SEQADJ4);
	rule_seqadj(bt, NFPROTO_IPV6, OBJ_SEQADJ6);
	nft_put_bypass_rules(bt, cfg);
	for (unsigned k = 0; k < cfg->workers; k++)
		for (int fam = 0; fam < (cfg->workers > 1 ? 2 : 1); fam++)
			for (uint8_t dir = 0; dir < 2; dir++)
				rule_queue(bt, dir, (uint16_t)(cfg->queue + 2 * k + dir),
					   fam ? NFPROTO_IPV6 : NFPROTO_IPV4, k, cfg->workers);
	rule_pinhole(bt, &layout4);
	rule_pinhole(bt, &layout6);
	rule_publish(bt, &layout4);
	rule_publish(bt, &layout6);
	put_labels_chain(bt);
}

/* Replace a set's elements with the given ones, inside an open batch. */
void nft_put_table_del(struct nft_batch *bt)
{
	put_table(bt, NFT_MSG_DELTABLE, 0);
}
