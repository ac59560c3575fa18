/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../nft/nft.h"
#include "control.h"
#include "ct.h"
#include "log.h"
#include "daemon.h"
#include "session.h"

/* The per-operation clocks as metrics; the names are worker.c's t_names, in enum order. */
static void prom_clocks(const struct daemon *d, FILE *f)
{
	static const char *const names[T_MAX] = {"packet", "verdict", "nft", "ctnetlink", "rtnetlink"};
	struct op_clock sum[T_MAX] = {{0, 0}};
	for (int k = 0; k < T_MAX; k++)
		for (unsigned i = 0; i < d->nw; i++) {
			sum[k].n += d->w[i].t[k].n;
			sum[k].ns += d->w[i].t[k].ns;
		}
	fputs("# HELP ftp_alg_operations_total Operations timed, by kind (a queued packet, the verdicts of a burst, "
	      "an nftables batch, a ctnetlink or rtnetlink request).\n# TYPE ftp_alg_operations_total counter\n",
	      f);
	for (int k = 0; k < T_MAX; k++)
		fprintf(f, "ftp_alg_operations_total{op=\"%s\"} %llu\n", names[k], (unsigned long long)sum[k].n);
	fputs("# HELP ftp_alg_operation_seconds_total Time spent in operations, by kind.\n"
	      "# TYPE ftp_alg_operation_seconds_total counter\n",
	      f);
	for (int k = 0; k < T_MAX; k++)
		fprintf(f, "ftp_alg_operation_seconds_total{op=\"%s\"} %llu.%09llu\n", names[k],
			(unsigned long long)(sum[k].ns / 1000000000u), (unsigned long long)(sum[k].ns % 1000000000u));
}

static char *status(struct daemon *d, const char *cmd)
{
	struct alg *v[CONFIG_MAX_WORKERS];
	for (unsigned i = 0; i < d->nw; i++) {
		pthread_mutex_lock(&d->w[i].lock);
		v[i] = d->w[i].alg;
	}
	char *out = NULL;
	const char *qp = nft_queue_path_name(nft_queue_path(d->nft));
	if (strcmp(cmd, "status prometheus") == 0) {
		char *extra = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&extra, &len);
		if (f) {
			prom_clocks(d, f);
			fclose(f);
			out = alg_status_prometheus(v, d->nw, alg_clock(), FTP_ALG_VERSION, qp, extra);
		}
		free(extra);
	} else {
		char json[512], text[512];
		workers_timing(d, json, sizeof(json), text, sizeof(text));
		out =
		    alg_status(v, d->nw, alg_clock(), strcmp(cmd, "status json") == 0, FTP_ALG_VERSION, qp, json, text);
	}
	for (unsigned i = d->nw; i-- > 0;)
		pthread_mutex_unlock(&d->w[i].lock);
	return out;
}

struct rearm {
	struct daemon *d;
	time_t now;
	unsigned armed, failed;
};

/*
 * A pinhole the peer gateway armed on this control connection and recorded
 * in its labels (kernel.h), not yet expired: armed here with the same key,
 * for the same client and target, for the time it has left. The pinhole
 * book does not follow it; its timeout in the set removes it.
 */
static void rearm_one(void *ctx, const struct ct_info *ct)
{
	struct rearm *ra = ctx;
	struct ct_hole_rec rec;
	if (!ct->has_labels || !ct->seen_reply || !ct_rec_decode(ct->labels, &rec) || (time_t)rec.expires <= ra->now)
		return;
	size_t l = flow_addr_len(ct->orig.family);
	struct pinhole p = {.family = ct->orig.family,
			    .port = rec.port,
			    .target_port = rec.target_port,
			    .timeout = (uint32_t)((time_t)rec.expires - ra->now),
			    .active = rec.active};
	/* As policy.c's choose_pinhole: passive for the client to the server, active the reverse. */
	memcpy(p.client, rec.active ? ct->reply.saddr : ct->orig.saddr, l);
	memcpy(p.local, rec.active ? ct->reply.daddr : ct->orig.daddr, l);
	memcpy(p.target, rec.active ? ct->orig.saddr : ct->reply.saddr, l);
	pthread_mutex_lock(&ra->d->nft_lock);
	int r = nft_pinhole_add(ra->d->nft, &p, NULL);
	pthread_mutex_unlock(&ra->d->nft_lock);
	if (r < 0 && r != -EEXIST)
		ra->failed++;
	else
		ra->armed++;
}

