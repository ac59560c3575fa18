/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* The group's id, or -1 with why filled in (nothing when the default group does not exist). */
static gid_t control_gid(const char *group, char *why, size_t whylen)
{
	struct group gr, *found = NULL;
	char buf[4096];
	const char *name = group[0] ? group : "ftp-alg";
	int e = getgrnam_r(name, &gr, buf, sizeof(buf), &found);
	if (found)
		return found->gr_gid;
	if (group[0] || e)
		snprintf(why, whylen, "no group '%s'%s%s", name, e ? ": " : "", e ? strerror(e) : "");
	return (gid_t)-1;
}

int control_listen(const char *path, const char *group, char *why, size_t whylen)
{
	why[0] = '\0';
	struct sockaddr_un sa;
	int r = fill_addr(path, &sa);
	if (r < 0)
		return r;
	/* The directory, as systemd's RuntimeDirectory= would make it. */
	char dir[sizeof(sa.sun_path)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A socket left by a crashed daemon is stale only if nobody answers on it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	mode_t old = umask(077);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 8) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	gid_t gid = control_gid(group, why, whylen);
	if (gid != (gid_t)-1) {
		/* Group first: a window where the mode is 0660 with the old group would let the wrong group in. */
		if (chown(path, (uid_t)-1, gid) < 0 || chmod(path, 0660) < 0)
			snprintf(why, whylen, "cannot give the socket to group %u: %s", (unsigned)gid, strerror(errno));
	}
	return fd;
}

void control_close(int fd, const char *path)
{
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		/* A client that left must cost an EPIPE, never the daemon (SIGPIPE). */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {fd, POLLOUT, 0};
				if (poll(&p, 1, 1000) > 0)
					continue;
			}
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Receive into buf; keep the first descriptor passed along in *fd and close any other. */
static ssize_t recv_fd(int c, char *buf, size_t len, int *fd)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * 4)];
	} u;
	struct iovec iov = {buf, len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.space, .msg_controllen = sizeof(u.space)};
	ssize_t r = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
	if (r < 0)
		return r;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int got;
			memcpy(&got, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	return r;
}

void control_serve(int fd, char *(*respond)(void *ctx, const struct control_req *req), void *ctx)
{
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	struct control_req req = {.fd = -1};
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		req.privileged = cred.uid == 0 || cred.uid == geteuid();
	char line[256];
	size_t n = 0;
	/* One short command line; a client that dawdles gets nothing. */
	while (n < sizeof(line) - 1) {
		struct pollfd p = {c, POLLIN, 0};
		if (poll(&p, 1, 1000) <= 0)
			break;
		ssize_t r = recv_fd(c, line + n, sizeof(line) - 1 - n, &req.fd);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (memchr(line, '\n', n))
			break;
	}
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	req.cmd = line;
	char *answer = respond(ctx, &req);
	if (req.fd >= 0)
		close(req.fd);
	if (answer) {
		write_all(c, answer, strlen(answer));
		free(answer);
	}
	close(c);
}

int control_request(const char *path, const char *cmd, int pass_fd, FILE *out)
{
	struct sockaddr_un sa;
	int r = fill_addr(path, &sa);
	if (r < 0)
		return r;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (pass_fd >= 0) {
		/* The command line and the descriptor in one message, so the daemon's first read has both. */
		char line[256];
		int len = snprintf(line, sizeof(line), "%s\n", cmd);
		union {
			struct cmsghdr h;
			char space[CMSG_SPACE(sizeof(int))];
		} u;
		memset(&u, 0, sizeof(u));
		struct iovec iov = {line, (size_t)len};
		struct msghdr m = {
		    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.space, .msg_controllen = sizeof(u.space)};
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(h), &pass_fd, sizeof(int));
		if (len < 0 || (size_t)len >= sizeof(line) || sendmsg(fd, &m, MSG_NOSIGNAL) != len) {
			r = len < 0 || (size_t)len >= sizeof(line) ? -ENAMETOOLONG : -errno;
			close(fd);
			return r;
		}
	} else {
		write_all(fd, cmd, strlen(cmd));
		write_all(fd, "\n", 1);
	}
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, out);
	close(fd);
	return 0;
}

void sd_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	close(fd);
}
