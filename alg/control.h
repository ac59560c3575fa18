/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

/*
 * The control socket: a Unix stream socket where a client writes one command
 * line ("status", "status json", "reload") and reads the answer until EOF.
 */
#define CONTROL_DEFAULT_PATH "/run/ftp-alg/control.sock"

/*
 * Listen at path, mode 0600, or 0660 with group (empty: "ftp-alg" if that group exists) so a
 * monitoring user in it can read the status. why says what about the group did not work.
 */
int control_listen(const char *path, const char *group, char *why, size_t whylen);
void control_close(int fd, const char *path);
/* One command as the daemon received it. */
struct control_req {
	const char *cmd;
	/* A descriptor the client passed along (SCM_RIGHTS), or -1; the responder may read it, not close it. */
	int fd;
	/* The client is root or runs as the daemon's user (SO_PEERCRED): it may reload. */
	bool privileged;
};

/* Accept one client and answer it with respond(); the answer is freed here. */
void control_serve(int fd, char *(*respond)(void *ctx, const struct control_req *req), void *ctx);
/*
 * Client side: send cmd (with pass_fd if it is not -1), copy the answer to out.
 * Returns 0, or -errno if the daemon is unreachable.
 */
int control_request(const char *path, const char *cmd, int pass_fd, FILE *out);

/* Send msg to the service manager's $NOTIFY_SOCKET (sd_notify(3)'s protocol), if there is one. */
void sd_notify(const char *msg);
