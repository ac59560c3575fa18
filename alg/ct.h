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
