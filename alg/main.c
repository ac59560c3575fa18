/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../conf/config.h"
#include "../nft/nft.h"
#include "control.h"
#include "ct.h"
#include "daemon.h"
#include "holes.h"
#include "log.h"
#include "sandbox.h"
#include "worker.h"

static void warn_helper(void *ctx, const char *table, const char *name)
{
	(void)ctx;
	log_msg(LOG_LVL_WARN,
		"event=kernel-helper-object table=%s object=%s effect=\"where it is attached to the same flows, "
		"ftp-alg steps aside\" fix=\"drop its 'ct helper set' rule for the FTP control port\"",
		table, name ? name : "?");
}

static void startup_checks(struct daemon *d)
{
	nft_find_ftp_helpers(d->nft, warn_helper, NULL);
	FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "re");
	if (f) {
		int c = fgetc(f);
		if (c == '0')
			log_msg(LOG_LVL_WARN, "event=no-forwarding family=ipv4 effect=\"nothing is routed through this "
					      "gateway\" fix=\"sysctl -w net.ipv4.ip_forward=1\"");
		fclose(f);
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
		log_msg(LOG_LVL_ERR, "event=fatal reason=signalfd error=\"%s\"", strerror(errno));
		return 1;
	}
	/* Threads start blocking the signals above, so only this thread's signalfd sees them. */
	for (unsigned i = 0; i < d->nw; i++) {
		int r = pthread_create(&d->w[i].th, NULL, worker_main, &d->w[i]);
		if (r != 0) {
			log_msg(LOG_LVL_ERR, "event=fatal reason=thread worker=%u error=\"%s\"", i, strerror(r));
			workers_stop(d);
			close(sfd);
			return 1;
		}
		d->w[i].running = true;
	}
	sd_notify("READY=1");
	struct pollfd pfd[3] = {{sfd, POLLIN, 0}, {d->fatal_fd, POLLIN, 0}, {d->control_fd, POLLIN, 0}};
	int rc = 0;
	for (;;) {
		/* With a service manager listening, wake each second to tell it the session count. */
		if (poll(pfd, d->control_fd >= 0 ? 3 : 2, getenv("NOTIFY_SOCKET") ? 1000 : -1) < 0) {
			if (errno == EINTR)
				continue;
			log_msg(LOG_LVL_ERR, "event=fatal reason=poll error=\"%s\"", strerror(errno));
			rc = 1;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			log_msg(LOG_LVL_ERR,
				"event=fatal reason=worker effect=\"releasing held packets and removing table %s\"",
				d->cfg.table);
			rc = 1;
			break;
		}
		commands_notify_status(d);
		if (d->control_fd >= 0 && (pfd[2].revents & POLLIN))
			control_serve(d->control_fd, commands_respond, d);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGHUP) {
				sd_notify("RELOADING=1");
				free(options_reload(d, -1));
				sd_notify("READY=1");
				continue;
			}
			log_msg(LOG_LVL_INFO,
				"event=stop signal=%d effect=\"releasing held packets and removing table %s\"",
				si.ssi_signo, d->cfg.table);
			sd_notify("STOPPING=1");
			break;
		}
	}
	workers_stop(d);
	close(sfd);
	return rc;
}

/* Close whatever is open, in the reverse order of opening; each step takes a missing piece. */
static void daemon_close(struct daemon *d)
{
	for (unsigned i = d->nw; i-- > 0;)
		worker_close(&d->w[i]);
	d->nw = 0;
	holekeys_free(d->keys);
	d->keys = NULL;
	ct_snapshot_free(d->snap);
	d->snap = NULL;
	ct_close(d->snap_ct);
	d->snap_ct = NULL;
	control_close(d->control_fd, d->control_path);
	nft_close(d->nft);
	if (d->fatal_fd >= 0)
		close(d->fatal_fd);
}

int main(int argc, char **argv)
{
	struct daemon d = {.control_fd = -1, .fatal_fd = -1};
	const char *check = NULL;

	/* A control client that goes away before its answer must not take the gateway with it. */
	signal(SIGPIPE, SIG_IGN);
	if (argc > 1 &&
	    (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "reload") == 0 || strcmp(argv[1], "takeover") == 0))
		return control_client(argc, argv);

	config_defaults(&d.cfg);
	if (options_parse(&d, argc, argv, &check) < 0)
		return 2;
	if (check) {
		printf("%s: OK\n", check);
		return 0;
	}
	log_open("ftp-alg", d.cfg.log_level, log_choose(STDERR_FILENO));
#ifdef M_ARENA_MAX
	/*
	 * glibc gives each worker thread its own heap, grown a page at a time by
	 * mprotect: 2.4 system calls per session in a burst of new sessions
	 * (scripts/bench). One heap for every thread (the workers rarely
	 * allocate at once), grown by sbrk a megabyte at a time, needs none.
	 */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_TOP_PAD, 1 << 20);
