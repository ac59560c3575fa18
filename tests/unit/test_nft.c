/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What nft/ sends to the kernel, without a kernel: each batch is built in
 * memory and parsed back with libnftnl, as libnftnl's own tests do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nft/batch.h"

#define MAX_MSGS 128

struct sent {
	char buf[1 << 18];
	uint32_t seq;
	struct nft_batch bt;
	const struct nlmsghdr *msg[MAX_MSGS];
	unsigned n;
};

static void start(struct sent *s, enum nft_queue_path path)
{
	memset(s, 0, sizeof(*s));
	s->seq = 100;
	nft_batch_begin(&s->bt, s->buf, sizeof(s->buf), &s->seq, "ftp_alg", path);
}

/* Close the batch and index its messages, batch begin and end included. */
static void finish(struct sent *s)
{
	assert_int_not_equal(nft_batch_end(&s->bt), 0);
	assert_false(s->bt.overflow);
	int len = (int)nft_batch_size(&s->bt);
	for (const struct nlmsghdr *nlh = nft_batch_head(&s->bt); mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len)) {
		assert_true(s->n < MAX_MSGS);
		s->msg[s->n++] = nlh;
	}
	assert_int_equal(len, 0);
	assert_int_equal(s->msg[0]->nlmsg_type, NFNL_MSG_BATCH_BEGIN);
	assert_int_equal(s->msg[s->n - 1]->nlmsg_type, NFNL_MSG_BATCH_END);
	/* Only the last real message asks for an acknowledgement. */
	for (unsigned i = 1; i + 1 < s->n; i++)
		assert_int_equal(!!(s->msg[i]->nlmsg_flags & NLM_F_ACK), i + 2 == s->n);
}

static void done(struct sent *s)
{
	nft_batch_abandon(&s->bt);
}

static unsigned type_of(const struct nlmsghdr *nlh)
{
	assert_int_equal(nlh->nlmsg_type >> 8, NFNL_SUBSYS_NFTABLES);
	return nlh->nlmsg_type & 0xff;
}

/* The n-th message of type t (0-based), or fail. */
static const struct nlmsghdr *nth(const struct sent *s, unsigned t, unsigned n)
{
	for (unsigned i = 1; i + 1 < s->n; i++)
		if (type_of(s->msg[i]) == t && n-- == 0)
			return s->msg[i];
	fail_msg("no message %u of type %u", n, t);
	return NULL;
}

static unsigned count(const struct sent *s, unsigned t)
{
	unsigned c = 0;
	for (unsigned i = 1; i + 1 < s->n; i++)
		c += type_of(s->msg[i]) == t;
	return c;
}

/* The rule's expressions as "meta cmp ..." and its chain. */
static void rule_shape(const struct nlmsghdr *nlh, char *shape, size_t len, const char **chain, struct nftnl_rule **out)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	assert_int_equal(nftnl_rule_nlmsg_parse(nlh, r), 0);
	assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), "ftp_alg");
	*chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
	shape[0] = 0;
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e;
	while ((e = nftnl_expr_iter_next(it))) {
		size_t used = strlen(shape);
		snprintf(shape + used, len - used, "%s%s", used ? " " : "", nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
	}
	nftnl_expr_iter_destroy(it);
	*out = r;
}

/* The expression at index i of r. */
static struct nftnl_expr *expr_at(struct nftnl_rule *r, unsigned i)
{
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e = nftnl_expr_iter_next(it);
	while (e && i--)
		e = nftnl_expr_iter_next(it);
	nftnl_expr_iter_destroy(it);
	assert_non_null(e);
	return e;
}

static struct alg_config *cfg_new(unsigned workers)
{
	struct alg_config *cfg = calloc(1, sizeof(*cfg));
	config_defaults(cfg);
	cfg->workers = workers;
	return cfg;
}

