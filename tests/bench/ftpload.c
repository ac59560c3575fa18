/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A fast FTP responder and load client for scripts/bench.
 *
 *   ftpload serve ADDR PORT
 *     One epoll loop (several may share ADDR PORT, SO_REUSEPORT): 220, USER/PASS, PASV/EPSV (a listener per session),
 *     RETR (1024 known bytes on the data connection), QUIT. Enough of FTP
 *     for an ALG to see a real dialogue, at thousands of sessions a second.
 *
 *   ftpload rate HOST PORT PROCS SECONDS [MAX]
 *     PROCS processes each run whole sessions (connect, login, PASV, QUIT)
 *     back to back, for SECONDS or until MAX sessions are done; prints
 *     {"sessions":N,"errors":N,"seconds":S}. With FTPLOAD_SOURCES=A,B,...
 *     process i connects from address i mod their number (many clients).
 *
 *   ftpload hold HOST PORT N
 *     Opens N sessions and keeps them, each with a PASV answered (so each
 *     has a pinhole armed), timing each PASV round trip; prints the
 *     round-trip percentiles for the first 10 and for 100 more once all N
 *     are open, then fetches through every session and checks the bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 1024

static char pattern(size_t i)
{
	return (char)('a' + i % 26);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
	struct rlimit r = {200000, 200000};
	if (setrlimit(RLIMIT_NOFILE, &r) < 0) {
		getrlimit(RLIMIT_NOFILE, &r);
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* ---- responder ---- */

enum { K_LISTEN, K_CTL, K_PASV, K_DATA };

struct conn {
	int kind;
	int fd;
	struct conn *ctl; /* for a passive listener: its session */
	struct conn *pasv;
	char in[512];
	size_t inlen;
	int want_retr; /* RETR seen, data connection not yet served */
	struct sockaddr_in local;
};

static int epfd;

static void watch(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void say(struct conn *c, const char *s)
{
	ssize_t r = send(c->fd, s, strlen(s), MSG_NOSIGNAL);
	(void)r;
}

static void close_conn(struct conn *c)
{
	if (c->pasv) {
		close(c->pasv->fd);
		free(c->pasv);
	}
	close(c->fd);
	free(c);
}

static void serve_data(struct conn *ctl, int dfd)
{
	char buf[PAYLOAD];
	for (size_t i = 0; i < PAYLOAD; i++)
		buf[i] = pattern(i);
	int fl = fcntl(dfd, F_GETFL);
	fcntl(dfd, F_SETFL, fl & ~O_NONBLOCK);
	ssize_t r = send(dfd, buf, sizeof(buf), MSG_NOSIGNAL);
	(void)r;
	close(dfd);
	say(ctl, "226 Transfer complete.\r\n");
}

static void on_line(struct conn *c, char *line)
{
	if (!strncasecmp(line, "USER", 4)) {
		say(c, "331 Please specify the password.\r\n");
	} else if (!strncasecmp(line, "PASS", 4)) {
		say(c, "230 Login successful.\r\n");
	} else if (!strncasecmp(line, "PASV", 4) || !strncasecmp(line, "EPSV", 4)) {
		if (c->pasv) {
			close(c->pasv->fd);
			free(c->pasv);
			c->pasv = NULL;
		}
		struct conn *p = calloc(1, sizeof(*p));
		struct sockaddr_in a = c->local;
		socklen_t al = sizeof(a);
		a.sin_port = 0;
		p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (bind(p->fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(p->fd, 4) < 0 ||
		    getsockname(p->fd, (struct sockaddr *)&a, &al) < 0) {
			close(p->fd);
			free(p);
			say(c, "425 Cannot open a passive port.\r\n");
			return;
		}
		p->kind = K_PASV;
		p->ctl = c;
		c->pasv = p;
		watch(p);
		char r[128];
		const uint8_t *ip = (const uint8_t *)&a.sin_addr;
		unsigned port = ntohs(a.sin_port);
		if (!strncasecmp(line, "PASV", 4))
			snprintf(r, sizeof(r), "227 Entering Passive Mode (%u,%u,%u,%u,%u,%u).\r\n", ip[0], ip[1],
				 ip[2], ip[3], port >> 8, port & 255);
		else
			snprintf(r, sizeof(r), "229 Entering Extended Passive Mode (|||%u|)\r\n", port);
		say(c, r);
	} else if (!strncasecmp(line, "RETR", 4)) {
		if (!c->pasv) {
			say(c, "425 Use PASV first.\r\n");
			return;
		}
		say(c, "150 Opening BINARY mode data connection.\r\n");
		int d = accept4(c->pasv->fd, NULL, NULL, 0);
		if (d >= 0)
			serve_data(c, d);
		else
			c->want_retr = 1;
	} else if (!strncasecmp(line, "QUIT", 4)) {
		say(c, "221 Goodbye.\r\n");
	} else {
		say(c, "200 ok\r\n");
	}
}

static int serve(const char *addr, int port)
{
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
		return 2;
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Several responders may share the port: each session needs two descriptors, and a
	 * container may not raise RLIMIT_NOFILE far enough for 10,000 of them in one process. */
	setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 4096) < 0) {
		perror("ftpload serve");
		return 1;
	}
	epfd = epoll_create1(0);
	struct conn *l = calloc(1, sizeof(*l));
	l->kind = K_LISTEN;
	l->fd = ls;
	watch(l);
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->kind == K_LISTEN) {
				int fd;
				while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct conn *k = calloc(1, sizeof(*k));
					socklen_t sl = sizeof(k->local);
					k->kind = K_CTL;
					k->fd = fd;
					getsockname(fd, (struct sockaddr *)&k->local, &sl);
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					watch(k);
					say(k, "220 ftpload ready.\r\n");
				}
			} else if (c->kind == K_PASV) {
				struct conn *ctl = c->ctl;
				if (!ctl->want_retr)
					continue; /* the data connection waits in the backlog for RETR */
				int d = accept4(c->fd, NULL, NULL, 0);
				if (d >= 0) {
					ctl->want_retr = 0;
					serve_data(ctl, d);
				}
			} else {
				ssize_t r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
				if (r <= 0) {
					if (r < 0 && errno == EAGAIN)
						continue;
					close_conn(c);
					continue;
				}
				c->inlen += (size_t)r;
				char *nl;
				int quit = 0;
				while (!quit && (nl = memchr(c->in, '\n', c->inlen))) {
					*nl = '\0';
					quit = !strncasecmp(c->in, "QUIT", 4);
					on_line(c, c->in);
					size_t used = (size_t)(nl - c->in) + 1;
					memmove(c->in, nl + 1, c->inlen - used);
					c->inlen -= used;
				}
				if (quit || c->inlen == sizeof(c->in) - 1)
					close_conn(c);
			}
		}
	}
}

