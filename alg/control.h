/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdio.h>

/*
 * The control socket: a Unix stream socket where a client writes one command
 * line ("status", "status json", "reload") and reads the answer until EOF.
 */
#define CONTROL_DEFAULT_PATH "/run/ftp-alg/control.sock"

int control_listen(const char *path);
void control_close(int fd, const char *path);
/* Accept one client and answer it with respond(); the answer is freed here. */
void control_serve(int fd, char *(*respond)(void *ctx, const char *cmd), void *ctx);
/* Client side: send cmd, copy the answer to out. Returns 0, or -errno if the daemon is unreachable. */
int control_request(const char *path, const char *cmd, FILE *out);