static void setup_batch_builds_the_owned_table(void **state)
{
	(void)state;
	struct sent *s = malloc(sizeof(*s));
	struct alg_config *cfg = cfg_new(1);
	start(s, NFT_QUEUE_XT);
	nft_put_setup(&s->bt, cfg);
	finish(s);

	struct nftnl_table *t = nftnl_table_alloc();
	assert_int_equal(nftnl_table_nlmsg_parse(nth(s, NFT_MSG_NEWTABLE, 0), t), 0);
	assert_string_equal(nftnl_table_get_str(t, NFTNL_TABLE_NAME), "ftp_alg");
	assert_int_equal(nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS), NFT_TABLE_F_OWNER);
	assert_true(nth(s, NFT_MSG_NEWTABLE, 0)->nlmsg_flags & NLM_F_EXCL);
	nftnl_table_free(t);

	/* The two size-0 expectation objects. */
	assert_int_equal(count(s, NFT_MSG_NEWOBJ), 2);
	for (unsigned i = 0; i < 2; i++) {
		struct nftnl_obj *o = nftnl_obj_alloc();
		assert_int_equal(nftnl_obj_nlmsg_parse(nth(s, NFT_MSG_NEWOBJ, i), o), 0);
		assert_int_equal(nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE), NFT_OBJECT_CT_EXPECT);
		assert_string_equal(nftnl_obj_get_str(o, NFTNL_OBJ_NAME), i ? "seqadj6" : "seqadj4");
		assert_int_equal(nftnl_obj_get_u8(o, NFTNL_OBJ_CT_EXPECT_SIZE), 0);
		nftnl_obj_free(o);
	}

	/* Chains: hooks and priorities. */
	static const struct {
		const char *name, *type;
		int prio;
	} chains[] = {{"control", "filter", -150}, {"pinhole", "nat", -110}, {"publish", "nat", -105}};
	assert_int_equal(count(s, NFT_MSG_NEWCHAIN), 4);
	/* The fourth, "labels", has no hook: it only makes the kernel give conntracks a label area. */
	struct nftnl_chain *lc = nftnl_chain_alloc();
	assert_int_equal(nftnl_chain_nlmsg_parse(nth(s, NFT_MSG_NEWCHAIN, 3), lc), 0);
	assert_string_equal(nftnl_chain_get_str(lc, NFTNL_CHAIN_NAME), "labels");
	assert_false(nftnl_chain_is_set(lc, NFTNL_CHAIN_HOOKNUM));
	nftnl_chain_free(lc);
	for (unsigned i = 0; i < 3; i++) {
		struct nftnl_chain *c = nftnl_chain_alloc();
		assert_int_equal(nftnl_chain_nlmsg_parse(nth(s, NFT_MSG_NEWCHAIN, i), c), 0);
		assert_string_equal(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), chains[i].name);
		assert_string_equal(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), chains[i].type);
		assert_int_equal(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM), NF_INET_PRE_ROUTING);
		assert_int_equal(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), chains[i].prio);
		nftnl_chain_free(c);
	}

	/* Sets: the pinhole set and map have timeouts and the nft key type of addr . addr . port. */
	static const char *sets[] = {"ctl_ports", "pure_ack4", "pure_ack6", "mss_clamp", "once4",
				     "publish4",  "pasv4",     "once6",	    "publish6",	 "pasv6"};
	assert_int_equal(count(s, NFT_MSG_NEWSET), 10);
	for (unsigned i = 0; i < 10; i++) {
		struct nftnl_set *st = nftnl_set_alloc();
		assert_int_equal(nftnl_set_nlmsg_parse(nth(s, NFT_MSG_NEWSET, i), st), 0);
		const char *name = nftnl_set_get_str(st, NFTNL_SET_NAME);
		assert_string_equal(name, sets[i]);
		if (strncmp(name, "once", 4) == 0 || strncmp(name, "pasv", 4) == 0) {
			assert_true(nftnl_set_get_u32(st, NFTNL_SET_FLAGS) & NFT_SET_TIMEOUT);
			assert_int_equal(nftnl_set_get_u32(st, NFTNL_SET_KEY_LEN), name[4] == '4' ? 12 : 36);
		}
		nftnl_set_free(st);
	}

	/*
	 * Rules: 2 seqadj, 2 bare-ACK returns, 2 SYN-ACK MSS-and-returns, 2
	 * queue (one worker), 2 pinhole, 2 publish, 1 labels.
	 */
	assert_int_equal(count(s, NFT_MSG_NEWRULE), 13);
	char shape[512];
	const char *chain;
	struct nftnl_rule *r;
	rule_shape(nth(s, NFT_MSG_NEWRULE, 12), shape, sizeof(shape), &chain, &r);
	assert_string_equal(chain, "labels");
	assert_string_equal(shape, "immediate ct");
	nftnl_rule_free(r);
	rule_shape(nth(s, NFT_MSG_NEWRULE, 0), shape, sizeof(shape), &chain, &r);
	assert_string_equal(chain, "control");
	assert_string_equal(shape, "meta cmp meta cmp payload lookup ct bitwise cmp objref");
	nftnl_rule_free(r);

	/* The server's bare SYN-ACK of a control connection: its MSS through the map, written back, and return. */
	rule_shape(nth(s, NFT_MSG_NEWRULE, 4), shape, sizeof(shape), &chain, &r);
	assert_string_equal(shape, "meta cmp meta cmp ct lookup ct cmp payload bitwise cmp payload payload bitwise "
				   "lookup exthdr lookup exthdr immediate");
	assert_string_equal(nftnl_expr_get_str(expr_at(r, 5), NFTNL_EXPR_LOOKUP_SET), "ctl_ports");
	assert_int_equal(*(const uint8_t *)nftnl_expr_get(expr_at(r, 10), NFTNL_EXPR_CMP_DATA, &(uint32_t){0}), 0x12);
	assert_int_equal(nftnl_expr_get_u8(expr_at(r, 15), NFTNL_EXPR_EXTHDR_TYPE), 2);
	assert_string_equal(nftnl_expr_get_str(expr_at(r, 16), NFTNL_EXPR_LOOKUP_SET), "mss_clamp");
	/* What the map lookup wrote is what goes back into the option. */
	assert_int_equal(nftnl_expr_get_u32(expr_at(r, 17), NFTNL_EXPR_EXTHDR_SREG),
			 nftnl_expr_get_u32(expr_at(r, 16), NFTNL_EXPR_LOOKUP_DREG));
	assert_int_equal(nftnl_expr_get_u32(expr_at(r, 18), NFTNL_EXPR_IMM_VERDICT), (uint32_t)NFT_RETURN);
	nftnl_rule_free(r);

	for (unsigned dir = 0; dir < 2; dir++) {
		rule_shape(nth(s, NFT_MSG_NEWRULE, 6 + dir), shape, sizeof(shape), &chain, &r);
		assert_string_equal(chain, "control");
		assert_string_equal(shape, "meta cmp ct lookup ct cmp target");
		struct nftnl_expr *tg = expr_at(r, 6);
		assert_string_equal(nftnl_expr_get_str(tg, NFTNL_EXPR_TG_NAME), "NFQUEUE");
		uint32_t ilen;
		const uint16_t *info = nftnl_expr_get(tg, NFTNL_EXPR_TG_INFO, &ilen);
		assert_true(ilen >= 6);
		assert_int_equal(info[0], 21 + dir); /* queuenum: orig to 21, replies to 22 */
		nftnl_rule_free(r);
	}

	/* The pinhole rule: the key is looked up, both entries deleted, the target DNATed to. */
	rule_shape(nth(s, NFT_MSG_NEWRULE, 8), shape, sizeof(shape), &chain, &r);
	assert_string_equal(chain, "pinhole");
	assert_string_equal(shape, "meta cmp meta cmp ct bitwise cmp payload payload payload lookup lookup dynset "
				   "dynset nat");
	assert_string_equal(nftnl_expr_get_str(expr_at(r, 10), NFTNL_EXPR_LOOKUP_SET), "once4");
	assert_string_equal(nftnl_expr_get_str(expr_at(r, 11), NFTNL_EXPR_LOOKUP_SET), "pasv4");
	assert_int_equal(nftnl_expr_get_u32(expr_at(r, 12), NFTNL_EXPR_DYNSET_OP), NFT_DYNSET_OP_DELETE);
	assert_string_equal(nftnl_expr_get_str(expr_at(r, 12), NFTNL_EXPR_DYNSET_SET_NAME), "once4");
	assert_string_equal(nftnl_expr_get_str(expr_at(r, 13), NFTNL_EXPR_DYNSET_SET_NAME), "pasv4");
	assert_int_equal(nftnl_expr_get_u32(expr_at(r, 14), NFTNL_EXPR_NAT_TYPE), NFT_NAT_DNAT);
	/* The DNAT reads the target the map lookup wrote. */
	assert_int_equal(nftnl_expr_get_u32(expr_at(r, 14), NFTNL_EXPR_NAT_REG_ADDR_MIN),
			 nftnl_expr_get_u32(expr_at(r, 11), NFTNL_EXPR_LOOKUP_DREG));
	nftnl_rule_free(r);

	done(s);
	free(s);
	free(cfg);
}