/* ---- clients ---- */

struct ctl {
	int fd;
	char buf[1024];
	size_t len;
};

static int dial_timeout = 10;
static struct in_addr source; /* 0: the kernel chooses */

static int dial(const char *host, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, host, &a.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr = source};
	if (source.s_addr && bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0) {
		close(fd);
		return -1;
	}
	struct timeval tv = {dial_timeout, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The next final reply line (code and a space) into line; returns its code or -1. */
static int reply(struct ctl *c, char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t l = (size_t)(nl - c->buf) + 1;
			int final = l >= 4 && c->buf[3] == ' ';
			int code = -1;
			if (l >= 3 && c->buf[0] >= '1' && c->buf[0] <= '5' && c->buf[1] >= '0' && c->buf[1] <= '9' &&
			    c->buf[2] >= '0' && c->buf[2] <= '9')
				code = (c->buf[0] - '0') * 100 + (c->buf[1] - '0') * 10 + (c->buf[2] - '0');
			if (final && line) {
				size_t k = l < cap - 1 ? l : cap - 1;
				memcpy(line, c->buf, k);
				line[k] = '\0';
			}
			memmove(c->buf, nl + 1, c->len - l);
			c->len -= l;
			if (final)
				return code;
			continue;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

static int cmd(struct ctl *c, const char *s, int want, char *line, size_t cap)
{
	if (s && send(c->fd, s, strlen(s), MSG_NOSIGNAL) < 0)
		return -1;
	return reply(c, line, cap) == want ? 0 : -1;
}

static int parse_227(const char *line, char *host, size_t hcap, int *port)
{
	const char *p = strchr(line, '(');
	unsigned v[6];
	if (!p)
		return -1;
	p++;
	for (int i = 0; i < 6; i++) {
		char *end;
		unsigned long x = strtoul(p, &end, 10);
		if (end == p || x > 255)
			return -1;
		v[i] = (unsigned)x;
		p = end + 1;
	}
	snprintf(host, hcap, "%u.%u.%u.%u", v[0], v[1], v[2], v[3]);
	*port = (int)(v[4] * 256 + v[5]);
	return 0;
}

static int one_session(const char *host, int port)
{
	struct ctl c = {.fd = dial(host, port)};
	char line[256];
	if (c.fd < 0)
		return -1;
	int r = cmd(&c, NULL, 220, NULL, 0) || cmd(&c, "USER anonymous\r\n", 331, NULL, 0) ||
		cmd(&c, "PASS x\r\n", 230, NULL, 0) || cmd(&c, "PASV\r\n", 227, line, sizeof(line)) ||
		cmd(&c, "QUIT\r\n", 221, NULL, 0);
	close(c.fd);
	return r ? -1 : 0;
}

/* Process i's source address: entry i mod n of FTPLOAD_SOURCES, if set. */
static void pick_source(int i)
{
	const char *list = getenv("FTPLOAD_SOURCES");
	char addrs[16][16];
	int n = 0;
	while (list && *list && n < 16) {
		size_t len = strcspn(list, ",");
		if (len < sizeof(addrs[0])) {
			memcpy(addrs[n], list, len);
			addrs[n++][len] = '\0';
		}
		list += len + (list[len] == ',');
	}
	if (n > 0)
		inet_pton(AF_INET, addrs[i % n], &source);
}

/*
 * Whole sessions from procs processes for at most seconds, or until max
 * sessions are done (0: no count limit); the rate is over the time taken.
 */
static int rate(const char *host, int port, int procs, double seconds, long max)
{
	signal(SIGPIPE, SIG_IGN);
	long *counts = mmap(NULL, sizeof(long) * (2 * (size_t)procs + 2), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long *started = &counts[2 * procs];
	double *last = (double *)&counts[2 * procs + 1];
	/* A session still open at the deadline does not count, and a stuck one fails after 2 s. */
	dial_timeout = 2;
	double start = now_s();
	for (int i = 0; i < procs; i++) {
		if (fork() == 0) {
			pick_source(i);
			while (now_s() - start < seconds) {
				if (max && __atomic_fetch_add(started, 1, __ATOMIC_RELAXED) >= max)
					break;
				int r = one_session(host, port);
				double t = now_s();
				if (t - start >= seconds)
					break;
				if (r == 0)
					counts[2 * i]++;
				else
					counts[2 * i + 1]++;
				if (max)
					*last = t - start; /* processes finish close together; the latest write is near
							      enough */
			}
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	double took = max && *last > 0 ? *last : seconds;
	long ok = 0, bad = 0;
	for (int i = 0; i < procs; i++) {
		ok += counts[2 * i];
		bad += counts[2 * i + 1];
	}
	printf("{\"sessions\":%ld,\"errors\":%ld,\"seconds\":%.3f}\n", ok, bad, took);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

struct held {
	struct ctl c;
	char host[32];
	int port;
};

static int timed_pasv(struct held *h, double *rtt)
{
	char line[256];
	double t0 = now_s();
	if (cmd(&h->c, "PASV\r\n", 227, line, sizeof(line)) < 0)
		return -1;
	*rtt = now_s() - t0;
	return parse_227(line, h->host, sizeof(h->host), &h->port);
}

static int hold(const char *host, int port, int n)
{
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	struct held *hs = calloc((size_t)n, sizeof(*hs));
	double first[10], later[100];
	int nfirst = 0, nlater = 0, errors = 0;
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		struct held *h = &hs[i];
		double rtt;
		h->c.fd = dial(host, port);
		if (h->c.fd < 0 || cmd(&h->c, NULL, 220, NULL, 0) || cmd(&h->c, "USER anonymous\r\n", 331, NULL, 0) ||
		    cmd(&h->c, "PASS x\r\n", 230, NULL, 0) || timed_pasv(h, &rtt) < 0) {
			if (errors < 5)
				fprintf(stderr, "ftpload: session %d did not open: %s\n", i, strerror(errno));
			errors++;
			if (h->c.fd >= 0)
				close(h->c.fd);
			h->c.fd = -1;
			continue;
		}
		if (nfirst < 10)
			first[nfirst++] = rtt;
	}
	double open_s = now_s() - t0;
	/* Everything open and armed: the announcement now costs what it costs at n sessions. */
	fprintf(stderr, "ftpload: %d sessions open\n", n - errors);
	if (getenv("FTPLOAD_PAUSE"))
		sleep((unsigned)atoi(getenv("FTPLOAD_PAUSE")));
	/* 100 announcements spread over the open sessions (round robin when there are fewer). */
	int step = n / 100 > 0 ? n / 100 : 1;
	for (int k = 0; k < 100; k++) {
		struct held *h = &hs[(k * step) % n];
		double rtt;
		if (h->c.fd >= 0 && timed_pasv(h, &rtt) == 0)
			later[nlater++] = rtt;
	}
	int ok = 0, bad = 0;
	for (int i = 0; i < n; i++) {
		struct held *h = &hs[i];
		if (h->c.fd < 0)
			continue;
		int d = dial(h->host, h->port);
		char buf[PAYLOAD + 1];
		size_t got = 0;
		int good = d >= 0 && cmd(&h->c, "RETR f\r\n", 150, NULL, 0) == 0;
		while (good && got < sizeof(buf)) {
			ssize_t r = recv(d, buf + got, sizeof(buf) - got, 0);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		good = good && got == PAYLOAD && cmd(&h->c, NULL, 226, NULL, 0) == 0;
		for (size_t k = 0; good && k < PAYLOAD; k++)
			good = buf[k] == pattern(k);
		if (d >= 0)
			close(d);
		good ? ok++ : bad++;
		cmd(&h->c, "QUIT\r\n", 221, NULL, 0);
		close(h->c.fd);
	}
	printf("{\"sessions\":%d,\"open_errors\":%d,\"open_seconds\":%.3f,"
	       "\"pasv_first10_p50_ms\":%.4f,\"pasv_at_n_p50_ms\":%.4f,\"pasv_at_n_p99_ms\":%.4f,"
	       "\"transfers_ok\":%d,\"transfers_bad\":%d}\n",
	       n, errors, open_s, nfirst ? pct(first, (size_t)nfirst, 0.5) * 1e3 : -1,
	       nlater ? pct(later, (size_t)nlater, 0.5) * 1e3 : -1,
	       nlater ? pct(later, (size_t)nlater, 0.99) * 1e3 : -1, ok, bad);
	free(hs);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "serve"))
		return serve(argv[2], atoi(argv[3]));
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "rate"))
		return rate(argv[2], atoi(argv[3]), atoi(argv[4]), strtod(argv[5], NULL),
			    argc == 7 ? atol(argv[6]) : 0);
	if (argc == 5 && !strcmp(argv[1], "hold"))
		return hold(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: ftpload serve ADDR PORT | rate HOST PORT PROCS SECONDS [MAX] | hold HOST PORT N\n");
	return 2;
}
