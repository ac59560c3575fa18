/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../conf/config.h"
#include "../nft/nft.h"
#include "control.h"
#include "ct.h"
#include "log.h"
#include "queue.h"
#include "route.h"
#include "sandbox.h"
#include "session.h"

#ifndef FTP_ALG_VERSION
#define FTP_ALG_VERSION "0"
#endif

struct override {
	const char *key, *flag, *value;
};

struct daemon;

/* Where a worker's time goes: each kernel call and each packet, counted and timed. */
enum { T_PACKET, T_VERDICT, T_NFT, T_CT, T_ROUTE, T_MAX };
static const char *const t_names[T_MAX] = {"packet", "verdict", "nft", "ctnetlink", "rtnetlink"};

struct op_clock {
	uint64_t n, ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void tally(struct op_clock *c, uint64_t since)
{
	c->n++;
	c->ns += now_ns() - since;
}

/*
 * One queue thread: its two queues, its own ctnetlink and rtnetlink sockets,
 * and the sessions the balancing rules send it (all of some clients').
 */
struct worker {
	struct daemon *d;
	unsigned idx;
	pthread_t th;
	bool running;
	/* Held while the worker changes its sessions; status and reload take it to look or change. */
	pthread_mutex_t lock;
	int stop_fd;  /* eventfd: the main thread asks it to finish */
	int timer_fd; /* once a second: timeouts, pinhole accounting */
	struct queue *q;
	struct ct *ct;
	struct route *route;
	struct alg *alg;
	struct op_clock t[T_MAX];
};

struct daemon {
	struct alg_config cfg;
	const char *config_path;
	/* Flags override the file, at start and at every reload. */
	struct override overrides[16];
	unsigned noverrides;
	bool verbose;
	const char *control_path;
	int control_fd;
	int fatal_fd; /* eventfd: a worker stopped on an error */
	/* The table's owner socket: only it may change the table, so the workers share it. */
	struct nft *nft;
	pthread_mutex_t nft_lock;
	struct worker w[CONFIG_MAX_WORKERS];
	unsigned nw;
};

static int k_ct_get(void *k, const struct flow *seen, int dir, struct ct_info *out)
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	int r = ct_get(w->ct, seen, dir, out);
	tally(&w->t[T_CT], t0);
	return r;
}

static int k_seqadj(void *k, const struct flow *orig, int dir, uint32_t pos, int32_t before, int32_t after)
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	int r = ct_seqadj_set(w->ct, orig, dir, pos, before, after);
	tally(&w->t[T_CT], t0);
	return r;
}

static int k_hole_add(void *k, const struct pinhole *p, const struct pinhole *replaced)
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	pthread_mutex_lock(&w->d->nft_lock);
	int r = nft_pinhole_add(w->d->nft, p, replaced);
	pthread_mutex_unlock(&w->d->nft_lock);
	tally(&w->t[T_NFT], t0);
	return r;
}

static int k_hole_del(void *k, const struct pinhole *p)
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	pthread_mutex_lock(&w->d->nft_lock);
	int r = nft_pinhole_del(w->d->nft, p);
	pthread_mutex_unlock(&w->d->nft_lock);
	tally(&w->t[T_NFT], t0);
	return r;
}

static int k_via_default(void *k, int family, const uint8_t *addr)
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	int r = route_via_default(w->route, family, addr);
	tally(&w->t[T_ROUTE], t0);
	return r;
}

static int k_armed(void *k, void (*cb)(void *ctx, const struct pinhole *p), void *ctx)
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	pthread_mutex_lock(&w->d->nft_lock);
	int r = nft_pinholes_armed(w->d->nft, cb, ctx);
	pthread_mutex_unlock(&w->d->nft_lock);
	tally(&w->t[T_NFT], t0);
	return r;
}

static const struct alg_kernel_ops kernel_ops = {.ct_get = k_ct_get,
						 .seqadj_set = k_seqadj,
						 .pinhole_add = k_hole_add,
						 .pinhole_del = k_hole_del,
						 .via_default = k_via_default,
						 .pinholes_armed = k_armed};