static void native_queue_and_workers(void **state)
{
	(void)state;
	struct sent *s = malloc(sizeof(*s));
	struct alg_config *cfg = cfg_new(2);
	start(s, NFT_QUEUE_NATIVE);
	nft_put_setup(&s->bt, cfg);
	finish(s);
	/* Two workers: one rule per worker, family and direction. */
	assert_int_equal(count(s, NFT_MSG_NEWRULE), 6 + 8 + 4 + 1);
	unsigned seen = 0;
	for (unsigned i = 0; i < 8; i++) {
		char shape[512];
		const char *chain;
		struct nftnl_rule *r;
		rule_shape(nth(s, NFT_MSG_NEWRULE, 6 + i), shape, sizeof(shape), &chain, &r);
		assert_string_equal(shape, "meta cmp ct lookup ct cmp meta cmp ct hash cmp queue");
		assert_int_equal(nftnl_expr_get_u32(expr_at(r, 9), NFTNL_EXPR_HASH_MODULUS), 2);
		uint16_t q = nftnl_expr_get_u16(expr_at(r, 11), NFTNL_EXPR_QUEUE_NUM);
		assert_true(q >= 21 && q <= 24);
		assert_true(nftnl_expr_get_u16(expr_at(r, 11), NFTNL_EXPR_QUEUE_FLAGS) & NFT_QUEUE_FLAG_BYPASS);
		/* Worker k's queues are 21 + 2k (orig) and 22 + 2k (reply). */
		uint32_t k = *(const uint32_t *)nftnl_expr_get(expr_at(r, 10), NFTNL_EXPR_CMP_DATA, &(uint32_t){0});
		uint8_t dir = *(const uint8_t *)nftnl_expr_get(expr_at(r, 5), NFTNL_EXPR_CMP_DATA, &(uint32_t){0});
		assert_int_equal(q, 21 + 2 * k + dir);
		seen |= 1u << (q - 21);
		nftnl_rule_free(r);
	}
	assert_int_equal(seen, 0xf);
	done(s);
	free(s);
	free(cfg);
}

