/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

/* The only file that talks rtnetlink: which side of the gateway an address is on. */
struct route;

int route_open(struct route **out);
void route_close(struct route *r);
/* 1 if addr is reached through a default route (the outside), 0 if not, or -errno. */
int route_via_default(struct route *r, int family, const uint8_t *addr);