static void sd_notify(const char *msg)
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

static void emit(void *ctx, const struct alg_verdicts *v)
{
	struct worker *w = ctx;
	for (unsigned i = 0; i < v->n; i++) {
		uint64_t t0 = now_ns();
		int r = queue_verdict(w->q, v->dir, v->v[i].id, v->v[i].accept, v->v[i].data, v->v[i].len);
		tally(&w->t[T_VERDICT], t0);
		if (r < 0)
			log_msg(LOG_LVL_ERR, "event=verdict-failed id=%u error=\"%s\"", v->v[i].id, strerror(-r));
	}
}

static void on_packet(void *ctx, int dir, uint32_t id, const uint8_t *pkt, size_t len)
{
	struct worker *w = ctx;
	struct alg_verdicts v;
	uint64_t t0 = now_ns();
	alg_packet(w->alg, dir, id, pkt, len, time(NULL), &v);
	tally(&w->t[T_PACKET], t0);
	emit(w, &v);
	alg_verdicts_done(w->alg);
}

static void report_error(void *ctx, const char *path, int line, const char *msg)
{
	(void)ctx;
	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", path, line, msg);
	else
		fprintf(stderr, "ftp-alg: %s: %s\n", path, msg);
}

static void report_to(void *ctx, const char *path, int line, const char *msg)
{
	if (line > 0)
		fprintf(ctx, "%s:%d: %s\n", path, line, msg);
	else
		fprintf(ctx, "%s: %s\n", path, msg);
	log_msg(LOG_LVL_ERR, "event=config-error file=%s line=%d error=\"%s\"", path, line, msg);
}

static int apply_config_locked(struct daemon *d, const struct alg_config *c)
{
	pthread_mutex_lock(&d->nft_lock);
	int r = nft_apply_config(d->nft, c);
	pthread_mutex_unlock(&d->nft_lock);
	return r;
}

/* Reread the configuration: new sessions get it, live ones and armed pinholes stay. */
static char *reload(struct daemon *d)
{
	struct alg_config c;
	char *msg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&msg, &len);
	if (!f)
		return NULL;
	config_defaults(&c);
	int r = d->config_path ? config_load(&c, d->config_path, report_to, f) : 0;
	for (unsigned i = 0; r == 0 && i < d->noverrides; i++)
		if (strcmp(d->overrides[i].key, "table") != 0 &&
		    config_set(&c, d->overrides[i].key, d->overrides[i].value, d->overrides[i].flag, 0, report_to, f) <
			0)
			r = -EINVAL;
	/* The user is looked up at start only: the sandbox may not reach the user database now. */
	if (r == 0)
		r = config_check(&c, false, report_to, f);
	if (d->verbose)
		c.log_level = LOG_LVL_DEBUG;
	if (r < 0) {
		if (r != -EINVAL)
			fprintf(f, "%s: %s\n", d->config_path, strerror(-r));
		fprintf(f, "error: %s is bad; keeping the running configuration\n", d->config_path);
		log_msg(LOG_LVL_ERR, "event=reload-refused file=%s", d->config_path);
	} else if (c.queue = d->cfg.queue, c.workers = d->cfg.workers, memcpy(c.table, d->cfg.table, sizeof(c.table)),
		   (r = apply_config_locked(d, &c)) < 0) {
		/* The queue numbers, the workers and the table name stay until a restart. */
		fprintf(f,
			"error: the kernel refused the new control ports or servers: %s; keeping the running "
			"configuration\n",
			nft_strerror(r));
		log_msg(LOG_LVL_ERR, "event=reload-refused error=\"%s\"", nft_strerror(r));
	} else {
		d->cfg = c;
		for (unsigned i = 0; i < d->nw; i++) {
			pthread_mutex_lock(&d->w[i].lock);
			alg_set_config(d->w[i].alg, &c);
			pthread_mutex_unlock(&d->w[i].lock);
		}
		log_set_level(c.log_level);
		fprintf(f, "reloaded %s\n", d->config_path ? d->config_path : "(defaults)");
		log_msg(LOG_LVL_INFO, "event=reload file=%s", d->config_path ? d->config_path : "(defaults)");
	}
	fclose(f);
	return msg;
}

