/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "../conf/config.h"
#include "worker.h"

#ifndef FTP_ALG_VERSION
#define FTP_ALG_VERSION "0"
#endif

struct holekeys;
struct ct_snapshot;
struct ct;

struct override {
	const char *key, *flag, *value;
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
	/* The public pinhole keys of all workers, so that no two announcements get the same one. */
	struct holekeys *keys;
	/* The control connections that existed once the queues were bound: those may be adopted. */
	struct ct_snapshot *snap;
	struct ct *snap_ct; /* the main thread's ctnetlink socket for the snapshots */
	struct worker w[CONFIG_MAX_WORKERS];
	unsigned nw;
	unsigned notified_sessions, notified_pinholes;
	bool notified;
};

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
	OPT_PROMETHEUS,
};

/* options.c: the command line, the configuration file, and reloading both. */
void options_usage(FILE *f);
int options_parse(struct daemon *d, int argc, char **argv, const char **check);
void options_report_error(void *ctx, const char *path, int line, const char *msg);
/*
 * Reread the configuration: new sessions get it, live ones and armed pinholes stay.
 * fd: the file as the reload client opened it, or -1 to open config_path here.
 */
char *options_reload(struct daemon *d, int fd);
/* Before the workers start: hand each worker's route lookups the Outside= interfaces. */
void options_apply_outside(struct daemon *d);

/* commands.c: the daemon's answer to a control socket command. */
struct control_req;
char *commands_respond(void *ctx, const struct control_req *req);
/* Tell the service manager (STATUS=) the sessions and pinholes, when they changed. */
void commands_notify_status(struct daemon *d);

/* control_client.c: ftp-alg status|reload: talk to a running daemon. */
int control_client(int argc, char **argv);