static const struct pinhole hole = {
    .family = AF_INET,
    .client = {203, 0, 113, 10},
    .local = {203, 0, 113, 1},
    .port = 50000,
    .target = {192, 0, 2, 10},
    .target_port = 40000,
    .timeout = 60,
};

/* The elements of a set-element message: its set, key and data. */
static void elem_of(const struct nlmsghdr *nlh, const char *set, const uint8_t *key, size_t klen, const uint8_t *data,
		    size_t dlen, uint64_t timeout_ms)
{
	struct nftnl_set *s = nftnl_set_alloc();
	assert_int_equal(nftnl_set_elems_nlmsg_parse(nlh, s), 0);
	assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), set);
	struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
	struct nftnl_set_elem *e = nftnl_set_elems_iter_next(it);
	assert_non_null(e);
	uint32_t len = 0;
	const void *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	assert_int_equal(len, klen);
	assert_memory_equal(k, key, klen);
	if (data) {
		const void *d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &len);
		assert_non_null(d);
		assert_int_equal(len, dlen);
		assert_memory_equal(d, data, dlen);
	} else {
		assert_false(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA));
	}
	if (timeout_ms)
		assert_int_equal(nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT), timeout_ms);
	else
		assert_false(nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_TIMEOUT));
	assert_null(nftnl_set_elems_iter_next(it));
	nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
}