/* The workers' operation clocks, for status: a JSON member and a text line. Called with their locks held. */
static void timing(const struct daemon *d, char *json, size_t jcap, char *text, size_t tcap)
{
	size_t jl = 0, tl = 0;
	jl += (size_t)snprintf(json, jcap, "\"timing\":{");
	tl += (size_t)snprintf(text, tcap, "time per operation:");
	for (int k = 0; k < T_MAX; k++) {
		struct op_clock sum = {0, 0};
		for (unsigned i = 0; i < d->nw; i++) {
			sum.n += d->w[i].t[k].n;
			sum.ns += d->w[i].t[k].ns;
		}
		double avg = sum.n ? (double)sum.ns / (double)sum.n / 1000.0 : 0.0;
		if (jl < jcap)
			jl += (size_t)snprintf(json + jl, jcap - jl, "%s\"%s\":{\"count\":%llu,\"total_us\":%llu}",
					       k ? "," : "", t_names[k], (unsigned long long)sum.n,
					       (unsigned long long)(sum.ns / 1000));
		if (tl < tcap)
			tl += (size_t)snprintf(text + tl, tcap - tl, "%s %s %.1f us (%llu)", k ? "," : "", t_names[k],
					       avg, (unsigned long long)sum.n);
	}
	if (jl < jcap)
		snprintf(json + jl, jcap - jl, "}");
	if (tl < tcap)
		snprintf(text + tl, tcap - tl, "\n");
}

static char *respond(void *ctx, const char *cmd)
{
	struct daemon *d = ctx;
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "status json") == 0) {
		struct alg *v[CONFIG_MAX_WORKERS];
		for (unsigned i = 0; i < d->nw; i++) {
			pthread_mutex_lock(&d->w[i].lock);
			v[i] = d->w[i].alg;
		}
		char json[512], text[512];
		timing(d, json, sizeof(json), text, sizeof(text));
		char *out = alg_status(v, d->nw, time(NULL), strcmp(cmd, "status json") == 0, FTP_ALG_VERSION,
				       nft_queue_path_name(nft_queue_path(d->nft)), json, text);
		for (unsigned i = d->nw; i-- > 0;)
			pthread_mutex_unlock(&d->w[i].lock);
		return out;
	}
	if (strcmp(cmd, "reload") == 0)
		return reload(d);
	return strdup("error: unknown command (status, status json, reload)\n");
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ftp-alg [OPTIONS]\n"
		"       ftp-alg status [--json] [--control-socket PATH]\n"
		"       ftp-alg reload [--control-socket PATH]\n"
		"Transparent FTP application-layer gateway for a Linux NAT gateway.\n\n"
		"  -c, --config FILE          read settings from FILE (default " CONFIG_DEFAULT_PATH " if it exists)\n"
		"      --check-config FILE    check FILE and exit (0 good, 2 bad)\n"
		"      --public-address ADDR  announce ADDR in 227 replies (MasqueradeAddress)\n"
		"      --passive-ports LO-HI  publish data ports from this range (PassivePorts)\n"
		"      --control-ports LIST   FTP control ports, comma separated (default 21)\n"
		"      --queue N              use NFQUEUE numbers N and N+1 (default 21)\n"
		"      --workers N            queue threads; worker k uses queues N+2k, N+2k+1 (default 1)\n"
		"      --pinhole-timeout S    seconds an announced data port stays open (default 60)\n"
		"      --table NAME           name of the nftables table ftp-alg owns (default ftp_alg)\n"
		"      --user NAME            run as this user once started (default nobody)\n"
		"      --control-socket PATH  where status and reload talk to the daemon\n"
		"                             (default " CONTROL_DEFAULT_PATH ")\n"
		"  -v, --verbose              log debug messages\n"
		"  -h, --help                 show this help\n"
		"      --version              show the version\n");
}

