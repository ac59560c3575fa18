/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The whole packet path behind a fake queue and kernel: the input is a
 * sequence of packets of one control connection, in both directions. Every
 * packet handed back for the kernel must parse and carry the same flow.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alg/log.h"
#include "alg/pkt.h"
#include "alg/session.h"
#include "tests/common/tcp4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t CLIENT[4] = {203, 0, 113, 10}, PUBLIC[4] = {203, 0, 113, 1}, SERVER[4] = {192, 0, 2, 10};
static struct ct_info ct;

static int k_ct_get(void *k, const struct flow *seen, int dir, struct ct_info *out)
{
	(void)k;
	(void)seen;
	(void)dir;
	*out = ct;
	return 0;
}

static int k_seqadj(void *k, const struct flow *o, int dir, uint32_t pos, int32_t b, int32_t a)
{
	(void)k, (void)o, (void)dir, (void)pos, (void)b, (void)a;
	return 0;
}

static int k_hole_add(void *k, const struct pinhole *p, const struct pinhole *replaced)
{
	(void)k;
	(void)p;
	(void)replaced;
	return 0;
}

static int k_hole_del(void *k, const struct pinhole *p)
{
	(void)k;
	(void)p;
	return 0;
}

static const struct alg_kernel_ops ops = {k_ct_get, k_seqadj, k_hole_add, k_hole_del, NULL, NULL};

static size_t build(uint8_t *p, int dir, uint32_t seq, uint8_t flags, const uint8_t *payload, size_t plen)
{
	return tcp4_build(p, dir ? SERVER : CLIENT, dir ? CLIENT : PUBLIC, dir ? 21 : 40000, dir ? 40000 : 21, seq,
			  flags, payload, plen);
}

static void check(const struct alg_verdicts *v)
{
	for (unsigned i = 0; i < v->n; i++) {
		if (!v->v[i].data)
			continue;
		struct pkt_info pi;
		if (pkt_parse(v->v[i].data, v->v[i].len, &pi) != 0 || pi.family != AF_INET)
			abort();
	}
}

static void emit(void *ctx, const struct alg_verdicts *v)
{
	(void)ctx;
	check(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		log_open("fuzz", 0, 0);
		memset(&ct, 0, sizeof(ct));
		ct.orig.family = ct.reply.family = AF_INET;
		memcpy(ct.orig.saddr, CLIENT, 4);
		memcpy(ct.orig.daddr, PUBLIC, 4);
		ct.orig.sport = 40000;
		ct.orig.dport = 21;
		memcpy(ct.reply.saddr, SERVER, 4);
		memcpy(ct.reply.daddr, CLIENT, 4);
		ct.reply.sport = 21;
		ct.reply.dport = 40000;
		ct.seqadj_present[1] = true;
		init = true;
	}
	struct alg_config cfg;
	config_defaults(&cfg);
	struct alg *a = alg_new(&cfg, &ops, NULL);
	uint32_t seq[2] = {1000, 5000}, id = 0;
	uint8_t pkt[2048];
	time_t now = 1000;

	/* Handshake and greeting, so that later bytes are parsed. */
	alg_packet(a, 0, id++, pkt, build(pkt, 0, seq[0]++, PKT_TCP_SYN, NULL, 0), now, emit, NULL);
	alg_packet(a, 1, id++, pkt, build(pkt, 1, seq[1]++, PKT_TCP_SYN | PKT_TCP_ACK, NULL, 0), now, emit, NULL);

	size_t pos = 0;
	while (pos + 2 <= size) {
		uint8_t ctl = data[pos++], lenb = data[pos++];
		size_t n = lenb;
		if (n > size - pos)
			n = size - pos;
		int dir = ctl & 1;
		if (ctl & 0x80) {
			/* Raw bytes as a whole packet: anything the network might send. */
			alg_packet(a, dir, id++, data + pos, n, now, emit, NULL);
		} else {
			uint32_t s = seq[dir];
			if (ctl & 0x02)
				s -= (uint32_t)(ctl >> 2 & 0x0f); /* overlap with what was sent */
			if (ctl & 0x40)
				s += 7; /* a gap */
			uint8_t flags = PKT_TCP_ACK | ((ctl & 0x20) ? PKT_TCP_FIN : 0);
			alg_packet(a, dir, id++, pkt, build(pkt, dir, s, flags, data + pos, n), now, emit, NULL);
			if (!(ctl & 0x42))
				seq[dir] += (uint32_t)n;
		}
		pos += n;
		if (ctl & 0x10)
			alg_tick(a, ++now, emit, NULL);
	}
	char *st = alg_status(&a, 1, now, true, "fuzz", "none", NULL, NULL);
	free(st);
	alg_free(a);
	return 0;
}
