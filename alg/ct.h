/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "kernel.h"

/* The only file that talks ctnetlink (through libnetfilter_conntrack). */
struct ct;

int ct_open(struct ct **out);
void ct_close(struct ct *c);
/* Look a conntrack up by the tuple of a packet seen in direction dir. */
int ct_get(struct ct *c, const struct flow *seen, int dir, struct ct_info *out);
/* Set the sequence adjustment of direction dir of the conntrack with this original tuple. */
int ct_seqadj_set(struct ct *c, const struct flow *orig, int dir, uint32_t pos, int32_t before, int32_t after);

/*
 * The conntracks of TCP connections to these control ports that exist now
 * (taken at start, once the queues are bound: a connection whose first
 * packet the daemon could not see; and at each takeover). Read-only; a
 * takeover replaces it with every worker stopped.
 */
struct ct_snapshot;
/* Through c, opened before the sandbox: taken again at every takeover, when no socket may be opened. */
int ct_snapshot_take(struct ct *c, const uint16_t *ports, unsigned nports, struct ct_snapshot **out);
/* ct (same id and original tuple) was in the snapshot. */
bool ct_snapshot_has(const struct ct_snapshot *sn, const struct ct_info *ct);
size_t ct_snapshot_count(const struct ct_snapshot *sn);
void ct_snapshot_free(struct ct_snapshot *sn);
/* Every conntrack of the snapshot, as ct_get would answer (labels included). */
void ct_snapshot_foreach(const struct ct_snapshot *sn, void (*cb)(void *ctx, const struct ct_info *ct), void *ctx);
/* Set the label bits under mask of the conntrack with this original tuple (CTA_LABELS, CTA_LABELS_MASK). */
int ct_labels_set(struct ct *c, const struct flow *orig, const uint8_t labels[16], const uint8_t mask[16]);
