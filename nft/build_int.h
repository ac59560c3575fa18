/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What build.c (the table, its rules) and elements.c (set elements, requests) share. */
#include <stdint.h>

#include "batch.h"

struct nlmsghdr;
struct nftnl_set;

/*
 * The register layout nft itself uses for a concatenation: IPv4 fields in
 * consecutive 32-bit registers from reg 1, IPv6 fields in 128-bit registers.
 */
struct pinhole_layout {
	uint8_t nfproto;
	uint32_t alen, saddr_off, daddr_off;
	uint32_t reg_daddr, reg_port;
	/* Where a pinhole's map lookup puts its target, past the key it still needs. */
	uint32_t reg_target, reg_target_port;
	/* Where a [server] lookup puts its target: the key is no longer needed. */
	uint32_t reg_publish_port;
	const char *set, *map;
};

extern const struct pinhole_layout layout4, layout6;

/* The next message of an open batch, and the step past it once its payload is written. */
struct nlmsghdr *batch_msg(struct nft_batch *bt, uint16_t type, uint16_t flags);
void batch_next(struct nft_batch *bt);
/* A set of ours, by name, for a set or element message. */
struct nftnl_set *set_new(const char *table, const char *name);
