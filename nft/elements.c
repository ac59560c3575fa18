/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Set elements and element requests: control ports and published servers,
 * pinholes added, removed and looked up, and pinhole keys read back.
 */
#include "batch.h"
#include "build_int.h"

#include <netinet/in.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <string.h>
#include <sys/socket.h>

static void put_elements(struct nft_batch *bt, const char *set, const uint8_t (*keys)[20], const uint8_t (*data)[20],
			 unsigned n, uint32_t klen, uint32_t dlen)
{
	struct nftnl_set *s = set_new(bt->table, set);
	struct nlmsghdr *nlh = batch_msg(bt, NFT_MSG_DELSETELEM, 0); /* no elements given: flush */
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	batch_next(bt);
	if (n > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct nftnl_set_elem *e = nftnl_set_elem_alloc();
			nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, keys[i], klen);
			if (data)
				nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data[i], dlen);
			nftnl_set_elem_add(s, e);
		}
		put_set_elems(bt, s);
	}
	nftnl_set_free(s);
}

void nft_put_config(struct nft_batch *bt, const struct alg_config *cfg)
{
	static uint8_t ports[CONFIG_MAX_CONTROL_PORTS + CONFIG_MAX_SERVERS][20];
	static uint8_t k4[CONFIG_MAX_SERVERS][20], d4[CONFIG_MAX_SERVERS][20];
	static uint8_t k6[CONFIG_MAX_SERVERS][20], d6[CONFIG_MAX_SERVERS][20];
	unsigned np = 0, n4 = 0, n6 = 0;

	memset(ports, 0, sizeof(ports));
	for (unsigned i = 0; i < cfg->ncontrol_ports; i++) {
		uint16_t p = htons(cfg->control_ports[i]);
		memcpy(ports[np++], &p, 2);
	}
	for (unsigned i = 0; i < cfg->nservers; i++) {
		const struct cfg_server *sv = &cfg->servers[i];
		uint16_t pp = htons(sv->pub_port), sp = htons(sv->port);
		bool dup = false;
		for (unsigned j = 0; j < np; j++)
			dup |= memcmp(ports[j], &pp, 2) == 0;
		if (!dup)
			memcpy(ports[np++], &pp, 2);
		size_t al = sv->family == AF_INET ? 4 : 16;
		uint8_t *k = sv->family == AF_INET ? k4[n4] : k6[n6];
		uint8_t *d = sv->family == AF_INET ? d4[n4++] : d6[n6++];
		memset(k, 0, 20);
		memset(d, 0, 20);
		memcpy(k, sv->pub, al);
		memcpy(k + al, &pp, 2);
		memcpy(d, sv->addr, al);
		memcpy(d + al, &sp, 2);
	}
	/* One batch: control ports and published servers change together. */
	put_elements(bt, NFT_SET_CTL_PORTS, (const uint8_t(*)[20])ports, NULL, np, 2, 0);
	put_elements(bt, NFT_MAP_PUBLISH4, (const uint8_t(*)[20])k4, (const uint8_t(*)[20])d4, n4, 8, 8);
	put_elements(bt, NFT_MAP_PUBLISH6, (const uint8_t(*)[20])k6, (const uint8_t(*)[20])d6, n6, 20, 20);
}

static size_t pinhole_key(const struct pinhole_layout *l, const struct pinhole *p, uint8_t key[36])
{
	size_t al = l->alen;
	uint16_t port = htons(p->port);
	memset(key, 0, 36);
	memcpy(key, p->client, al);
	memcpy(key + al, p->local, al);
	memcpy(key + 2 * al, &port, 2);
	return 2 * al + 4;
}

/*
 * A pinhole's two entries (its key in once, its target in pasv) into an open
 * batch: added with their timeout, or removed. NFT_ELEM_DEL fails the whole
 * batch with ENOENT when the entry is gone (and the kernel's abort waits for
 * an RCU grace period, some milliseconds); NFT_ELEM_DESTROY does not fail.
 */
int nft_put_pinhole(struct nft_batch *bt, const struct pinhole *p, enum nft_elem_op op)
{
	static const uint16_t types[] = {
	    [NFT_ELEM_ADD] = NFT_MSG_NEWSETELEM,
	    [NFT_ELEM_DEL] = NFT_MSG_DELSETELEM,
	    [NFT_ELEM_DESTROY] = NFT_MSG_DESTROYSETELEM_,
	};
	uint8_t key[36], data[20] = {0};

	if (p->family != AF_INET && p->family != AF_INET6)
		return -EAFNOSUPPORT;
	if ((unsigned)op >= sizeof(types) / sizeof(types[0]))
		return -EINVAL;
	const struct pinhole_layout *l = p->family == AF_INET ? &layout4 : &layout6;
	size_t klen = pinhole_key(l, p, key), dlen = l->alen + 4;
	uint16_t port = htons(p->target_port);
	memcpy(data, p->target, l->alen);
	memcpy(data + l->alen, &port, 2);

	for (int i = 0; i < 2; i++) {
		bool map = i == 1;
		struct nftnl_set *s = set_new(bt->table, map ? l->map : l->set);
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)klen);
		if (op == NFT_ELEM_ADD) {
			if (map)
				nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, (uint32_t)dlen);
			nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, (uint64_t)p->timeout * 1000);
		}
		nftnl_set_elem_add(s, e);
		struct nlmsghdr *nlh = batch_msg(bt, types[op], op == NFT_ELEM_ADD ? NLM_F_CREATE : 0);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		nftnl_set_free(s);
		batch_next(bt);
	}
	return 0;
}

struct nlmsghdr *nft_req_pinholes(void *buf, uint32_t seq, const char *table, int i)
{
	const struct pinhole_layout *l = i ? &layout6 : &layout4;
	struct nftnl_set *s = set_new(table, l->set);
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, seq);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return nlh;
}

struct nlmsghdr *nft_req_pinhole_get(void *buf, uint32_t seq, const char *table, const struct pinhole *p)
{
	const struct pinhole_layout *l = p->family == AF_INET ? &layout4 : &layout6;
	uint8_t key[36];
	size_t klen = pinhole_key(l, p, key);
	struct nftnl_set *s = set_new(table, l->set);
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)klen);
	nftnl_set_elem_add(s, e);
	/* The acknowledgement ends the answer: the element, then 0; or ENOENT. */
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_ACK, seq);
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	nftnl_set_free(s);
	return nlh;
}

int nft_pinhole_from_key(int i, const uint8_t *key, size_t klen, struct pinhole *p)
{
	const struct pinhole_layout *l = i ? &layout6 : &layout4;
	size_t al = l->alen;
	if (!key || klen < 2 * al + 2)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	p->family = i ? AF_INET6 : AF_INET;
	memcpy(p->client, key, al);
	memcpy(p->local, key + al, al);
	p->port = (uint16_t)(key[2 * al] << 8 | key[2 * al + 1]);
	return 0;
}