enum {
	OPT_CHECK = 256,
	OPT_PUBLIC,
	OPT_PASSIVE,
	OPT_CONTROL,
	OPT_QUEUE,
	OPT_TIMEOUT,
	OPT_TABLE,
	OPT_VERSION,
	OPT_SOCKET,
	OPT_JSON,
	OPT_USER,
	OPT_WORKERS,
};

static int parse_args(struct daemon *d, int argc, char **argv, const char **check)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", required_argument, NULL, OPT_CHECK},
	    {"public-address", required_argument, NULL, OPT_PUBLIC},
	    {"passive-ports", required_argument, NULL, OPT_PASSIVE},
	    {"control-ports", required_argument, NULL, OPT_CONTROL},
	    {"queue", required_argument, NULL, OPT_QUEUE},
	    {"workers", required_argument, NULL, OPT_WORKERS},
	    {"pinhole-timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"table", required_argument, NULL, OPT_TABLE},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {"control-socket", required_argument, NULL, OPT_SOCKET},
	    {"user", required_argument, NULL, OPT_USER},
	    {0},
	};
	struct override *later = d->overrides;
	unsigned nlater = 0;
	bool verbose = false;
	int o;

	while ((o = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		const char *key = NULL, *flag = NULL;
		switch (o) {
		case 'c':
			d->config_path = optarg;
			break;
		case OPT_CHECK:
			*check = optarg;
			break;
		case OPT_PUBLIC:
			key = "MasqueradeAddress";
			flag = "--public-address";
			break;
		case OPT_PASSIVE:
			key = "PassivePorts";
			flag = "--passive-ports";
			break;
		case OPT_CONTROL:
			key = "ControlPorts";
			flag = "--control-ports";
			break;
		case OPT_QUEUE:
			key = "Queue";
			flag = "--queue";
			break;
		case OPT_WORKERS:
			key = "Workers";
			flag = "--workers";
			break;
		case OPT_TIMEOUT:
			key = "PinholeTimeout";
			flag = "--pinhole-timeout";
			break;
		case OPT_TABLE:
			if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(d->cfg.table) ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
				strlen(optarg)) {
				fprintf(stderr, "ftp-alg: --table: '%s' is not a table name (letters, digits, _)\n",
					optarg);
				return -EINVAL;
			}
			key = "table";
			flag = "--table";
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("ftp-alg %s\n", FTP_ALG_VERSION);
			exit(0);
		case OPT_SOCKET:
			d->control_path = optarg;
			break;
		case OPT_USER:
			key = "User";
			flag = "--user";
			break;
		default:
			usage(stderr);
			return -EINVAL;
		}
		if (key && nlater < 16)
			later[nlater++] = (struct override){key, flag, optarg};
	}
	if (optind < argc) {
		fprintf(stderr, "ftp-alg: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	/* --check-config runs what start-up runs, on its file and the flags, and names every error. */
	const char *path = *check ? *check : d->config_path;
	if (!path && access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		path = CONFIG_DEFAULT_PATH;
	int bad = 0;
	if (path) {
		int r = config_load(&d->cfg, path, report_error, NULL);
		if (r < 0 && r != -EINVAL)
			fprintf(stderr, "ftp-alg: %s: %s\n", path, strerror(-r));
		bad |= r < 0;
		d->config_path = path;
	}
	/* Flags override the file. */
	for (unsigned i = 0; i < nlater; i++) {
		if (strcmp(later[i].key, "table") == 0)
			snprintf(d->cfg.table, sizeof(d->cfg.table), "%s", later[i].value);
		else if (config_set(&d->cfg, later[i].key, later[i].value, later[i].flag, 0, report_error, NULL) < 0)
			bad = 1;
	}
	if (config_check(&d->cfg, true, report_error, NULL) < 0 || bad)
		return -EINVAL;
	d->noverrides = nlater;
	d->verbose = verbose;
	if (verbose)
		d->cfg.log_level = LOG_LVL_DEBUG;
	return 0;
}

static void warn_helper(void *ctx, const char *table, const char *name)
{
	(void)ctx;
	log_msg(
	    LOG_LVL_WARN,
	    "table %s has a ct helper object '%s' of type ftp: where it is attached to the same flows, ftp-alg steps "
	    "aside; fix: drop its 'ct helper set' rule for the FTP control port",
	    table, name ? name : "?");
}

static void startup_checks(struct daemon *d)
{
	nft_find_ftp_helpers(d->nft, warn_helper, NULL);
	FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "re");
	if (f) {
		int c = fgetc(f);
		if (c == '0')
			log_msg(LOG_LVL_WARN, "IPv4 forwarding is off, so nothing is routed through this gateway; "
					      "fix: sysctl -w net.ipv4.ip_forward=1");
		fclose(f);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pollfd pfd[3] = {{queue_fd(w->q), POLLIN, 0}, {w->timer_fd, POLLIN, 0}, {w->stop_fd, POLLIN, 0}};
	for (;;) {
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_LVL_ERR, "worker=%u poll: %s", w->idx, strerror(errno));
			uint64_t one = 1;
			if (write(w->d->fatal_fd, &one, sizeof(one)) < 0)
				abort();
			break;
		}
		if (pfd[2].revents & POLLIN)
			break;
		if (pfd[0].revents & POLLIN) {
			pthread_mutex_lock(&w->lock);
			for (int i = 0; i < 64; i++) {
				int r = queue_receive(w->q, on_packet, w);
				if (r <= 0) {
					if (r < 0 && r != -ENOBUFS)
						log_msg(LOG_LVL_ERR, "worker=%u queue: %s", w->idx, strerror(-r));
					break;
				}
			}
			pthread_mutex_unlock(&w->lock);
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t n;
			if (read(w->timer_fd, &n, sizeof(n)) > 0) {
				pthread_mutex_lock(&w->lock);
				alg_tick(w->alg, time(NULL), emit, w);
				pthread_mutex_unlock(&w->lock);
			}
		}
	}
	/* Release what it holds while its queues are still bound; its pinholes go too. */
	pthread_mutex_lock(&w->lock);
	alg_shutdown(w->alg, emit, w);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void stop_workers(struct daemon *d)
{
	uint64_t one = 1;
	for (unsigned i = 0; i < d->nw; i++)
		if (d->w[i].running && write(d->w[i].stop_fd, &one, sizeof(one)) < 0)
			abort();
	for (unsigned i = 0; i < d->nw; i++)
		if (d->w[i].running) {
			pthread_join(d->w[i].th, NULL);
			d->w[i].running = false;
		}
}

/* The main thread: signals, the control socket, and a worker's fatal error. */
static int run(struct daemon *d)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_msg(LOG_LVL_ERR, "cannot set up signals: %s", strerror(errno));
		return 1;
	}
	/* Threads start blocking the signals above, so only this thread's signalfd sees them. */
	for (unsigned i = 0; i < d->nw; i++) {
		int r = pthread_create(&d->w[i].th, NULL, worker_main, &d->w[i]);
		if (r != 0) {
			log_msg(LOG_LVL_ERR, "cannot start worker %u: %s", i, strerror(r));
			stop_workers(d);
			close(sfd);
			return 1;
		}
		d->w[i].running = true;
	}
	sd_notify("READY=1");
	struct pollfd pfd[3] = {{sfd, POLLIN, 0}, {d->fatal_fd, POLLIN, 0}, {d->control_fd, POLLIN, 0}};
	int rc = 0;
	for (;;) {
		if (poll(pfd, d->control_fd >= 0 ? 3 : 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_LVL_ERR, "poll: %s", strerror(errno));
			rc = 1;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			log_msg(LOG_LVL_ERR,
				"a worker stopped on an error: releasing held packets and removing table %s",
				d->cfg.table);
			rc = 1;
			break;
		}
		if (d->control_fd >= 0 && (pfd[2].revents & POLLIN))
			control_serve(d->control_fd, respond, d);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGHUP) {
				sd_notify("RELOADING=1");
				free(reload(d));
				sd_notify("READY=1");
				continue;
			}
			log_msg(LOG_LVL_INFO, "signal %d: releasing held packets and removing table %s", si.ssi_signo,
				d->cfg.table);
			sd_notify("STOPPING=1");
			break;
		}
	}
	stop_workers(d);
	close(sfd);
	return rc;
}

