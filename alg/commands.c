/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../nft/nft.h"
#include "control.h"
#include "daemon.h"
#include "session.h"

char *commands_respond(void *ctx, const struct control_req *req)
{
	struct daemon *d = ctx;
	const char *cmd = req->cmd;
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "status json") == 0) {
		struct alg *v[CONFIG_MAX_WORKERS];
		for (unsigned i = 0; i < d->nw; i++) {
			pthread_mutex_lock(&d->w[i].lock);
			v[i] = d->w[i].alg;
		}
		char json[512], text[512];
		workers_timing(d, json, sizeof(json), text, sizeof(text));
		char *out = alg_status(v, d->nw, time(NULL), strcmp(cmd, "status json") == 0, FTP_ALG_VERSION,
				       nft_queue_path_name(nft_queue_path(d->nft)), json, text);
		for (unsigned i = d->nw; i-- > 0;)
			pthread_mutex_unlock(&d->w[i].lock);
		return out;
	}
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
	return strdup("error: unknown command (status, status json, reload)\n");
}
