/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "nft.h"
#include "../alg/nl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "batch.h"

struct nft {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	char table[32];
	enum nft_queue_path path;
	bool destroy;	 /* the kernel has NFT_MSG_DESTROYSETELEM (6.3+) */
	uint64_t failed; /* batches the kernel refused: each one costs an abort (an RCU grace period) */
	char *buf;
	size_t buflen;
};

static void begin(struct nft_batch *bt, struct nft *n)
{
	nft_batch_begin(bt, n->buf, n->buflen, &n->seq, n->table, n->path);
}

/*
 * Send one atomic batch and wait for its answer: the answer to its last
 * message or, if the kernel refused the whole batch, to its first header.
 */
static int commit(struct nft *n, struct nft_batch *bt)
{
	char rbuf[16384];
	int err = 0;

	uint32_t last_seq = nft_batch_end(bt);
	if (bt->overflow) {
		nft_batch_abandon(bt);
		return -EMSGSIZE;
	}
	if (last_seq == 0) {
		nft_batch_abandon(bt);
		return 0;
	}
	ssize_t len = mnl_socket_sendto(n->nl, nft_batch_head(bt), nft_batch_size(bt));
	nft_batch_abandon(bt);
	if (len < 0)
		return -errno;
	for (;;) {
		ssize_t r = mnl_socket_recvfrom(n->nl, rbuf, sizeof(rbuf));
		if (r < 0)
			return err ? err : -errno;
		for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)rbuf; mnl_nlmsg_ok(nlh, (int)r);
		     nlh = mnl_nlmsg_next(nlh, (int *)&r)) {
			/* Only this batch's answers count; anything else is stale. */
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq - bt->first_seq >= n->seq - bt->first_seq)
				continue;
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
			if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
				return -EBADMSG;
			if (e->error < 0 && err == 0)
				err = e->error;
			if (nlh->nlmsg_seq == last_seq || nlh->nlmsg_seq == bt->first_seq) {
				n->failed += err < 0;
				return err;
			}
		}
	}
}

static int setup(struct nft *n, const struct alg_config *cfg)
{
	struct nft_batch bt;
	begin(&bt, n);
	nft_put_setup(&bt, cfg);
	return commit(n, &bt);
}

/*
 * Whether the kernel has DESTROYSETELEM: destroy a key that cannot be there.
 * A kernel without it refuses the message type.
 */
static bool probe_destroy(struct nft *n)
{
	struct pinhole p = {.family = AF_INET, .port = 0};
	struct nft_batch bt;
	begin(&bt, n);
	if (nft_put_pinhole(&bt, &p, NFT_ELEM_DESTROY) < 0) {
		nft_batch_abandon(&bt);
		return false;
	}
	return commit(n, &bt) == 0;
}

int nft_open(struct nft **out, const struct alg_config *cfg)
{
	struct nft *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->buflen = 1 << 18;	       /* batches of up to 128 KiB: the table with its MSS map is about 60 */
	n->buf = calloc(1, n->buflen); /* netlink padding the libraries skip must not be stack or heap leftovers */
	int e = n->buf ? nl_open(NETLINK_NETFILTER, 2, &n->nl, &n->portid) : -ENOMEM;
	if (e < 0) {
		nft_close(n);
		return e;
	}
	n->seq = (uint32_t)time(NULL);
	snprintf(n->table, sizeof(n->table), "%s", cfg->table);

	/* Prefer the native queue expression; this batch fails atomically where it is missing. */
	n->path = NFT_QUEUE_NATIVE;
	int r = setup(n, cfg);
	if (r == -ENOENT || r == -EOPNOTSUPP) {
		n->path = NFT_QUEUE_XT;
		r = setup(n, cfg);
	}
	if (r == 0)
		r = nft_apply_config(n, cfg);
	if (r < 0) {
		mnl_socket_close(n->nl);
		n->nl = NULL;
		nft_close(n);
		return r;
	}
	n->destroy = probe_destroy(n);
	n->failed = 0; /* the queue path and DESTROY probes fail by design where those are missing */
	*out = n;
	return 0;
}