static const uint8_t key4[12] = {203, 0, 113, 10, 203, 0, 113, 1, 50000 >> 8, 50000 & 0xff, 0, 0};
static const uint8_t target4[8] = {192, 0, 2, 10, 40000 >> 8, 40000 & 0xff, 0, 0};

static void pinhole_add_writes_key_target_and_timeout(void **state)
{
	(void)state;
	struct sent *s = malloc(sizeof(*s));
	start(s, NFT_QUEUE_XT);
	assert_int_equal(nft_put_pinhole(&s->bt, &hole, NFT_ELEM_ADD), 0);
	finish(s);
	assert_int_equal(s->n, 4);
	assert_true(s->msg[1]->nlmsg_flags & NLM_F_CREATE);
	elem_of(nth(s, NFT_MSG_NEWSETELEM, 0), "once4", key4, sizeof(key4), NULL, 0, 60000);
	elem_of(nth(s, NFT_MSG_NEWSETELEM, 1), "pasv4", key4, sizeof(key4), target4, sizeof(target4), 60000);
	done(s);

	/* And the key decodes back to the pinhole. */
	struct pinhole back;
	assert_int_equal(nft_pinhole_from_key(0, key4, sizeof(key4), &back), 0);
	assert_memory_equal(back.client, hole.client, 4);
	assert_memory_equal(back.local, hole.local, 4);
	assert_int_equal(back.port, 50000);
	assert_int_equal(nft_pinhole_from_key(0, key4, 9, &back), -EINVAL);
	free(s);
}

/*
 * Replacing a pinhole its data connection already used must not abort the
 * batch: the old entries are destroyed (no ENOENT), the new ones added, in
 * one batch.
 */
static void pinhole_replace_destroys_the_old_one(void **state)
{
	(void)state;
	struct pinhole old = hole;
	old.port = 49999;
	uint8_t oldkey[12];
	memcpy(oldkey, key4, sizeof(oldkey));
	oldkey[8] = 49999 >> 8;
	oldkey[9] = 49999 & 0xff;

	struct sent *s = malloc(sizeof(*s));
	start(s, NFT_QUEUE_XT);
	assert_int_equal(nft_put_pinhole(&s->bt, &old, NFT_ELEM_DESTROY), 0);
	assert_int_equal(nft_put_pinhole(&s->bt, &hole, NFT_ELEM_ADD), 0);
	finish(s);
	assert_int_equal(s->n, 6);
	assert_int_equal(type_of(s->msg[1]), NFT_MSG_DESTROYSETELEM_);
	assert_int_equal(type_of(s->msg[2]), NFT_MSG_DESTROYSETELEM_);
	assert_int_equal(type_of(s->msg[3]), NFT_MSG_NEWSETELEM);
	assert_int_equal(type_of(s->msg[4]), NFT_MSG_NEWSETELEM);
	assert_int_equal(count(s, NFT_MSG_DELSETELEM), 0);
	elem_of(s->msg[1], "once4", oldkey, sizeof(oldkey), NULL, 0, 0);
	elem_of(s->msg[2], "pasv4", oldkey, sizeof(oldkey), NULL, 0, 0);
	elem_of(s->msg[4], "pasv4", key4, sizeof(key4), target4, sizeof(target4), 60000);
	done(s);

	/* Where the kernel lacks DESTROY, the caller asks for a plain delete. */
	start(s, NFT_QUEUE_XT);
	assert_int_equal(nft_put_pinhole(&s->bt, &old, NFT_ELEM_DEL), 0);
	finish(s);
	assert_int_equal(count(s, NFT_MSG_DELSETELEM), 2);
	done(s);

	struct pinhole bad = hole;
	bad.family = 0;
	start(s, NFT_QUEUE_XT);
	assert_int_equal(nft_put_pinhole(&s->bt, &bad, NFT_ELEM_ADD), -EAFNOSUPPORT);
	assert_int_equal(nft_batch_end(&s->bt), 0); /* nothing was written */
	done(s);
	free(s);
}

