/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fake_kernel.h"

#include <errno.h>
#include <string.h>

static int f_ct_get(void *k, const struct flow *seen, int dir, struct ct_info *out)
{
	struct fake_kernel *f = k;
	f->ct_get_calls++;
	if (f->ct_get_err)
		return f->ct_get_err;
	if (f->any_flow) {
		*out = f->ct;
		return 0;
	}
	for (int i = 0; i < (f->has_ct2 ? 2 : 1); i++) {
		const struct ct_info *ct = i ? &f->ct2 : &f->ct;
		const struct flow *want = dir == DIR_REPLY ? &ct->reply : &ct->orig;
		if (memcmp(seen->saddr, want->saddr, 4) || memcmp(seen->daddr, want->daddr, 4) ||
		    seen->sport != want->sport || seen->dport != want->dport)
			continue;
		*out = *ct;
		return 0;
	}
	return -ENOENT;
}

static int f_seqadj(void *k, const struct flow *orig, int dir, uint32_t pos, int32_t before, int32_t after)
{
	struct fake_kernel *f = k;
	if (f->seqadj_err)
		return f->seqadj_err;
	f->seqadj_calls++;
	f->last_dir = dir;
	f->last_pos = pos;
	f->last_before = before;
	f->last_after = after;
	/* The connection it names: the second one, if that is it. */
	bool second = f->has_ct2 && !f->any_flow && memcmp(orig->saddr, f->ct2.orig.saddr, 4) == 0 &&
		      orig->sport == f->ct2.orig.sport;
	if (f->seqadj_ext && dir >= 0 && dir < 2)
		(second ? &f->ct2 : &f->ct)->seqadj_present[dir] = true;
	if (dir == 0 || dir == 1) {
		f->adj_pos[dir] = pos;
		f->adj_before[dir] = before;
		f->adj_after[dir] = after;
		if (f->seqadj_keep) {
			f->ct.corr_pos[dir] = pos;
			f->ct.off_before[dir] = before;
			f->ct.off_after[dir] = after;
		}
	}
	return 0;
}

/* p leaves the kernel: recorded, after the adds so far. */
static void record_deleted(struct fake_kernel *f, const struct pinhole *p)
{
	f->deleted_after[f->ndeleted % FAKE_KERNEL_MAX] = f->nadded;
	f->deleted[f->ndeleted++ % FAKE_KERNEL_MAX] = *p;
	if (f->on_pinhole)
		f->on_pinhole(f->on_pinhole_ctx, 'd', p);
}

static int f_del(void *k, const struct pinhole *p)
{
	struct fake_kernel *f = k;
	if (f->del_err)
		return f->del_err;
	record_deleted(f, p);
	for (int i = 0; i < f->nadded && i < FAKE_KERNEL_MAX; i++)
		if (f->added[i].port == p->port && f->consumed[i])
			return 0;
	return 1;
}

/* DESTROYSETELEM: every one goes, armed or not; recorded as deletions. */
static int f_destroy(void *k, const struct pinhole *v, unsigned n)
{
	struct fake_kernel *f = k;
	if (f->del_err)
		return f->del_err;
	f->destroy_calls++;
	for (unsigned i = 0; i < n; i++)
		record_deleted(f, &v[i]);
	return 0;
}

static bool same_key(const struct pinhole *a, const struct pinhole *b)
{
	return a->port == b->port && memcmp(a->client, b->client, 4) == 0 && memcmp(a->local, b->local, 4) == 0;
}

/* Whether the kernel still has this key: added more often than deleted or used. */
static bool key_armed(const struct fake_kernel *f, const struct pinhole *p)
{
	int n = 0;
	for (int i = 0; i < f->nadded && i < FAKE_KERNEL_MAX; i++)
		if (same_key(&f->added[i], p))
			n += f->consumed[i] ? 0 : 1;
	for (int j = 0; j < f->ndeleted && j < FAKE_KERNEL_MAX; j++)
		if (same_key(&f->deleted[j], p))
			n--;
	return n > 0;
}

static int f_add(void *k, const struct pinhole *p, const struct pinhole *replaced)
{
	struct fake_kernel *f = k;
	if (f->add_err)
		return f->add_err;
	if (f->exclusive && key_armed(f, p) && !(replaced && same_key(replaced, p)))
		return -EEXIST;
	if (replaced)
		f_del(k, replaced);
	/* A reused slot holds a new pinhole, not yet used. */
	f->consumed[f->nadded % FAKE_KERNEL_MAX] = false;
	f->added_n[f->nadded % FAKE_KERNEL_MAX] = f->nadded + 1;
	f->added[f->nadded++ % FAKE_KERNEL_MAX] = *p;
	if (f->on_pinhole)
		f->on_pinhole(f->on_pinhole_ctx, 'a', p);
	return 0;
}

static int f_via_default(void *k, int family, const uint8_t *addr)
{
	struct fake_kernel *f = k;
	(void)family;
	if (f->via_default_err)
		return f->via_default_err;
	return memcmp(addr, f->outside, 4) == 0;
}

static int f_armed(void *k, void (*cb)(void *ctx, const struct pinhole *p), void *ctx)
{
	struct fake_kernel *f = k;
	if (f->armed_err)
		return f->armed_err;
	for (int i = 0; i < f->nadded && i < FAKE_KERNEL_MAX; i++) {
		bool gone = f->consumed[i];
		for (int j = 0; j < f->ndeleted && j < FAKE_KERNEL_MAX; j++)
			/* A deletion before this pinhole was added (its port reused) leaves it armed. */
			if (f->deleted[j].port == f->added[i].port && f->deleted_after[j] >= f->added_n[i])
				gone = true;
		if (!gone)
			cb(ctx, &f->added[i]);
	}
	return 0;
}

/* Like ctnetlink's CTA_LABELS with CTA_LABELS_MASK: only the masked bits of ct's labels change. */
static int f_labels(void *k, const struct flow *orig, const uint8_t labels[16], const uint8_t mask[16])
{
	struct fake_kernel *f = k;
	(void)orig;
	f->labels_calls++;
	if (f->labels_err)
		return f->labels_err;
	f->ct.has_labels = true;
	for (int i = 0; i < 16; i++)
		f->ct.labels[i] = (uint8_t)((f->ct.labels[i] & ~mask[i]) | (labels[i] & mask[i]));
	return 0;
}

static bool f_predates(void *k, const struct ct_info *ct)
{
	const struct fake_kernel *f = k;
	(void)ct;
	return f->predates;
}

const struct alg_kernel_ops fake_kernel_ops = {.ct_get = f_ct_get,
					       .ct_predates = f_predates,
					       .seqadj_set = f_seqadj,
					       .labels_set = f_labels,
					       .pinhole_add = f_add,
					       .pinhole_del = f_del,
					       .pinholes_destroy = f_destroy,
					       .via_default = f_via_default,
					       .pinholes_armed = f_armed};
