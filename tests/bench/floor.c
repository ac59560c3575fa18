/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The bench's floor: the least any NFQUEUE consumer can cost on ftp-alg's
 * control path.
 *
 *   floor [--config FILE] [--queue N] [--batch]
 *
 * It creates ftp-alg's own nftables table through nft/nft.c (the same
 * chains, queue rules and pure-ACK skip, from the same configuration file;
 * the server's SYN-ACK crosses too, as every control packet but bare ACKs
 * did when the floor was defined, where ftp-alg keeps it in the kernel),
 * binds the same two queues with the same copy mode, and accepts every
 * packet unread: one recv and one NF_ACCEPT verdict per packet, in one
 * thread. It parses nothing, rewrites nothing, opens no pinhole and sets no
 * sequence offset, so data connections do not work through it; what ftp-alg
 * costs above it is ftp-alg's own work. With --batch it reads what is
 * waiting and accepts it with one NFQNL_MSG_VERDICT_BATCH per queue, to show
 * what batching would save. SIGTERM or SIGINT removes the table and exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/config.h"
#include "nft/nft.h"

#define QUEUE_MAXLEN 4096 /* as alg/queue.c */

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void report(void *ctx, const char *path, int line, const char *msg)
{
	(void)ctx;
	if (line > 0)
		fprintf(stderr, "floor: %s:%d: %s\n", path, line, msg);
	else
		fprintf(stderr, "floor: %s: %s\n", path, msg);
}

struct floor {
	struct mnl_socket *nl;
	uint32_t portid;
	uint16_t base;
	bool batch;
	/* For --batch: the highest packet id seen on each queue since the last verdict, and whether any. */
	uint32_t last[2];
	bool seen[2];
	unsigned long long packets;
	char *buf;
	size_t buflen;
};

static int config_msg(struct floor *f, uint16_t num, bool bind)
{
	char buf[8192];
	memset(buf, 0, 512);
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
	nlh->nlmsg_flags |= NLM_F_ACK;
	if (bind) {
		nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	} else {
		/* The copy mode ftp-alg asks for: the floor pays for the same bytes crossing, then ignores them. */
		nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
		nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
	}
	if (mnl_socket_sendto(f->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	ssize_t r = mnl_socket_recvfrom(f->nl, buf, sizeof(buf));
	if (r < 0)
		return -errno;
	if (mnl_cb_run(buf, (size_t)r, 0, f->portid, NULL, NULL) < 0)
		return -errno;
	return 0;
}

static int queues_open(struct floor *f)
{
	f->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!f->nl || mnl_socket_bind(f->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return -errno;
	f->portid = mnl_socket_get_portid(f->nl);
	/* The socket options alg/queue.c sets, so that bursts meet the same buffer. */
	int fd = mnl_socket_get_fd(f->nl), one = 1, rcvbuf = 8 << 20;
	setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	for (uint16_t i = 0; i < 2; i++) {
		int r = config_msg(f, (uint16_t)(f->base + i), true);
		if (r == 0)
			r = config_msg(f, (uint16_t)(f->base + i), false);
		if (r < 0)
			return r;
	}
	return 0;
}

static int verdict(struct floor *f, int dir, uint32_t id, bool batch)
{
	char buf[256];
	memset(buf, 0, sizeof(buf));
	struct nlmsghdr *nlh =
	    nfq_nlmsg_put(buf, batch ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT, (uint16_t)(f->base + dir));
	nfq_nlmsg_verdict_put(nlh, (int)id, NF_ACCEPT);
	if (mnl_socket_sendto(f->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

/* Only the packet id and the queue are read; the payload attribute is skipped unseen. */
static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct floor *f = data;
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	int dir = ntohs(nfg->res_id) - f->base;
	const struct nlattr *a;

	if (dir != 0 && dir != 1)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(*nfg))
	{
		if (mnl_attr_get_type(a) != NFQA_PACKET_HDR)
			continue;
		if (mnl_attr_get_payload_len(a) < sizeof(struct nfqnl_msg_packet_hdr))
			return MNL_CB_OK;
		const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(a);
		uint32_t id = ntohl(ph->packet_id);
		f->packets++;
		if (!f->batch)
			return verdict(f, dir, id, false) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
		f->last[dir] = id;
		f->seen[dir] = true;
		return MNL_CB_OK;
	}
	return MNL_CB_OK;
}

static int run(struct floor *f)
{
	int fd = mnl_socket_get_fd(f->nl);
	while (!stopping) {
		ssize_t r = recv(fd, f->buf, f->buflen, 0);
		if (r < 0) {
			if (errno == EINTR || errno == ENOBUFS)
				continue;
			return -errno;
		}
		if (mnl_cb_run(f->buf, (size_t)r, 0, f->portid, packet_cb, f) < 0)
			return -errno;
		if (!f->batch)
			continue;
		/* Read what else is waiting, then one verdict per queue covers every id up to the last. */
		while ((r = recv(fd, f->buf, f->buflen, MSG_DONTWAIT)) > 0)
			if (mnl_cb_run(f->buf, (size_t)r, 0, f->portid, packet_cb, f) < 0)
				return -errno;
		for (int dir = 0; dir < 2; dir++)
			if (f->seen[dir]) {
				f->seen[dir] = false;
				if (verdict(f, dir, f->last[dir], true) < 0)
					return -errno;
			}
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: floor [--config FILE] [--queue N] [--batch]\n"
		     "  creates ftp-alg's nftables table from FILE (ftp-alg's configuration) and accepts\n"
		     "  every packet of queues N and N+1 unread; --batch: one batch verdict per read\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"queue", required_argument, NULL, 'q'},
	    {"batch", no_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct alg_config cfg;
	struct floor f = {0};
	const char *path = NULL, *queue = NULL;
	int o;

	config_defaults(&cfg);
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 'q':
			queue = optarg;
			break;
		case 'b':
			f.batch = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (path) {
		int r = config_load(&cfg, path, report, NULL);
		if (r < 0) {
			if (r != -EINVAL)
				fprintf(stderr, "floor: %s: %s\n", path, strerror(-r));
			return 2;
		}
	}
	if (queue && config_set(&cfg, "Queue", queue, "--queue", 0, report, NULL) < 0)
		return 2;
	/* One consumer thread: the queue rules send everything to queues N and N+1. */
	cfg.workers = 1;
	/* The floor as the performance issue defined it: every control packet but bare ACKs crosses. */
	cfg.queue_synack = true;
	f.base = cfg.queue;

	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: recv returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	struct nft *n = NULL;
	int r = nft_open(&n, &cfg);
	if (r < 0) {
		fprintf(stderr, "floor: cannot create nftables table inet %s: %s\n", cfg.table, nft_strerror(r));
		return 1;
	}
	f.buflen = 0xffff + 4096;
	f.buf = malloc(f.buflen);
	r = f.buf ? queues_open(&f) : -ENOMEM;
	if (r < 0) {
		fprintf(stderr, "floor: cannot bind queues %u-%u: %s\n", f.base, f.base + 1, strerror(-r));
	} else {
		fprintf(stderr, "floor started: queues %u-%u (%s), table inet %s, %s verdicts\n", f.base, f.base + 1,
			nft_queue_path_name(nft_queue_path(n)), cfg.table, f.batch ? "batch" : "one-per-packet");
		r = run(&f);
		if (r < 0)
			fprintf(stderr, "floor: %s\n", strerror(-r));
		fprintf(stderr, "floor: stopped after %llu packets\n", f.packets);
	}
	nft_close(n);
	if (f.nl)
		mnl_socket_close(f.nl);
	free(f.buf);
	return r < 0 ? 1 : 0;
}
