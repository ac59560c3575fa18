/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../conf/config.h"
#include "../nft/nft.h"
#include "control.h"
#include "daemon.h"
#include "log.h"
#include "route.h"
#include "session.h"

void options_report_error(void *ctx, const char *path, int line, const char *msg)
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
char *options_reload(struct daemon *d, int fd)
{
	struct alg_config c;
	char *msg = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&msg, &len);
	if (!f)
		return NULL;
	config_defaults(&c);
	/*
	 * Privileges are dropped by now, so a file only root may read can be reloaded only through
	 * "ftp-alg reload", which opens it as root and passes the descriptor along.
	 */
	int r = !d->config_path ? 0
		: fd >= 0	? config_load_fd(&c, fd, d->config_path, report_to, f)
				: config_load(&c, d->config_path, report_to, f);
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
			fprintf(f, "%s: %s%s\n", d->config_path, strerror(-r),
				r == -EACCES ? " (the daemon runs unprivileged: use 'ftp-alg reload' as root, which "
					       "passes the file along)"
					     : "");
		fprintf(f, "error: %s is bad; keeping the running configuration\n", d->config_path);
		log_msg(LOG_LVL_ERR, "event=reload-refused file=%s error=\"%s\"", d->config_path,
			r == -EINVAL ? "bad settings" : strerror(-r));
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
			route_set_outside(d->w[i].route, c.outside, c.noutside);
			pthread_mutex_unlock(&d->w[i].lock);
		}
		log_set_level(c.log_level);
		fprintf(f, "reloaded %s\n", d->config_path ? d->config_path : "(defaults)");
		log_msg(LOG_LVL_INFO, "event=reload file=%s", d->config_path ? d->config_path : "(defaults)");
	}
	fclose(f);
	return msg;
}

void options_apply_outside(struct daemon *d)
{
	for (unsigned i = 0; i < d->nw; i++)
		route_set_outside(d->w[i].route, d->cfg.outside, d->cfg.noutside);
}

void options_usage(FILE *f)
{
	fprintf(f,
		"Usage: ftp-alg [OPTIONS]\n"
		"       ftp-alg status [--json | --prometheus] [--control-socket PATH]\n"
		"       ftp-alg reload [--control-socket PATH]\n"
		"       ftp-alg takeover [--control-socket PATH]\n"
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

int options_parse(struct daemon *d, int argc, char **argv, const char **check)
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
			options_usage(stdout);
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
			options_usage(stderr);
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
		int r = config_load(&d->cfg, path, options_report_error, NULL);
		if (r < 0 && r != -EINVAL)
			fprintf(stderr, "ftp-alg: %s: %s\n", path, strerror(-r));
		bad |= r < 0;
		d->config_path = path;
	}
	/* Flags override the file. */
	for (unsigned i = 0; i < nlater; i++) {
		if (strcmp(later[i].key, "table") == 0)
			snprintf(d->cfg.table, sizeof(d->cfg.table), "%s", later[i].value);
		else if (config_set(&d->cfg, later[i].key, later[i].value, later[i].flag, 0, options_report_error,
				    NULL) < 0)
			bad = 1;
	}
	if (config_check(&d->cfg, true, options_report_error, NULL) < 0 || bad)
		return -EINVAL;
	d->noverrides = nlater;
	d->verbose = verbose;
	if (verbose)
		d->cfg.log_level = LOG_LVL_DEBUG;
	return 0;
}
