/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../nft/nft.h"
#include "ct.h"
#include "daemon.h"
#include "log.h"
#include "queue.h"
#include "route.h"
#include "session.h"

static const char *const t_names[T_MAX] = {"packet", "verdict", "nft", "ctnetlink", "rtnetlink"};

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

static int k_ct_get(void *k, const struct flow *seen, int dir, struct ct_info *out)
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	int r = ct_get(w->ct, seen, dir, out);
	tally(&w->t[T_CT], t0);
	return r;
}

static bool k_ct_predates(void *k, const struct ct_info *ct)
{
	struct worker *w = k;
	return ct_snapshot_has(w->d->snap, ct);
}

/* The verdicts emit kept go to the kernel, in one message. */
static void flush(struct worker *w)
{
	uint64_t t0 = now_ns();
	int r = queue_flush(w->q);
	if (r > 0)
		tally(&w->t[T_VERDICT], t0);
	if (r < 0)
		log_msg(LOG_LVL_ERR, "event=verdict-failed error=\"%s\"", strerror(-r));
}

static int k_seqadj(void *k, const struct flow *orig, int dir, uint32_t pos, int32_t before, int32_t after)
{
	struct worker *w = k;
	/*
	 * The kernel keeps one correction point per direction: a packet handled
	 * before this change must pass with the offsets it was handled under, so
	 * the verdicts kept so far go first.
	 */
	flush(w);
	uint64_t t0 = now_ns();
	int r = ct_seqadj_set(w->ct, orig, dir, pos, before, after);
	tally(&w->t[T_CT], t0);
	return r;
}

static int k_labels(void *k, const struct flow *orig, const uint8_t labels[16], const uint8_t mask[16])
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	int r = ct_labels_set(w->ct, orig, labels, mask);
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

static int k_holes_destroy(void *k, const struct pinhole *v, unsigned n)
{
	struct worker *w = k;
	uint64_t t0 = now_ns();
	pthread_mutex_lock(&w->d->nft_lock);
	int r = nft_pinholes_destroy(w->d->nft, v, n);
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
						 .ct_predates = k_ct_predates,
						 .seqadj_set = k_seqadj,
						 .labels_set = k_labels,
						 .pinhole_add = k_hole_add,
						 .pinhole_del = k_hole_del,
						 .pinholes_destroy = k_holes_destroy,
						 .via_default = k_via_default,
						 .pinholes_armed = k_armed};

static void emit(void *ctx, const struct alg_verdicts *v)
{
	struct worker *w = ctx;
	for (unsigned i = 0; i < v->n; i++) {
		int r = queue_verdict(w->q, v->dir, v->v[i].id, v->v[i].accept, v->v[i].data, v->v[i].len);
		if (r < 0)
			log_msg(LOG_LVL_ERR, "event=verdict-failed id=%u error=\"%s\"", v->v[i].id, strerror(-r));
	}
}

static void on_packet(void *ctx, int dir, uint32_t id, const uint8_t *pkt, size_t len)
{
	struct worker *w = ctx;
	uint64_t t0 = now_ns();
	alg_packet(w->alg, dir, id, pkt, len, alg_clock(), emit, w);
	tally(&w->t[T_PACKET], t0);
}

/* The workers' operation clocks, for status: a JSON member and a text line. Called with their locks held. */
void workers_timing(const struct daemon *d, char *json, size_t jcap, char *text, size_t tcap)
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
	/* A refused batch is the expensive kind (the kernel's abort waits for RCU): none is expected. */
	unsigned long long failed = (unsigned long long)nft_failed_batches(d->nft);
	if (jl < jcap)
		snprintf(json + jl, jcap - jl, "},\"nft_batches_failed\":%llu", failed);
	if (tl < tcap)
		snprintf(text + tl, tcap - tl, "; nft batches refused: %llu\n", failed);
}

void *worker_main(void *arg)
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
			flush(w);
			pthread_mutex_unlock(&w->lock);
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t n;
			if (read(w->timer_fd, &n, sizeof(n)) > 0) {
				pthread_mutex_lock(&w->lock);
				alg_tick(w->alg, alg_clock(), emit, w);
				flush(w);
				pthread_mutex_unlock(&w->lock);
			}
		}
	}
	/* Release what it holds while its queues are still bound; its pinholes go too. */
	pthread_mutex_lock(&w->lock);
	alg_shutdown(w->alg, emit, w);
	flush(w);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct ct_snapshot *workers_takeover(struct daemon *d, struct ct_snapshot *sn, unsigned *kept)
{
	*kept = 0;
	for (unsigned i = 0; i < d->nw; i++)
		pthread_mutex_lock(&d->w[i].lock);
	struct ct_snapshot *old = d->snap;
	d->snap = sn;
	for (unsigned i = 0; i < d->nw; i++) {
		*kept += alg_takeover(d->w[i].alg, alg_clock(), emit, &d->w[i]);
		flush(&d->w[i]);
	}
	for (unsigned i = d->nw; i-- > 0;)
		pthread_mutex_unlock(&d->w[i].lock);
	return old;
}

void workers_stop(struct daemon *d)
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

void worker_close(struct worker *w)
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

/* A worker's kernel sockets and state; logs what failed. */
int worker_open(struct daemon *d, unsigned idx)
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
	alg_set_keys(w->alg, d->keys);
	return 0;
}
