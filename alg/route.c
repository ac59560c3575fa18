/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "route.h"
#include "nl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define ROUTE_MAX_IFS 32
/* How long the outside interfaces are trusted before they are looked up again. */
#define ROUTE_REFRESH_S 5

struct if_list {
	int v[ROUTE_MAX_IFS];
	unsigned n;
};

struct route {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	char names[8][IFNAMSIZ];
	unsigned nnames;
	/* Per family (0 IPv4, 1 IPv6): the default routes' interfaces and the named ones. */
	struct if_list outside[2];
	time_t refreshed[2];
};

/* What one answer said: the matched prefix's length and the interfaces it leaves through. */
struct lookup {
	int dst_len;
	bool only_default; /* collect only routes with prefix length 0 (a dump) */
	struct if_list *ifs;
	int ifindex; /* RTM_NEWLINK */
};

int route_open(struct route **out)
{
	struct route *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int e = nl_open(NETLINK_ROUTE, 1, &r->nl, &r->portid);
	if (e < 0) {
		route_close(r);
		return e;
	}
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

void route_set_outside(struct route *r, const char (*names)[16], unsigned n)
{
	if (!r)
		return;
	r->nnames = 0;
	for (unsigned i = 0; i < n && i < sizeof(r->names) / sizeof(r->names[0]); i++) {
		memcpy(r->names[i], names[i], IFNAMSIZ);
		r->names[i][IFNAMSIZ - 1] = '\0';
		r->nnames++;
	}
	r->refreshed[0] = r->refreshed[1] = 0;
}

static void add_if(struct if_list *l, int ifindex)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->v[i] == ifindex)
			return;
	if (l->n < ROUTE_MAX_IFS && ifindex > 0)
		l->v[l->n++] = ifindex;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct lookup *lk = data;
	if (nlh->nlmsg_type == RTM_NEWLINK && nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(struct ifinfomsg))) {
		const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
		lk->ifindex = ifi->ifi_index;
		return MNL_CB_OK;
	}
	if (nlh->nlmsg_type != RTM_NEWROUTE || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct rtmsg)))
		return MNL_CB_OK;
	const struct rtmsg *rm = mnl_nlmsg_get_payload(nlh);
	if (lk->only_default && (rm->rtm_dst_len != 0 || rm->rtm_type != RTN_UNICAST))
		return MNL_CB_OK;
	lk->dst_len = rm->rtm_dst_len;
	struct nlattr *a;
	mnl_attr_for_each(a, nlh, sizeof(*rm))
	{
		if (mnl_attr_get_type(a) == RTA_OIF && mnl_attr_get_payload_len(a) >= sizeof(uint32_t)) {
			add_if(lk->ifs, (int)mnl_attr_get_u32(a));
		} else if (mnl_attr_get_type(a) == RTA_MULTIPATH) {
			/* Each next hop of a multipath route, with its own interface. */
			const char *p = mnl_attr_get_payload(a);
			size_t left = mnl_attr_get_payload_len(a);
			while (left >= sizeof(struct rtnexthop)) {
				const struct rtnexthop *nh = (const struct rtnexthop *)(const void *)p;
				if (nh->rtnh_len < sizeof(*nh) || nh->rtnh_len > left)
					break;
				add_if(lk->ifs, nh->rtnh_ifindex);
				size_t step = RTNH_ALIGN(nh->rtnh_len);
				if (step >= left)
					break;
				p += step;
				left -= step;
			}
		}
	}
	return MNL_CB_OK;
}

/* Send one request and run every answer (a dump may take several reads) through route_cb. */
static int transact(struct route *r, struct nlmsghdr *nlh, struct lookup *lk)
{
	char buf[16384];
	nlh->nlmsg_seq = ++r->seq;
	if (mnl_socket_sendto(r->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(r->nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		int cb = mnl_cb_run(buf, (size_t)n, r->seq, r->portid, route_cb, lk);
		if (cb < 0)
			return -errno;
		/* A single answer ends with its message; a dump with NLMSG_DONE (MNL_CB_STOP). */
		if (cb == MNL_CB_STOP || !(nlh->nlmsg_flags & NLM_F_DUMP))
			return 0;
	}
}

/* The default routes' interfaces of this family and the interfaces Outside= names. */
static int refresh(struct route *r, int family, struct if_list *out)
{
	char buf[512];
	memset(buf, 0, sizeof(buf));
	out->n = 0;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct rtmsg *rm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rm));
	rm->rtm_family = (unsigned char)family;
	struct lookup lk = {.dst_len = -1, .only_default = true, .ifs = out};
	int e = transact(r, nlh, &lk);
	if (e < 0)
		return e;
	for (unsigned i = 0; i < r->nnames; i++) {
		memset(buf, 0, sizeof(buf));
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = RTM_GETLINK;
		nlh->nlmsg_flags = NLM_F_REQUEST;
		mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifinfomsg));
		mnl_attr_put_strz(nlh, IFLA_IFNAME, r->names[i]);
		struct lookup ll = {.dst_len = -1, .ifs = out};
		/* A named interface that does not exist (yet: ppp0 between connections) is no error. */
		if (transact(r, nlh, &ll) == 0 && ll.ifindex > 0)
			add_if(out, ll.ifindex);
	}
	return 0;
}

/* RTM_GETROUTE with RTM_F_FIB_MATCH answers with the FIB entry that matched, prefix length included. */
int route_via_default(struct route *r, int family, const uint8_t *addr)
{
	char buf[512];
	memset(buf, 0, sizeof(buf));
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	struct rtmsg *rm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rm));
	rm->rtm_family = (unsigned char)family;
	rm->rtm_dst_len = family == AF_INET ? 32 : 128;
	rm->rtm_flags = RTM_F_FIB_MATCH;
	mnl_attr_put(nlh, RTA_DST, family == AF_INET ? 4 : 16, addr);
	struct if_list via = {.n = 0};
	struct lookup lk = {.dst_len = -1, .ifs = &via};
	int e = transact(r, nlh, &lk);
	if (e < 0)
		return e;
	if (lk.dst_len < 0)
		return -ENOENT;
	if (lk.dst_len == 0)
		return 1;
	int f = family == AF_INET ? 0 : 1;
	time_t now = time(NULL);
	if (r->refreshed[f] == 0 || now - r->refreshed[f] >= ROUTE_REFRESH_S || now < r->refreshed[f]) {
		e = refresh(r, family, &r->outside[f]);
		if (e < 0)
			return e;
		r->refreshed[f] = now;
	}
	for (unsigned i = 0; i < via.n; i++)
		for (unsigned j = 0; j < r->outside[f].n; j++)
			if (via.v[i] == r->outside[f].v[j])
				return 1;
	return 0;
}
