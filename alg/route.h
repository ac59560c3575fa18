/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdint.h>

/* The only file that talks rtnetlink: which side of the gateway an address is on. */
struct route;

int route_open(struct route **out);
void route_close(struct route *r);
/* The interfaces named by Outside=; resolved to indexes at the next lookups. */
void route_set_outside(struct route *r, const char (*names)[16], unsigned n);
/*
 * 1 if addr is outside: the route to it is a default route, or leaves through
 * an interface of a default route of its family or one named by Outside=
 * (so an outside peer on the WAN link itself, or behind a more specific
 * route there, counts); 0 if not; -errno if unknown.
 */
int route_via_default(struct route *r, int family, const uint8_t *addr);
