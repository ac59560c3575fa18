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
#include "tests/common/fake_kernel.h"
#include "tests/common/tcp4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t CLIENT[4] = {203, 0, 113, 10}, PUBLIC[4] = {203, 0, 113, 1}, SERVER[4] = {192, 0, 2, 10};
static struct fake_kernel k;

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
		init = true;
	}
	/* A fresh kernel for every input, with one conntrack entry that answers for any flow. */
	memset(&k, 0, sizeof(k));
	k.any_flow = true;
	k.ct.orig.family = k.ct.reply.family = AF_INET;
	memcpy(k.ct.orig.saddr, CLIENT, 4);
	memcpy(k.ct.orig.daddr, PUBLIC, 4);
	k.ct.orig.sport = 40000;
	k.ct.orig.dport = 21;
	memcpy(k.ct.reply.saddr, SERVER, 4);
	memcpy(k.ct.reply.daddr, CLIENT, 4);
	k.ct.reply.sport = 21;
	k.ct.reply.dport = 40000;
	k.ct.seqadj_present[1] = true;
	struct alg_config cfg;
	config_defaults(&cfg);
	struct alg *a = alg_new(&cfg, &fake_kernel_ops, &k);
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
