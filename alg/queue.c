/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "queue.h"
#include "nl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define QUEUE_MAXLEN 4096

struct queue {
	struct mnl_socket *nl;
	uint32_t portid;
	uint16_t base;
	char *buf;
	size_t buflen;
	queue_handler h;
	void *ctx;
	char *vbuf; /* verdicts not yet sent */
	size_t vlen;
};

/* Room for 64 verdicts with rewritten packets of a full MSS, and then some. */
#define VBUF_SIZE (256 * 1024)

static int send_cfg(struct queue *q, uint16_t num, int (*fill)(struct nlmsghdr *, const void *), const void *arg)
{
	char buf[8192];
	memset(buf, 0, 512);
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
	nlh->nlmsg_flags |= NLM_F_ACK;
	fill(nlh, arg);
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	ssize_t r = mnl_socket_recvfrom(q->nl, buf, sizeof(buf));
	if (r < 0)
		return -errno;
	if (mnl_cb_run(buf, (size_t)r, 0, q->portid, NULL, NULL) < 0)
		return -errno;
	return 0;
}

static int fill_bind(struct nlmsghdr *nlh, const void *arg)
{
	(void)arg;
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	return 0;
}

static int fill_params(struct nlmsghdr *nlh, const void *arg)
{
	(void)arg;
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
	return 0;
}

int queue_open(struct queue **out, uint16_t base)
{
	struct queue *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->base = base;
	q->buflen = 0xffff + 4096;
	q->buf = malloc(q->buflen);
	/* Zeroed: the padding the libraries skip goes to the kernel as it is. */
	q->vbuf = calloc(1, VBUF_SIZE);
	int e = q->buf && q->vbuf ? nl_open(NETLINK_NETFILTER, 0, &q->nl, &q->portid) : -ENOMEM;
	if (e < 0) {
		queue_close(q);
		return e;
	}
	/* Keep packets coming when the receive buffer fills; the kernel drops and TCP resends. */
	int one = 1;
	setsockopt(mnl_socket_get_fd(q->nl), SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	/* Room for bursts (thousands of new sessions a second) before the kernel has to drop. */
	int rcvbuf = 8 << 20;
	if (setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	for (uint16_t i = 0; i < 2; i++) {
		int r = send_cfg(q, (uint16_t)(base + i), fill_bind, NULL);
		if (r == 0)
			r = send_cfg(q, (uint16_t)(base + i), fill_params, NULL);
		if (r < 0) {
			queue_close(q);
			return r;
		}
	}
	*out = q;
	return 0;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	if (q->nl)
		mnl_socket_close(q->nl);
	free(q->buf);
	free(q->vbuf);
	free(q);
}

int queue_fd(const struct queue *q)
{
	return mnl_socket_get_fd(q->nl);
}

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct queue *q = data;
	struct nlattr *attr[NFQA_MAX + 1] = {0};

	if (nfq_nlmsg_parse(nlh, attr) < 0)
		return MNL_CB_OK;
	if (!attr[NFQA_PACKET_HDR] || !attr[NFQA_PAYLOAD])
		return MNL_CB_OK;
	if (mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(struct nfqnl_msg_packet_hdr))
		return MNL_CB_OK;
	const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
	uint16_t num = ntohs(nfg->res_id);
	if (num != q->base && num != q->base + 1)
		return MNL_CB_OK;
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	q->h(q->ctx, num - q->base, ntohl(ph->packet_id), mnl_attr_get_payload(attr[NFQA_PAYLOAD]),
	     mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]));
	return MNL_CB_OK;
}

int queue_receive(struct queue *q, queue_handler h, void *ctx)
{
	q->h = h;
	q->ctx = ctx;
	ssize_t r = recv(queue_fd(q), q->buf, q->buflen, MSG_DONTWAIT);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	int rc = mnl_cb_run(q->buf, (size_t)r, 0, q->portid, packet_cb, q);
	return rc < 0 ? -errno : 1;
}

int queue_flush(struct queue *q)
{
	if (q->vlen == 0)
		return 0;
	int r = mnl_socket_sendto(q->nl, q->vbuf, q->vlen) < 0 ? -errno : 1;
	/* Only what was written is cleared again: the buffer stays zeroed past vlen. */
	memset(q->vbuf, 0, q->vlen);
	q->vlen = 0;
	return r;
}

int queue_verdict(struct queue *q, int dir, uint32_t id, int accept, const uint8_t *data, size_t len)
{
	if (data && len > 0xffff)
		return -EMSGSIZE;
	/* Headers, and the attribute padding after a replacement packet, which libmnl may leave. */
	size_t need = 256 + (data ? len + 8 : 0);
	int r = 0;
	if (q->vlen + need > VBUF_SIZE && (r = queue_flush(q)) > 0)
		r = 0;
	struct nlmsghdr *nlh = nfq_nlmsg_put(q->vbuf + q->vlen, NFQNL_MSG_VERDICT, (uint16_t)(q->base + dir));
	nfq_nlmsg_verdict_put(nlh, (int)id, accept ? NF_ACCEPT : NF_DROP);
	if (accept && data)
		nfq_nlmsg_verdict_put_pkt(nlh, data, (uint32_t)len);
	q->vlen += NLMSG_ALIGN(nlh->nlmsg_len);
	return r;
}