/*
 * This gateway takes over (or hands over) the gateway pair's connections:
 * every control conntrack the kernel has now, the ones conntrackd brought
 * from the peer included, becomes adoptable, and the sessions followed so
 * far restart their streams. Only root or the daemon's user may say so:
 * nothing a peer sends makes a conntrack adoptable.
 */
static char *takeover(struct daemon *d)
{
	struct ct_snapshot *sn = NULL;
	int r = d->snap_ct ? ct_snapshot_take(d->snap_ct, d->cfg.control_ports, d->cfg.ncontrol_ports, &sn) : -ENOTCONN;
	char *out = NULL;
	if (r < 0) {
		log_msg(LOG_LVL_ERR, "event=takeover-failed error=\"%s\"", strerror(-r));
		return asprintf(&out, "error: cannot list the conntracks: %s\n", strerror(-r)) < 0 ? NULL : out;
	}
	size_t adoptable = ct_snapshot_count(sn);
	unsigned kept = 0;
	ct_snapshot_free(workers_takeover(d, sn, &kept));
	struct rearm ra = {.d = d, .now = time(NULL)};
	ct_snapshot_foreach(sn, rearm_one, &ra);
	log_msg(LOG_LVL_INFO, "event=takeover adoptable=%zu rejoined=%u pinholes=%u pinhole_errors=%u", adoptable, kept,
		ra.armed, ra.failed);
	int n = asprintf(&out,
			 "takeover: %zu control connections adoptable, %u sessions rejoined, %u pinholes re-armed%s\n",
			 adoptable, kept, ra.armed, ra.failed ? " (some failed: see the log)" : "");
	return n < 0 ? NULL : out;
}

char *commands_respond(void *ctx, const struct control_req *req)
{
	struct daemon *d = ctx;
	const char *cmd = req->cmd;
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "status json") == 0 || strcmp(cmd, "status prometheus") == 0)
		return status(d, cmd);
	/* The reload client opens the file with its own rights and passes it along: see options_reload(). */
	if (strcmp(cmd, "config-path") == 0) {
		char *out = NULL;
		return asprintf(&out, "%s\n", d->config_path ? d->config_path : "") < 0 ? NULL : out;
	}
	if (strcmp(cmd, "reload") == 0) {
		if (!req->privileged)
			return strdup("error: only root or the daemon's user may reload\n");
		return options_reload(d, req->fd);
	}
	if (strcmp(cmd, "takeover") == 0) {
		if (!req->privileged)
			return strdup("error: only root or the daemon's user may take over\n");
		return takeover(d);
	}
	return strdup("error: unknown command (status, status json, status prometheus, reload, takeover)\n");
}

void commands_notify_status(struct daemon *d)
{
	/* At most once a second, and only when something changed. */
	static time_t last;
	time_t now = time(NULL);
	if (!getenv("NOTIFY_SOCKET") || d->nw == 0 || now == last)
		return;
	last = now;
	struct alg *v[CONFIG_MAX_WORKERS];
	for (unsigned i = 0; i < d->nw; i++) {
		pthread_mutex_lock(&d->w[i].lock);
		v[i] = d->w[i].alg;
	}
	unsigned sessions, pinholes;
	alg_totals(v, d->nw, &sessions, &pinholes);
	for (unsigned i = d->nw; i-- > 0;)
		pthread_mutex_unlock(&d->w[i].lock);
	if (d->notified && sessions == d->notified_sessions && pinholes == d->notified_pinholes)
		return;
	d->notified = true;
	d->notified_sessions = sessions;
	d->notified_pinholes = pinholes;
	char msg[96];
	snprintf(msg, sizeof(msg), "STATUS=%u session%s, %u pinhole%s armed", sessions, sessions == 1 ? "" : "s",
		 pinholes, pinholes == 1 ? "" : "s");
	sd_notify(msg);
}