#endif
	pthread_mutex_init(&d.nft_lock, NULL);
	d.fatal_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d.fatal_fd < 0) {
		log_msg(LOG_LVL_ERR, "event=fatal reason=eventfd error=\"%s\"", strerror(errno));
		return 1;
	}
	int r = nft_open(&d.nft, &d.cfg);
	if (r < 0) {
		/* With the capability, EPERM means the owned table belongs to another process. */
		if (r == -EPERM && geteuid() == 0)
			log_msg(LOG_LVL_ERR,
				"event=fatal reason=table-owned table=%s effect=\"another ftp-alg runs in this network "
				"namespace (a second instance needs its own --table, --queue and --control-socket)\"",
				d.cfg.table);
		else
			log_msg(LOG_LVL_ERR, "event=fatal reason=table table=%s error=\"%s\"", d.cfg.table,
				nft_strerror(r));
		daemon_close(&d);
		return 1;
	}
	d.keys = holekeys_new();
	if (!d.keys) {
		log_msg(LOG_LVL_ERR, "out of memory");
		daemon_close(&d);
		return 1;
	}
	for (unsigned i = 0; i < d.cfg.workers; i++)
		if (worker_open(&d, i) < 0) {
			log_msg(LOG_LVL_ERR, "event=fatal reason=worker-open worker=%u", i);
			daemon_close(&d);
			return 1;
		}
	/*
	 * Every queue is bound: a connection that starts from now on has its SYN
	 * queued, and its conntrack is not confirmed (not in this dump) before
	 * our verdict. What the dump lists started without us and may be adopted.
	 */
	r = ct_open(&d.snap_ct);
	if (r == 0)
		r = ct_snapshot_take(d.snap_ct, d.cfg.control_ports, d.cfg.ncontrol_ports, &d.snap);
	if (r < 0)
		log_msg(LOG_LVL_WARN, "event=no-adoption error=\"%s\" effect=\"no live session will be adopted\"",
			strerror(-r));
	else if (ct_snapshot_count(d.snap))
		log_msg(LOG_LVL_INFO, "event=adoptable sessions=%zu", ct_snapshot_count(d.snap));
	options_apply_outside(&d);
	if (!d.control_path)
		d.control_path = CONTROL_DEFAULT_PATH;
	char group_why[160];
	d.control_fd = control_listen(d.control_path, d.cfg.control_group, group_why, sizeof(group_why));
	if (d.control_fd >= 0 && group_why[0])
		log_msg(LOG_LVL_WARN,
			"event=control-group path=%s error=\"%s\" effect=\"only root can read the status\"",
			d.control_path, group_why);
	if (d.control_fd < 0) {
		/* Status is a convenience; the gateway works without it. */
		log_msg(LOG_LVL_WARN,
			"event=no-control-socket path=%s error=\"%s\" effect=\"'ftp-alg status' will not answer\"",
			d.control_path,
			d.control_fd == -EADDRINUSE ? "another ftp-alg answers there (use --control-socket)"
						    : strerror(-d.control_fd));
	}
	char pub[INET_ADDRSTRLEN] = "client-facing";
	char ports[128] = "";
	for (unsigned i = 0; i < d.cfg.ncontrol_ports; i++)
		snprintf(ports + strlen(ports), sizeof(ports) - strlen(ports), "%s%u", i ? "," : "",
			 d.cfg.control_ports[i]);
	if (d.cfg.has_public4)
		inet_ntop(AF_INET, d.cfg.public4, pub, sizeof(pub));
	/* masquerade=client-facing: each 227 announces the address its client connected to. */
	log_msg(LOG_LVL_INFO,
		"event=start version=%s control_ports=%s workers=%u queues=%u-%u queue_path=\"%s\" table=%s "
		"masquerade=%s",
		FTP_ALG_VERSION, ports, d.nw, d.cfg.queue, d.cfg.queue + 2 * d.nw - 1,
		nft_queue_path_name(nft_queue_path(d.nft)), d.cfg.table, pub);
	startup_checks(&d);
	/* Before any thread exists: capabilities are per thread, and threads inherit these. */
	char why[256] = "";
	r = sandbox_enter(d.cfg.user, why, sizeof(why));
	if (r < 0) {
		log_msg(LOG_LVL_ERR, "event=fatal reason=privileges error=\"%s\"", why);
		daemon_close(&d);
		return 1;
	}
	log_msg(LOG_LVL_INFO, "event=privileges uid=%u caps=CAP_NET_ADMIN%s%s%s", (unsigned)getuid(),
		why[0] ? " note=\"" : "", why, why[0] ? "\"" : "");

	int rc = run(&d);
	daemon_close(&d);
	log_msg(LOG_LVL_INFO, "event=stopped table=%s rc=%d", d.cfg.table, rc);
	return rc;
}
