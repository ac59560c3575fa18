/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * From a stream's result to queue verdicts: the kernel's sequence offsets
 * first, then each released packet as it was, rebuilt around its new
 * payload, or dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pkt.h"
#include "session_int.h"

/* Room for need more bytes of rebuilt packets. */
static int pktbuf_reserve(struct alg *a, size_t need)
{
	if (a->pktbuf_used + need <= a->pktbuf_cap)
		return 0;
	/* Rebuilt packets stay valid until their verdicts are out, so only grow between batches. */
	if (a->pktbuf_used != 0)
		return -ENOSPC;
	size_t n = a->pktbuf_cap ? a->pktbuf_cap : (size_t)1 << 19;
	while (n < need)
		n *= 2;
	uint8_t *p = realloc(a->pktbuf, n);
	if (!p)
		return -ENOMEM;
	a->pktbuf = p;
	a->pktbuf_cap = n;
	return 0;
}

void add_verdict(struct alg_verdicts *v, uint32_t id, bool accept, const uint8_t *data, size_t len)
{
	if (v->n < ALG_VERDICT_MAX)
		v->v[v->n++] = (struct alg_verdict){.id = id, .accept = accept, .data = data, .len = len};
}

void to_verdicts(struct alg *a, struct session *s, int dir, const struct stream_result *res, const uint8_t *cur_pkt,
		 size_t cur_len, bool cur_urgent, struct alg_verdicts *v)
{
	if (res->seqadj_changed) {
		int r = a->ops->seqadj_set(a->kernel, &s->orig, dir, res->corr_pos, res->off_before, res->off_after);
		if (r < 0) {
			a->ctr.errors++;
			log_msg(LOG_LVL_ERR, "session=%llu event=seqadj-failed error=\"%s\"", (unsigned long long)s->id,
				strerror(-r));
		}
	}
	size_t need = 0;
	for (unsigned i = 0; i < res->nout; i++)
		need += 128 + res->out[i].len + (res->out[i].held ? res->out[i].held->payload_off : cur_len);
	if (pktbuf_reserve(a, need) < 0)
		need = 0;
	for (unsigned i = 0; i < res->nout; i++) {
		const struct stream_out *o = &res->out[i];
		if (o->verdict == STREAM_DROP) {
			a->ctr.dropped++;
			add_verdict(v, o->id, false, NULL, 0);
			continue;
		}
		const uint8_t *base = o->held ? o->held->pkt : cur_pkt;
		size_t base_len = o->held ? o->held->pkt_len : cur_len;
		/*
		 * A client's urgent byte would vanish from the server's stream (no
		 * SO_OOBINLINE) after being read here as part of the line: "PORXT" with
		 * the X urgent is "PORT" there. Such a segment goes on without URG.
		 */
		bool urgent = dir == DIR_ORIG && (o->held ? pkt_tcp_urgent(base, base_len) : cur_urgent);
		if (!o->modified && !urgent) {
			/* The kernel still has the original packet. */
			add_verdict(v, o->id, true, NULL, 0);
			continue;
		}
		struct pkt_info pi;
		int n = -1;
		if (need && pkt_parse(base, base_len, &pi) == 0) {
			const uint8_t *payload = o->modified ? o->payload : base + pi.payload_off;
			size_t plen = o->modified ? o->len : pi.payload_len;
			n = pkt_rebuild(base, base_len, &pi, payload, plen, a->pktbuf + a->pktbuf_used,
					a->pktbuf_cap - a->pktbuf_used);
		}
		if (n < 0) {
			/* Cannot build it: drop rather than send a half-rewritten segment; TCP resends. */
			a->ctr.errors++;
			add_verdict(v, o->id, false, NULL, 0);
			continue;
		}
		add_verdict(v, o->id, true, a->pktbuf + a->pktbuf_used, (size_t)n);
		a->pktbuf_used += (size_t)n;
	}
}

/*
 * A SYN passes with its MSS lowered by what rewrites may add, so that a full
 * segment that grows still fits the MTU (IPv6 cannot fragment on the way).
 */
void syn_verdict(struct alg *a, uint32_t id, const uint8_t *pkt, size_t len, const struct pkt_info *pi,
		 struct alg_verdicts *v)
{
	if (pktbuf_reserve(a, len) == 0) {
		uint8_t *c = a->pktbuf + a->pktbuf_used;
		memcpy(c, pkt, len);
		if (pkt_clamp_mss(c, len, pi, STREAM_GROW_MAX) == 1) {
			a->pktbuf_used += len;
			add_verdict(v, id, true, c, len);
			return;
		}
	}
	add_verdict(v, id, true, NULL, 0);
}

void flush_dir(struct alg *a, struct session *s, int dir, alg_emit_fn emit, void *ctx, bool neutralize_partial)
{
	struct stream_result res;
	struct alg_verdicts v = {.dir = dir};

	unsigned before = s->dir[dir].nheld;
	stream_flush(&s->dir[dir], &res, neutralize_partial ? "XXXX" : NULL, 4);
	count_held(a, s, (int)s->dir[dir].nheld - (int)before);
	s->held_since[dir] = 0;
	if (res.nout == 0)
		return;
	to_verdicts(a, s, dir, &res, NULL, 0, false, &v);
	emit(ctx, &v);
	stream_result_done(&s->dir[dir], &res);
	a->pktbuf_used = 0;
}
