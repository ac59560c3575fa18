/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * What ftp-alg asks of nftables, as netlink batches built in memory. Nothing
 * here opens a socket: nft.c sends what these build, and the unit tests parse
 * it back with libnftnl.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../conf/config.h"
#include "nft.h"

#define NFT_SET_CTL_PORTS "ctl_ports"
#define NFT_SET_PURE4	  "pure_ack4"
#define NFT_SET_PURE6	  "pure_ack6"
#define NFT_MAP_MSS	  "mss_clamp"
#define NFT_SET_ONCE4	  "once4"
#define NFT_MAP_PASV4	  "pasv4"
#define NFT_SET_ONCE6	  "once6"
#define NFT_MAP_PASV6	  "pasv6"
#define NFT_MAP_PUBLISH4  "publish4"
#define NFT_MAP_PUBLISH6  "publish6"

/* Kernel 6.3's "delete if present": not in older uapi headers, so named here. */
#define NFT_MSG_DESTROYSETELEM_ 30

struct mnl_nlmsg_batch;
struct nlmsghdr;

struct nft_batch {
	struct mnl_nlmsg_batch *b;
	struct nlmsghdr *last; /* the last message: only it asks for an acknowledgement */
	uint32_t *seq;	       /* the socket's sequence counter */
	uint32_t first_seq;
	const char *table;
	enum nft_queue_path path;
	bool overflow; /* a message did not fit: the batch must not be sent */
};

/*
 * buf holds twice what the batch may carry (libmnl writes the message that
 * does not fit before it finds out), so an overflow stays inside buf.
 */
void nft_batch_begin(struct nft_batch *bt, void *buf, size_t buflen, uint32_t *seq, const char *table,
		     enum nft_queue_path path);
/* Closes the batch; returns the last message's sequence number, or 0 if the batch is empty. */
uint32_t nft_batch_end(struct nft_batch *bt);
const void *nft_batch_head(const struct nft_batch *bt);
size_t nft_batch_size(const struct nft_batch *bt);
void nft_batch_abandon(struct nft_batch *bt);

/* The whole owned table: objects, sets, chains, rules. */
void nft_put_setup(struct nft_batch *bt, const struct alg_config *cfg);
/* Control ports and [server] sections, replacing what the sets held. */
void nft_put_config(struct nft_batch *bt, const struct alg_config *cfg);
void nft_put_table_del(struct nft_batch *bt);

enum nft_elem_op { NFT_ELEM_ADD, NFT_ELEM_DEL, NFT_ELEM_DESTROY };
/* A pinhole's two entries (its key in once, its target in pasv). */
int nft_put_pinhole(struct nft_batch *bt, const struct pinhole *p, enum nft_elem_op op);

/* The dump request for the armed pinhole keys of one family (i = 0: IPv4, 1: IPv6). */
struct nlmsghdr *nft_req_pinholes(void *buf, uint32_t seq, const char *table, int i);
/* The request for one pinhole's key in its once set (IPv4 or IPv6 by p->family). */
struct nlmsghdr *nft_req_pinhole_get(void *buf, uint32_t seq, const char *table, const struct pinhole *p);
/* Decode a pinhole key as nft_put_pinhole wrote it; -EINVAL if too short. */
int nft_pinhole_from_key(int i, const uint8_t *key, size_t klen, struct pinhole *p);
