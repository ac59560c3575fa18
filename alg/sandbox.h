/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Least privilege, once every socket is open: run as user (when started as
 * root) with CAP_NET_ADMIN only, then allow only the system calls the
 * packet loop, reloads and status need. Returns 0 or -errno; what it could
 * not do is said in why.
 */
int sandbox_enter(const char *user, char *why, unsigned long whylen);
