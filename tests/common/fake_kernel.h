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
	int labels_calls; /* labels_set writes into ct.labels */
	/* Scripted failures: a nonzero -errno here is what that call returns, and nothing is recorded. */
	int labels_err, ct_get_err, seqadj_err, add_err, del_err, via_default_err, armed_err;
};

extern const struct alg_kernel_ops fake_kernel_ops;