int nft_apply_config(struct nft *n, const struct alg_config *cfg)
{
	/* One batch: control ports and published servers change together. */
	struct nft_batch bt;
	begin(&bt, n);
	nft_put_config(&bt, cfg);
	return commit(n, &bt);
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	if (n->nl) {
		struct nft_batch bt;
		begin(&bt, n);
		nft_put_table_del(&bt);
		commit(n, &bt);
		mnl_socket_close(n->nl);
	}
	free(n->buf);
	free(n);
}

enum nft_queue_path nft_queue_path(const struct nft *n)
{
	return n->path;
}

const char *nft_queue_path_name(enum nft_queue_path p)
{
	return p == NFT_QUEUE_NATIVE ? "native nft queue" : "xt NFQUEUE via nft_compat";
}

uint64_t nft_failed_batches(const struct nft *n)
{
	return n->failed;
}

bool nft_has_destroy(const struct nft *n)
{
	return n->destroy;
}

/*
 * One batch removes the replaced pinhole and adds the new one. The replaced
 * one has often been used meanwhile (its data connection removed both of its
 * entries), so it is destroyed, which does not fail when it is gone. On a
 * kernel without DESTROYSETELEM a delete of a used pinhole aborts the batch
 * with ENOENT, and the new one then goes in alone.
 */
int nft_pinhole_add(struct nft *n, const struct pinhole *p, const struct pinhole *replaced)
{
	struct nft_batch bt;
	int r;

	if (replaced) {
		begin(&bt, n);
		r = nft_put_pinhole(&bt, replaced, n->destroy ? NFT_ELEM_DESTROY : NFT_ELEM_DEL);
		if (r == 0)
			r = nft_put_pinhole(&bt, p, NFT_ELEM_ADD);
		if (r == 0)
			r = commit(n, &bt);
		else
			nft_batch_abandon(&bt);
		if (r != -ENOENT)
			return r;
	}
	begin(&bt, n);
	r = nft_put_pinhole(&bt, p, NFT_ELEM_ADD);
	if (r < 0) {
		nft_batch_abandon(&bt);
		return r;
	}
	return commit(n, &bt);
}

/* Send a dump request and run cb over every reply until the dump ends. */
static int dump(struct nft *n, const struct nlmsghdr *req, char *buf, size_t buflen, uint32_t seq, mnl_cb_t cb,
		void *data)
{
	if (mnl_socket_sendto(n->nl, req, req->nlmsg_len) < 0)
		return -errno;
	int r;
	do {
		ssize_t len = mnl_socket_recvfrom(n->nl, buf, buflen);
		if (len < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)len, seq, n->portid, cb, data);
	} while (r > 0);
	return r < 0 ? -errno : 0;
}

static int ignore_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_OK;
}

