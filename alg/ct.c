/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ct.h"
#include "nl.h"

#include <netinet/in.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct ct {
	struct nfct_handle *h;
	struct mnl_socket *nl; /* lookups by reply tuple, which the library cannot send */
	uint32_t portid;
	uint32_t seq;
	struct ct_info *result;
	bool found;
};

int ct_open(struct ct **out)
{
	struct ct *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->h = nfct_open(CONNTRACK, 0);
	if (!c->h) {
		int e = errno;
		free(c);
		return -(e ? e : EPROTONOSUPPORT);
	}
	int r = nl_open(NETLINK_NETFILTER, 1, &c->nl, &c->portid);
	if (r < 0) {
		ct_close(c);
		return r;
	}
	c->seq = (uint32_t)time(NULL);
	*out = c;
	return 0;
}

void ct_close(struct ct *c)
{
	if (!c)
		return;
	if (c->h)
		nfct_close(c->h);
	if (c->nl)
		mnl_socket_close(c->nl);
	free(c);
}

static void get_flow(const struct nf_conntrack *ct, bool reply, struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->family = nfct_get_attr_u8(ct, ATTR_L3PROTO);
	if (f->family == AF_INET) {
		uint32_t s = nfct_get_attr_u32(ct, reply ? ATTR_REPL_IPV4_SRC : ATTR_ORIG_IPV4_SRC);
		uint32_t d = nfct_get_attr_u32(ct, reply ? ATTR_REPL_IPV4_DST : ATTR_ORIG_IPV4_DST);
		memcpy(f->saddr, &s, 4);
		memcpy(f->daddr, &d, 4);
	} else {
		memcpy(f->saddr, nfct_get_attr(ct, reply ? ATTR_REPL_IPV6_SRC : ATTR_ORIG_IPV6_SRC), 16);
		memcpy(f->daddr, nfct_get_attr(ct, reply ? ATTR_REPL_IPV6_DST : ATTR_ORIG_IPV6_DST), 16);
	}
	f->sport = ntohs(nfct_get_attr_u16(ct, reply ? ATTR_REPL_PORT_SRC : ATTR_ORIG_PORT_SRC));
	f->dport = ntohs(nfct_get_attr_u16(ct, reply ? ATTR_REPL_PORT_DST : ATTR_ORIG_PORT_DST));
}

static void fill_info(const struct nf_conntrack *ct, struct ct_info *o)
{
	memset(o, 0, sizeof(*o));
	get_flow(ct, false, &o->orig);
	get_flow(ct, true, &o->reply);
	if (nfct_attr_is_set(ct, ATTR_ID) > 0) {
		o->has_id = true;
		o->id = nfct_get_attr_u32(ct, ATTR_ID);
	}
	if (nfct_attr_is_set(ct, ATTR_STATUS) > 0)
		o->seen_reply = (nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_SEEN_REPLY) != 0;
	if (nfct_attr_is_set(ct, ATTR_TCP_STATE) > 0) {
		o->has_tcp_state = true;
		o->tcp_state = nfct_get_attr_u8(ct, ATTR_TCP_STATE);
	}
	if (nfct_attr_is_set(ct, ATTR_HELPER_NAME) > 0)
		snprintf(o->helper, sizeof(o->helper), "%s", (const char *)nfct_get_attr(ct, ATTR_HELPER_NAME));
	static const int attrs[2][3] = {
	    {ATTR_ORIG_NAT_SEQ_CORRECTION_POS, ATTR_ORIG_NAT_SEQ_OFFSET_BEFORE, ATTR_ORIG_NAT_SEQ_OFFSET_AFTER},
	    {ATTR_REPL_NAT_SEQ_CORRECTION_POS, ATTR_REPL_NAT_SEQ_OFFSET_BEFORE, ATTR_REPL_NAT_SEQ_OFFSET_AFTER},
	};
	for (int d = 0; d < 2; d++)
		if (nfct_attr_is_set(ct, attrs[d][0]) > 0) {
			o->seqadj_present[d] = true;
			o->corr_pos[d] = nfct_get_attr_u32(ct, attrs[d][0]);
			o->off_before[d] = (int32_t)nfct_get_attr_u32(ct, attrs[d][1]);
			o->off_after[d] = (int32_t)nfct_get_attr_u32(ct, attrs[d][2]);
		}
	const struct nfct_bitmask *b =
	    nfct_attr_is_set(ct, ATTR_CONNLABELS) > 0 ? nfct_get_attr(ct, ATTR_CONNLABELS) : NULL;
	if (b) {
		o->has_labels = true;
		unsigned max = nfct_bitmask_maxbit(b);
		for (unsigned i = 0; i < 128 && i <= max; i++)
			if (nfct_bitmask_test_bit(b, i))
				o->labels[i / 8] |= (uint8_t)(1u << (i % 8));
	}
}

