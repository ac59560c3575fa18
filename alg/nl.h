/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

/*
 * A netlink socket of bus (NETLINK_NETFILTER, NETLINK_ROUTE), bound, with
 * its port id, and a receive timeout if timeout_s > 0, so that a kernel that
 * never answers cannot stop a worker. 0 or -errno (nothing left open).
 */
struct mnl_socket;
int nl_open(int bus, int timeout_s, struct mnl_socket **out, uint32_t *portid);