/* 1 if p's key is still in its once set, 0 if not (used or expired), or -errno. */
static int still_armed(struct nft *n, const struct pinhole *p)
{
	char buf[1024] = {0};
	uint32_t seq = n->seq++;
	struct nlmsghdr *nlh = nft_req_pinhole_get(buf, seq, n->table, p);
	int r = dump(n, nlh, buf, sizeof(buf), seq, ignore_cb, NULL);
	return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

/*
 * A lookup first, which fails alone, then a removal only if the pinhole is
 * still armed: a removal of a used one would abort its batch (or, with
 * DESTROYSETELEM, not say that it was used).
 */
int nft_pinhole_del(struct nft *n, const struct pinhole *p)
{
	int r = still_armed(n, p);
	if (r <= 0)
		return r;
	struct nft_batch bt;
	begin(&bt, n);
	r = nft_put_pinhole(&bt, p, n->destroy ? NFT_ELEM_DESTROY : NFT_ELEM_DEL);
	if (r < 0) {
		nft_batch_abandon(&bt);
		return r;
	}
	r = commit(n, &bt);
	return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

/* Two messages of about 100 bytes per pinhole: 128 fill less than half of the 64 KiB batch buffer. */
#define DESTROY_PER_BATCH 128

int nft_pinholes_destroy(struct nft *n, const struct pinhole *v, unsigned count)
{
	if (!n->destroy)
		return -EOPNOTSUPP;
	int err = 0;
	for (unsigned i = 0; i < count; i += DESTROY_PER_BATCH) {
		struct nft_batch bt;
		begin(&bt, n);
		int r = 0;
		for (unsigned j = i; j < count && j < i + DESTROY_PER_BATCH && r == 0; j++)
			r = nft_put_pinhole(&bt, &v[j], NFT_ELEM_DESTROY);
		if (r < 0)
			nft_batch_abandon(&bt);
		else
			r = commit(n, &bt);
		if (r < 0 && err == 0)
			err = r;
	}
	return err;
}

struct dump_ctx {
	int family_index;
	void (*cb)(void *ctx, const struct pinhole *p);
	void *ctx;
};

static int elems_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *d = data;
	struct nftnl_set *s = nftnl_set_alloc();
	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0) {
		struct nftnl_set_elems_iter *it = nftnl_set_elems_iter_create(s);
		struct nftnl_set_elem *e;
		while (it && (e = nftnl_set_elems_iter_next(it))) {
			uint32_t klen = 0;
			const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &klen);
			struct pinhole p;
			if (nft_pinhole_from_key(d->family_index, key, klen, &p) < 0)
				continue;
			d->cb(d->ctx, &p);
		}
		if (it)
			nftnl_set_elems_iter_destroy(it);
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
}

int nft_pinholes_armed(struct nft *n, void (*cb)(void *ctx, const struct pinhole *p), void *ctx)
{
	char buf[16384];

	for (int i = 0; i < 2; i++) {
		memset(buf, 0, 1024); /* the request part: no leftovers go to the kernel */
		uint32_t seq = n->seq++;
		struct nlmsghdr *nlh = nft_req_pinholes(buf, seq, n->table, i);
		struct dump_ctx d = {.family_index = i, .cb = cb, .ctx = ctx};
		int r = dump(n, nlh, buf, sizeof(buf), seq, elems_cb, &d);
		if (r < 0)
			return r;
	}
	return 0;
}

struct helper_dump {
	const char *own;
	void (*cb)(void *ctx, const char *table, const char *name);
	void *ctx;
};

static int obj_cb(const struct nlmsghdr *nlh, void *data)
{
	struct helper_dump *d = data;
	struct nftnl_obj *o = nftnl_obj_alloc();
	if (o && nftnl_obj_nlmsg_parse(nlh, o) == 0 && nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) == NFT_OBJECT_CT_HELPER) {
		const char *helper = nftnl_obj_get_str(o, NFTNL_OBJ_CT_HELPER_NAME);
		const char *table = nftnl_obj_get_str(o, NFTNL_OBJ_TABLE);
		if (helper && strcmp(helper, "ftp") == 0 && table && strcmp(table, d->own) != 0)
			d->cb(d->ctx, table, nftnl_obj_get_str(o, NFTNL_OBJ_NAME));
	}
	nftnl_obj_free(o);
	return MNL_CB_OK;
}

int nft_find_ftp_helpers(struct nft *n, void (*cb)(void *ctx, const char *table, const char *name), void *ctx)
{
	char buf[16384];
	memset(buf, 0, 1024);
	uint32_t seq = n->seq++;
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_UNSPEC, NLM_F_DUMP, seq);
	struct nftnl_obj *o = nftnl_obj_alloc();
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_CT_HELPER);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	struct helper_dump d = {.own = n->table, .cb = cb, .ctx = ctx};
	return dump(n, nlh, buf, sizeof(buf), seq, obj_cb, &d);
}

const char *nft_strerror(int err)
{
	switch (-err) {
	case EPERM:
		return "permission denied (ftp-alg needs CAP_NET_ADMIN)";
	case EEXIST:
	case EBUSY:
		return "the table already exists (is another ftp-alg running in this network namespace?)";
	case ENOENT:
	case EOPNOTSUPP:
		return "the kernel lacks an nftables feature ftp-alg needs (nft_ct, nft_nat, nft_compat + xt_NFQUEUE)";
	default:
		return strerror(-err);
	}
}