static int get_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct ct *c = data;
	(void)type;
	fill_info(ct, c->result);
	c->found = true;
	return NFCT_CB_STOP;
}

static void set_tuple(struct nf_conntrack *ct, const struct flow *f, bool reply)
{
	/* Only the tuple we know: any original-tuple attribute makes the library send that tuple. */
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, (uint8_t)f->family); /* the message's family */
	if (reply)
		nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, (uint8_t)f->family);
	nfct_set_attr_u8(ct, reply ? ATTR_REPL_L4PROTO : ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	if (f->family == AF_INET) {
		uint32_t s, d;
		memcpy(&s, f->saddr, 4);
		memcpy(&d, f->daddr, 4);
		nfct_set_attr_u32(ct, reply ? ATTR_REPL_IPV4_SRC : ATTR_ORIG_IPV4_SRC, s);
		nfct_set_attr_u32(ct, reply ? ATTR_REPL_IPV4_DST : ATTR_ORIG_IPV4_DST, d);
	} else {
		nfct_set_attr(ct, reply ? ATTR_REPL_IPV6_SRC : ATTR_ORIG_IPV6_SRC, f->saddr);
		nfct_set_attr(ct, reply ? ATTR_REPL_IPV6_DST : ATTR_ORIG_IPV6_DST, f->daddr);
	}
	nfct_set_attr_u16(ct, reply ? ATTR_REPL_PORT_SRC : ATTR_ORIG_PORT_SRC, htons(f->sport));
	nfct_set_attr_u16(ct, reply ? ATTR_REPL_PORT_DST : ATTR_ORIG_PORT_DST, htons(f->dport));
}

static void put_tuple(struct nlmsghdr *nlh, uint16_t type, const struct flow *f)
{
	struct nlattr *t = mnl_attr_nest_start(nlh, type);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (f->family == AF_INET) {
		mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, f->saddr);
		mnl_attr_put(nlh, CTA_IP_V4_DST, 4, f->daddr);
	} else {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, f->saddr);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, f->daddr);
	}
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(f->sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(f->dport));
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, t);
}

static int get_mnl_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ct *c = data;
	struct nf_conntrack *ct = nfct_new();
	if (!ct)
		return MNL_CB_ERROR;
	if (nfct_nlmsg_parse(nlh, ct) == 0)
		get_cb(NFCT_T_UNKNOWN, ct, c);
	nfct_destroy(ct);
	return MNL_CB_OK;
}

/*
 * GET by CTA_TUPLE_ORIG or CTA_TUPLE_REPLY. A reply packet seen before NAT
 * carries exactly the conntrack's reply tuple, and ctnetlink looks either up.
 */
int ct_get(struct ct *c, const struct flow *seen, int dir, struct ct_info *out)
{
	char buf[8192];
	/* The request is small; zeroed so that no byte the kernel reads is left over from the stack. */
	memset(buf, 0, 512);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	/* No acknowledgement: the answer is one message, the conntrack or the error, so one read. */
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++c->seq;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = (uint8_t)seen->family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	put_tuple(nlh, dir == DIR_REPLY ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG, seen);

	c->result = out;
	c->found = false;
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t r = mnl_socket_recvfrom(c->nl, buf, sizeof(buf));
		if (r < 0)
			return -errno;
		int rc = mnl_cb_run(buf, (size_t)r, c->seq, c->portid, get_mnl_cb, c);
		if (rc < 0)
			return -errno;
		if (rc == MNL_CB_STOP || c->found)
			break;
	}
	return c->found ? 0 : -ENOENT;
}

int ct_seqadj_set(struct ct *c, const struct flow *orig, int dir, uint32_t pos, int32_t before, int32_t after)
{
	struct nf_conntrack *ct = nfct_new();
	if (!ct)
		return -ENOMEM;
	set_tuple(ct, orig, false);
	bool r = dir == DIR_REPLY;
	nfct_set_attr_u32(ct, r ? ATTR_REPL_NAT_SEQ_CORRECTION_POS : ATTR_ORIG_NAT_SEQ_CORRECTION_POS, pos);
	nfct_set_attr_u32(ct, r ? ATTR_REPL_NAT_SEQ_OFFSET_BEFORE : ATTR_ORIG_NAT_SEQ_OFFSET_BEFORE, (uint32_t)before);
	nfct_set_attr_u32(ct, r ? ATTR_REPL_NAT_SEQ_OFFSET_AFTER : ATTR_ORIG_NAT_SEQ_OFFSET_AFTER, (uint32_t)after);
	int rc = nfct_query(c->h, NFCT_Q_UPDATE, ct);
	int e = errno;
	nfct_destroy(ct);
	return rc < 0 ? -(e ? e : EIO) : 0;
}