/* Removing a pinhole at session end asks first whether it is still armed: one element, acknowledged. */
static void pinhole_lookup_request(void **state)
{
	(void)state;
	char *buf = calloc(1, 1024);
	struct nlmsghdr *nlh = nft_req_pinhole_get(buf, 7, "ftp_alg", &hole);
	assert_int_equal(type_of(nlh), NFT_MSG_GETSETELEM);
	assert_int_equal(nlh->nlmsg_flags & (NLM_F_ACK | NLM_F_DUMP), NLM_F_ACK);
	assert_int_equal(nlh->nlmsg_seq, 7);
	elem_of(nlh, "once4", key4, sizeof(key4), NULL, 0, 0);
	free(buf);
}

static void ipv6_pinhole_key(void **state)
{
	(void)state;
	struct pinhole h6 = {.family = AF_INET6, .port = 50001, .target_port = 21000, .timeout = 5};
	inet_pton(AF_INET6, "2001:db8:1::10", h6.client);
	inet_pton(AF_INET6, "2001:db8:2::1", h6.local);
	inet_pton(AF_INET6, "2001:db8:3::10", h6.target);
	uint8_t key[36] = {0}, data[20] = {0};
	memcpy(key, h6.client, 16);
	memcpy(key + 16, h6.local, 16);
	key[32] = 50001 >> 8;
	key[33] = 50001 & 0xff;
	memcpy(data, h6.target, 16);
	data[16] = 21000 >> 8;
	data[17] = 21000 & 0xff;
	struct sent *s = malloc(sizeof(*s));
	start(s, NFT_QUEUE_XT);
	assert_int_equal(nft_put_pinhole(&s->bt, &h6, NFT_ELEM_ADD), 0);
	finish(s);
	elem_of(s->msg[1], "once6", key, 36, NULL, 0, 5000);
	elem_of(s->msg[2], "pasv6", key, 36, data, 20, 5000);
	done(s);
	free(s);
}

/* Control ports and a [server] section: the sets are flushed and refilled in one batch. */
static void config_batch_replaces_ports_and_servers(void **state)
{
	(void)state;
	struct alg_config *cfg = cfg_new(1);
	cfg->ncontrol_ports = 1;
	cfg->control_ports[0] = 21;
	cfg->nservers = 1;
	struct cfg_server *sv = &cfg->servers[0];
	sv->family = AF_INET;
	inet_pton(AF_INET, "203.0.113.1", sv->pub);
	sv->pub_port = 2121;
	inet_pton(AF_INET, "192.0.2.11", sv->addr);
	sv->port = 21;

	struct sent *s = malloc(sizeof(*s));
	start(s, NFT_QUEUE_XT);
	nft_put_config(&s->bt, cfg);
	finish(s);
	/* ctl_ports, publish4 and publish6 flushed; ctl_ports and publish4 refilled. */
	assert_int_equal(count(s, NFT_MSG_DELSETELEM), 3);
	assert_int_equal(count(s, NFT_MSG_NEWSETELEM), 2);
	/*
	 * libnftnl 1.2.4 fails to parse a message with several elements, so the
	 * keys are read with libmnl: elements > list elem > key > value.
	 */
	const struct nlmsghdr *nlh = nth(s, NFT_MSG_NEWSETELEM, 0);
	unsigned ports = 0;
	const struct nlattr *a, *el, *k, *v;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET)
			assert_string_equal(mnl_attr_get_str(a), "ctl_ports");
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(el, a) mnl_attr_for_each_nested(k, el)
		{
			if (mnl_attr_get_type(k) != NFTA_SET_ELEM_KEY)
				continue;
			mnl_attr_for_each_nested(v, k)
			{
				assert_int_equal(mnl_attr_get_payload_len(v), 2);
				const uint8_t *p = mnl_attr_get_payload(v);
				unsigned port = (unsigned)(p[0] << 8 | p[1]);
				ports |= port == 21 ? 1 : port == 2121 ? 2 : 4;
			}
		}
	}
	assert_int_equal(ports, 3);
	static const uint8_t pk[8] = {203, 0, 113, 1, 2121 >> 8, 2121 & 0xff, 0, 0};
	static const uint8_t pd[8] = {192, 0, 2, 11, 0, 21, 0, 0};
	elem_of(nth(s, NFT_MSG_NEWSETELEM, 1), "publish4", pk, 8, pd, 8, 0);
	done(s);
	free(s);
	free(cfg);
}

