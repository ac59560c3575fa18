/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "nl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <sys/socket.h>

int nl_open(int bus, int timeout_s, struct mnl_socket **out, uint32_t *portid)
{
	struct mnl_socket *nl = mnl_socket_open(bus);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno ? errno : EPROTONOSUPPORT;
		if (nl)
			mnl_socket_close(nl);
		return -e;
	}
	if (timeout_s > 0) {
		struct timeval tv = {.tv_sec = timeout_s};
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	*portid = mnl_socket_get_portid(nl);
	*out = nl;
	return 0;
}