static struct nfct_bitmask *bitmask_of(const uint8_t bytes[16])
{
	struct nfct_bitmask *b = nfct_bitmask_new(127);
	if (b)
		for (unsigned i = 0; i < 128; i++)
			if (bytes[i / 8] & (1u << (i % 8)))
				nfct_bitmask_set_bit(b, i);
	return b;
}

int ct_labels_set(struct ct *c, const struct flow *orig, const uint8_t labels[16], const uint8_t mask[16])
{
	struct nf_conntrack *ct = nfct_new();
	struct nfct_bitmask *l = bitmask_of(labels), *m = bitmask_of(mask);
	if (!ct || !l || !m) {
		nfct_destroy(ct);
		nfct_bitmask_destroy(l);
		nfct_bitmask_destroy(m);
		return -ENOMEM;
	}
	set_tuple(ct, orig, false);
	/* The conntrack owns the bitmasks from here. */
	nfct_set_attr(ct, ATTR_CONNLABELS, l);
	nfct_set_attr(ct, ATTR_CONNLABELS_MASK, m);
	int rc = nfct_query(c->h, NFCT_Q_UPDATE, ct);
	int e = errno;
	nfct_destroy(ct);
	return rc < 0 ? -(e ? e : EIO) : 0;
}

/* The control connections' conntracks at one moment, sorted by id. */
struct ct_snapshot {
	struct snap_entry {
		uint32_t id;
		struct flow orig;
		struct ct_info info;
	} * v;
	size_t n, cap;
	const uint16_t *ports;
	unsigned nports;
	int err;
};

static int snap_cb(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *data)
{
	struct ct_snapshot *sn = data;
	(void)type;
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != IPPROTO_TCP || nfct_attr_is_set(ct, ATTR_ID) <= 0)
		return NFCT_CB_CONTINUE;
	uint16_t dport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	bool control = false;
	for (unsigned i = 0; i < sn->nports; i++)
		control = control || sn->ports[i] == dport;
	if (!control)
		return NFCT_CB_CONTINUE;
	if (sn->n == sn->cap) {
		size_t cap = sn->cap ? 2 * sn->cap : 256;
		struct snap_entry *v = realloc(sn->v, cap * sizeof(*v));
		if (!v) {
			sn->err = -ENOMEM;
			return NFCT_CB_STOP;
		}
		sn->v = v;
		sn->cap = cap;
	}
	sn->v[sn->n].id = nfct_get_attr_u32(ct, ATTR_ID);
	get_flow(ct, false, &sn->v[sn->n].orig);
	fill_info(ct, &sn->v[sn->n].info);
	sn->n++;
	return NFCT_CB_CONTINUE;
}

static int by_id(const void *a, const void *b)
{
	uint32_t x = ((const struct snap_entry *)a)->id, y = ((const struct snap_entry *)b)->id;
	return x < y ? -1 : x > y;
}

int ct_snapshot_take(struct ct *c, const uint16_t *ports, unsigned nports, struct ct_snapshot **out)
{
	struct ct_snapshot *sn = calloc(1, sizeof(*sn));
	if (!sn)
		return -ENOMEM;
	sn->ports = ports;
	sn->nports = nports;
	struct nfct_handle *h = c->h;
	nfct_callback_register(h, NFCT_T_ALL, snap_cb, sn);
	uint32_t family = AF_UNSPEC;
	int r = nfct_query(h, NFCT_Q_DUMP, &family);
	int e = errno;
	nfct_callback_unregister(h);
	if (r < 0 || sn->err) {
		r = sn->err ? sn->err : -(e ? e : EIO);
		ct_snapshot_free(sn);
		return r;
	}
	sn->ports = NULL;
	if (sn->n)
		qsort(sn->v, sn->n, sizeof(sn->v[0]), by_id);
	*out = sn;
	return 0;
}

size_t ct_snapshot_count(const struct ct_snapshot *sn)
{
	return sn ? sn->n : 0;
}

bool ct_snapshot_has(const struct ct_snapshot *sn, const struct ct_info *ct)
{
	if (!sn || !sn->n || !ct->has_id)
		return false;
	struct snap_entry key = {.id = ct->id};
	const struct snap_entry *e = bsearch(&key, sn->v, sn->n, sizeof(sn->v[0]), by_id);
	if (!e)
		return false;
	const struct flow *a = &e->orig, *b = &ct->orig;
	size_t l = flow_addr_len(a->family);
	return a->family == b->family && a->sport == b->sport && a->dport == b->dport &&
	       memcmp(a->saddr, b->saddr, l) == 0 && memcmp(a->daddr, b->daddr, l) == 0;
}

void ct_snapshot_foreach(const struct ct_snapshot *sn, void (*cb)(void *ctx, const struct ct_info *ct), void *ctx)
{
	for (size_t i = 0; sn && i < sn->n; i++)
		cb(ctx, &sn->v[i].info);
}

void ct_snapshot_free(struct ct_snapshot *sn)
{
	if (!sn)
		return;
	free(sn->v);
	free(sn);
}
