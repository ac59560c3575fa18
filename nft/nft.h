/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "../alg/kernel.h"
#include "../conf/config.h"

/*
 * The only file that programs nftables. ftp-alg owns one table (inet
 * ftp_alg by default) created with the owner flag: the kernel deletes it,
 * with every pinhole in it, when the daemon's netlink socket closes, so a
 * crash leaves no hole open.
 */
struct nft;

enum nft_queue_path { NFT_QUEUE_NATIVE, NFT_QUEUE_XT };

int nft_open(struct nft **out, const struct alg_config *cfg);
void nft_close(struct nft *n); /* deletes the table */
enum nft_queue_path nft_queue_path(const struct nft *n);
const char *nft_queue_path_name(enum nft_queue_path p);

/* Control ports and [server] sections into the kernel, in one batch (start and reload). */
int nft_apply_config(struct nft *n, const struct alg_config *cfg);

/* Adds p; removes replaced (if not NULL) in the same batch. */
int nft_pinhole_add(struct nft *n, const struct pinhole *p, const struct pinhole *replaced);
/* Removes p if still armed: 1 if it was, 0 if it had been used or had expired, or -errno. */
int nft_pinhole_del(struct nft *n, const struct pinhole *p);
/*
 * Removes the n pinholes, whether still armed or not, in as few batches as
 * fit; -EOPNOTSUPP without DESTROYSETELEM (a delete of a used one would
 * abort its batch).
 */
int nft_pinholes_destroy(struct nft *n, const struct pinhole *v, unsigned count);
/* Whether removals use NFT_MSG_DESTROYSETELEM (kernel 6.3+), which never aborts a batch. */
bool nft_has_destroy(const struct nft *n);
/* How many batches the kernel refused since start (the probe at start aside). */
uint64_t nft_failed_batches(const struct nft *n);

/* Call cb for every pinhole still armed in the kernel (key fields only). */
int nft_pinholes_armed(struct nft *n, void (*cb)(void *ctx, const struct pinhole *p), void *ctx);

/* Call cb for each nft ct helper object of type "ftp" outside our table. */
int nft_find_ftp_helpers(struct nft *n, void (*cb)(void *ctx, const char *table, const char *name), void *ctx);

const char *nft_strerror(int err);
