/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../nft/nft.h"
#include "daemon.h"
#include "session.h"

char *commands_respond(void *ctx, const char *cmd)
{
	struct daemon *d = ctx;
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "status json") == 0) {
		struct alg *v[CONFIG_MAX_WORKERS];
		for (unsigned i = 0; i < d->nw; i++) {
			pthread_mutex_lock(&d->w[i].lock);
			v[i] = d->w[i].alg;
		}
		char json[512], text[512];
		workers_timing(d, json, sizeof(json), text, sizeof(text));
		char *out = alg_status(v, d->nw, alg_clock(), strcmp(cmd, "status json") == 0, FTP_ALG_VERSION,
				       nft_queue_path_name(nft_queue_path(d->nft)), json, text);
		for (unsigned i = d->nw; i-- > 0;)
			pthread_mutex_unlock(&d->w[i].lock);
		return out;
	}
	if (strcmp(cmd, "reload") == 0)
		return options_reload(d);
	return strdup("error: unknown command (status, status json, reload)\n");
}
