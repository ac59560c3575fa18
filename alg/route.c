/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "route.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct route {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	int dst_len;
};

int route_open(struct route **out)
{
	struct route *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->nl = mnl_socket_open(NETLINK_ROUTE);
	if (!r->nl || mnl_socket_bind(r->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;
		route_close(r);
		return -(e ? e : EPROTONOSUPPORT);
	}
	struct timeval tv = {.tv_sec = 1};
	setsockopt(mnl_socket_get_fd(r->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r->portid = mnl_socket_get_portid(r->nl);
	r->seq = (uint32_t)time(NULL);
	*out = r;
	return 0;
}

void route_close(struct route *r)
{
	if (!r)
		return;
	if (r->nl)
		mnl_socket_close(r->nl);
	free(r);
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct route *r = data;
	if (nlh->nlmsg_type != RTM_NEWROUTE || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct rtmsg)))
		return MNL_CB_OK;
	const struct rtmsg *rm = mnl_nlmsg_get_payload(nlh);
	r->dst_len = rm->rtm_dst_len;
	return MNL_CB_OK;
}

/* RTM_GETROUTE with RTM_F_FIB_MATCH answers with the FIB entry that matched, prefix length included. */
int route_via_default(struct route *r, int family, const uint8_t *addr)
{
	char buf[8192];
	memset(buf, 0, 512);
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++r->seq;
	struct rtmsg *rm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rm));
	rm->rtm_family = (unsigned char)family;
	rm->rtm_dst_len = family == AF_INET ? 32 : 128;
	rm->rtm_flags = RTM_F_FIB_MATCH;
	mnl_attr_put(nlh, RTA_DST, family == AF_INET ? 4 : 16, addr);
	r->dst_len = -1;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	ssize_t n = mnl_socket_recvfrom(r->nl, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if (mnl_cb_run(buf, (size_t)n, r->seq, r->portid, route_cb, r) < 0)
		return -errno;
	if (r->dst_len < 0)
		return -ENOENT;
	return r->dst_len == 0;
}
