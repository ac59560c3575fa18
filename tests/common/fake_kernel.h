/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * A fake kernel behind struct alg_kernel_ops for the unit tests and the fuzz
 * targets: it records what the session layer asks for and answers from what
 * the test put in it. IPv4 only.
 */
#include <stdbool.h>
#include <stdint.h>

#include "alg/session.h"

#define FAKE_KERNEL_MAX 32

struct fake_kernel {
	struct ct_info ct;
	struct ct_info ct2; /* a second connection, when has_ct2 */
	bool has_ct2;
	bool any_flow;	 /* ct_get answers ct whatever flow it is asked about */
	bool seqadj_ext; /* seqadj_set gives ct the seqadj extension, as the kernel does */
	int seqadj_calls;
	int ct_get_calls; /* every ct_get asked, answered or not */
	int last_dir;
	uint32_t last_pos;
	int32_t last_before, last_after;
	/* The last FAKE_KERNEL_MAX pinholes added and deleted; the counts go on. */
	struct pinhole added[FAKE_KERNEL_MAX];
	int nadded;
	struct pinhole deleted[FAKE_KERNEL_MAX];
	int ndeleted;
	uint8_t outside[4];		/* the one address reached via the default route */
	bool consumed[FAKE_KERNEL_MAX]; /* added[i] used by its data connection */
	/* pinhole_add fails with -EEXIST while the key (client, local, port) is armed, as the kernel's set does. */
	bool exclusive;
	/* What ct_predates answers: the conntrack existed before the daemon could see its first packet. */
	bool predates;
	/*
	 * Every seqadj_set per direction, as the kernel keeps it (one correction
	 * point); with seqadj_keep also in ct, so that a later ct_get reads it back.
	 */
	int added_n[FAKE_KERNEL_MAX];	    /* added[i] was the added_n[i]-th pinhole added */
	int deleted_after[FAKE_KERNEL_MAX]; /* deleted[j] came after that many adds */
	bool seqadj_keep;
	uint32_t adj_pos[2];
	int32_t adj_before[2], adj_after[2];
	/* Called for every pinhole added ('a') or deleted ('d'), if set: not bounded by FAKE_KERNEL_MAX. */
	void (*on_pinhole)(void *ctx, int what, const struct pinhole *p);
	void *on_pinhole_ctx;
	int labels_calls;  /* labels_set writes into ct.labels */
	int destroy_calls; /* pinholes_destroy changes (each any number of pinholes) */
	/* Scripted failures: a nonzero -errno here is what that call returns, and nothing is recorded. */
	int labels_err, ct_get_err, seqadj_err, add_err, del_err, via_default_err, armed_err;
};

extern const struct alg_kernel_ops fake_kernel_ops;