static void worker_close(struct worker *w)
{
	alg_free(w->alg);
	queue_close(w->q);
	route_close(w->route);
	ct_close(w->ct);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	if (w->timer_fd >= 0)
		close(w->timer_fd);
	pthread_mutex_destroy(&w->lock);
}

/* Close whatever is open, in the reverse order of opening; each step takes a missing piece. */
static void daemon_close(struct daemon *d)
{
	for (unsigned i = d->nw; i-- > 0;)
		worker_close(&d->w[i]);
	d->nw = 0;
	control_close(d->control_fd, d->control_path);
	nft_close(d->nft);
	if (d->fatal_fd >= 0)
		close(d->fatal_fd);
}

/* A worker's kernel sockets and state; logs what failed. */
static int worker_open(struct daemon *d, unsigned idx)
{
	struct worker *w = &d->w[idx];
	*w = (struct worker){.d = d, .idx = idx, .stop_fd = -1, .timer_fd = -1};
	pthread_mutex_init(&w->lock, NULL);
	d->nw = idx + 1;
	uint16_t q = (uint16_t)(d->cfg.queue + 2 * idx);
	int r = ct_open(&w->ct);
	if (r < 0) {
		log_msg(LOG_LVL_ERR, "cannot open ctnetlink: %s", strerror(-r));
		return r;
	}
	r = route_open(&w->route);
	if (r < 0) {
		log_msg(LOG_LVL_ERR, "cannot open rtnetlink: %s", strerror(-r));
		return r;
	}
	r = queue_open(&w->q, q);
	if (r < 0) {
		if (r == -EPERM || r == -EBUSY)
			log_msg(LOG_LVL_ERR, "NFQUEUE %u or %u is in use by another process (another ftp-alg?)", q,
				q + 1);
		else
			log_msg(LOG_LVL_ERR, "cannot bind NFQUEUE %u: %s", q, strerror(-r));
		return r;
	}
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_interval = {1, 0}, .it_value = {1, 0}};
	if (w->stop_fd < 0 || w->timer_fd < 0 || timerfd_settime(w->timer_fd, 0, &its, NULL) < 0) {
		r = -errno;
		log_msg(LOG_LVL_ERR, "cannot set up a worker's timers: %s", strerror(errno));
		return r;
	}
	w->alg = alg_new(&d->cfg, &kernel_ops, w);
	if (!w->alg) {
		log_msg(LOG_LVL_ERR, "out of memory");
		return -ENOMEM;
	}
	alg_set_worker(w->alg, idx, d->cfg.workers);
	return 0;
}