/*
 * The MSS map's elements, read with libmnl (libnftnl 1.2.4 cannot parse
 * several in one message): interval starts in ascending order, each mapped
 * to at least 64 (STREAM_GROW_MAX) below every MSS its range holds.
 */
static void mss_map_lowers_by_the_growth(void **state)
{
	(void)state;
	struct sent *s = malloc(sizeof(*s));
	struct alg_config *cfg = cfg_new(1);
	start(s, NFT_QUEUE_XT);
	nft_put_setup(&s->bt, cfg);
	finish(s);
	const struct nlmsghdr *nlh = NULL;
	for (unsigned i = 0; i < count(s, NFT_MSG_NEWSETELEM); i++) {
		const struct nlattr *a;
		mnl_attr_for_each(a, nth(s, NFT_MSG_NEWSETELEM, i), sizeof(struct nfgenmsg))
		{
			if (mnl_attr_get_type(a) == NFTA_SET_ELEM_LIST_SET &&
			    strcmp(mnl_attr_get_str(a), "mss_clamp") == 0)
				nlh = nth(s, NFT_MSG_NEWSETELEM, i);
		}
	}
	assert_non_null(nlh);
	/* Each range as nft writes it: an end element where the last one ends (0 first), then its start and value. */
	unsigned n = 0, nend = 0, prev = 0, starts[2048], vals[2048], ends[2048];
	const struct nlattr *a, *el, *f, *v;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(el, a)
		{
			unsigned key = 0, val = 0, flags = 0;
			bool has_val = false;
			mnl_attr_for_each_nested(f, el)
			{
				if (mnl_attr_get_type(f) == NFTA_SET_ELEM_FLAGS)
					flags = ntohl(mnl_attr_get_u32(f));
				if (mnl_attr_get_type(f) != NFTA_SET_ELEM_KEY &&
				    mnl_attr_get_type(f) != NFTA_SET_ELEM_DATA)
					continue;
				mnl_attr_for_each_nested(v, f)
				{
					assert_int_equal(mnl_attr_get_payload_len(v), 2);
					const uint8_t *p = mnl_attr_get_payload(v);
					if (mnl_attr_get_type(f) == NFTA_SET_ELEM_KEY) {
						key = (unsigned)(p[0] << 8 | p[1]);
					} else {
						val = (unsigned)(p[0] << 8 | p[1]);
						has_val = true;
					}
				}
			}
			assert_true(n < 2048 && nend < 2048);
			if (flags & NFT_SET_ELEM_INTERVAL_END) {
				assert_false(has_val);
				assert_int_equal(nend, n); /* an end before each start */
				ends[nend++] = key;
			} else {
				assert_true(has_val);
				starts[n] = key;
				vals[n++] = val;
			}
		}
	}
	assert_true(n > 100);
	assert_int_equal(nend, n);
	assert_int_equal(ends[0], 0);
	assert_int_equal(starts[0], 256 + 64 + 1);
	for (unsigned i = 0; i < n; i++) {
		assert_true(starts[i] > prev);
		assert_int_equal(ends[i], i ? starts[i - 1] + 16 : 0);
		assert_int_equal(starts[i], i ? ends[i] : starts[0]);
		prev = starts[i];
		/* The lowest MSS of the range is the start: it and every one above get at least 64 less. */
		assert_true(vals[i] + 64 <= starts[i]);
		assert_true(vals[i] > 256);
		/* And not much more than needed: at most the range's width more. */
		assert_true(starts[i] + 15 - vals[i] < 64 + 16);
	}
	assert_true(starts[n - 1] >= 9000);
	done(s);
	free(s);
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(setup_batch_builds_the_owned_table),
	    cmocka_unit_test(native_queue_and_workers),
	    cmocka_unit_test(pinhole_add_writes_key_target_and_timeout),
	    cmocka_unit_test(pinhole_replace_destroys_the_old_one),
	    cmocka_unit_test(pinhole_lookup_request),
	    cmocka_unit_test(ipv6_pinhole_key),
	    cmocka_unit_test(config_batch_replaces_ports_and_servers),
	    cmocka_unit_test(mss_map_lowers_by_the_growth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