/* ftp-alg status|reload: talk to a running daemon. */
static int client(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {"control-socket", required_argument, NULL, OPT_SOCKET},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *path = CONTROL_DEFAULT_PATH;
	bool json = false;
	int o;
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (o == OPT_JSON && strcmp(argv[1], "status") == 0)
			json = true;
		else if (o == OPT_SOCKET)
			path = optarg;
		else {
			usage(o == 'h' ? stdout : stderr);
			return o == 'h' ? 0 : 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ftp-alg %s: unexpected argument '%s'\n", argv[1], argv[optind]);
		return 2;
	}
	char *answer = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&answer, &len);
	if (!f)
		return 1;
	int r = control_request(path, strcmp(argv[1], "reload") == 0 ? "reload" : json ? "status json" : "status", f);
	fclose(f);
	if (r < 0) {
		fprintf(stderr,
			"ftp-alg %s: cannot reach the daemon at %s: %s (is ftp-alg running? --control-socket?)\n",
			argv[1], path, strerror(-r));
		free(answer);
		return 1;
	}
	fputs(answer, stdout);
	int rc = strncmp(answer, "error", 5) == 0 || strstr(answer, "\nerror") ? 1 : 0;
	free(answer);
	return rc;
}

int main(int argc, char **argv)
{
	struct daemon d = {.control_fd = -1, .fatal_fd = -1};
	const char *check = NULL;

	if (argc > 1 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "reload") == 0))
		return client(argc, argv);

	config_defaults(&d.cfg);
	if (parse_args(&d, argc, argv, &check) < 0)
		return 2;
	if (check) {
		printf("%s: OK\n", check);
		return 0;
	}
	log_open("ftp-alg", d.cfg.log_level, !isatty(STDERR_FILENO) && getenv("JOURNAL_STREAM") == NULL);
	pthread_mutex_init(&d.nft_lock, NULL);
	d.fatal_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d.fatal_fd < 0) {
		log_msg(LOG_LVL_ERR, "cannot create an eventfd: %s", strerror(errno));
		return 1;
	}
	int r = nft_open(&d.nft, &d.cfg);
	if (r < 0) {
		/* With the capability, EPERM means the owned table belongs to another process. */
		if (r == -EPERM && geteuid() == 0)
			log_msg(LOG_LVL_ERR,
				"table inet %s is owned by another process: another ftp-alg runs in this network "
				"namespace (a second instance needs its own --table, --queue and --control-socket)",
				d.cfg.table);
		else
			log_msg(LOG_LVL_ERR, "cannot create nftables table inet %s: %s", d.cfg.table, nft_strerror(r));
		daemon_close(&d);
		return 1;
	}
	for (unsigned i = 0; i < d.cfg.workers; i++)
		if (worker_open(&d, i) < 0) {
			daemon_close(&d);
			return 1;
		}
	if (!d.control_path)
		d.control_path = CONTROL_DEFAULT_PATH;
	d.control_fd = control_listen(d.control_path);
	if (d.control_fd < 0) {
		/* Status is a convenience; the gateway works without it. */
		log_msg(LOG_LVL_WARN, "no control socket at %s: %s; 'ftp-alg status' will not answer", d.control_path,
			d.control_fd == -EADDRINUSE ? "another ftp-alg answers there (use --control-socket)"
						    : strerror(-d.control_fd));
	}
	char pub[INET_ADDRSTRLEN];
	char ports[128] = "";
	for (unsigned i = 0; i < d.cfg.ncontrol_ports; i++)
		snprintf(ports + strlen(ports), sizeof(ports) - strlen(ports), "%s%u", i ? "," : "",
			 d.cfg.control_ports[i]);
	log_msg(LOG_LVL_INFO, "ftp-alg %s started: control ports %s, %u worker%s, queues %u-%u (%s), table inet %s",
		FTP_ALG_VERSION, ports, d.nw, d.nw == 1 ? "" : "s", d.cfg.queue, d.cfg.queue + 2 * d.nw - 1,
		nft_queue_path_name(nft_queue_path(d.nft)), d.cfg.table);
	if (d.cfg.has_public4)
		log_msg(LOG_LVL_INFO, "Masquerading as '%s'", inet_ntop(AF_INET, d.cfg.public4, pub, sizeof(pub)));
	else
		log_msg(LOG_LVL_INFO, "Masquerading as the address each client connected to");
	startup_checks(&d);
	/* Before any thread exists: capabilities are per thread, and threads inherit these. */
	char why[256] = "";
	r = sandbox_enter(d.cfg.user, why, sizeof(why));
	if (r < 0) {
		log_msg(LOG_LVL_ERR, "cannot drop privileges: %s", why);
		daemon_close(&d);
		return 1;
	}
	log_msg(LOG_LVL_INFO, "running as uid %u with CAP_NET_ADMIN only%s%s", (unsigned)getuid(), why[0] ? "; " : "",
		why);

	int rc = run(&d);
	daemon_close(&d);
	log_msg(LOG_LVL_INFO, "stopped; table inet %s removed", d.cfg.table);
	return rc;
}
