/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "session_harness.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "alg/pkt.h"
#include "tests/common/tcp4.h"

const uint8_t CLIENT[4] = {203, 0, 113, 10}, PUBLIC[4] = {203, 0, 113, 1}, SERVER[4] = {192, 0, 2, 10};
const uint8_t LAN_CLIENT[4] = {192, 0, 2, 50}, OUT_SERVER[4] = {198, 51, 100, 200}, GW[4] = {203, 0, 113, 1};

size_t build(const struct ct_info *ct, uint8_t *p, int dir, uint32_t seq, uint8_t flags, const char *payload)
{
	/* As seen at prerouting before NAT: each direction carries its conntrack tuple. */
	const struct flow *f = dir == DIR_ORIG ? &ct->orig : &ct->reply;
	return tcp4_build(p, f->saddr, f->daddr, f->sport, f->dport, seq, flags, payload,
			  payload ? strlen(payload) : 0);
}

void keep(void *ctx, const struct alg_verdicts *v)
{
	struct conn *c = ctx;
	c->v = *v;
	c->emits++;
	c->last_out_len = 0;
	for (unsigned i = 0; i < v->n; i++)
		if (v->v[i].data) {
			memcpy(c->last_out, v->v[i].data, v->v[i].len);
			c->last_out_len = v->v[i].len;
		}
}

void send_pkt(struct conn *c, int dir, uint8_t flags, const char *payload)
{
	uint8_t p[2048];
	size_t len = build(&c->k.ct, p, dir, c->seq[dir], flags, payload);
	unsigned emits = c->emits;
	alg_packet(c->alg, dir, c->id++, p, len, 1000, keep, c);
	/* Every packet gets exactly one batch, even when it is held and the batch is empty. */
	assert_int_equal(c->emits, emits + 1);
	c->seq[dir] += (uint32_t)(payload ? strlen(payload) : 0) + ((flags & PKT_TCP_SYN) ? 1 : 0);
}

/* The payload of the last rewritten packet, or "" if nothing was rewritten. */
const char *out_payload(struct conn *c)
{
	static char buf[2048];
	if (!c->last_out_len)
		return "";
	struct pkt_info pi;
	assert_int_equal(pkt_parse(c->last_out, c->last_out_len, &pi), 0);
	memcpy(buf, c->last_out + pi.payload_off, pi.payload_len);
	buf[pi.payload_len] = '\0';
	return buf;
}

void init_conn(struct conn *c, const uint8_t *client, const uint8_t *dst, const uint8_t *server,
	       const uint8_t *reply_dst)
{
	memset(c, 0, sizeof(*c));
	c->k.seqadj_ext = true;
	c->k.ct.orig.family = c->k.ct.reply.family = AF_INET;
	memcpy(c->k.ct.orig.saddr, client, 4);
	memcpy(c->k.ct.orig.daddr, dst, 4);
	c->k.ct.orig.sport = 40000;
	c->k.ct.orig.dport = 21;
	memcpy(c->k.ct.reply.saddr, server, 4);
	memcpy(c->k.ct.reply.daddr, reply_dst, 4);
	c->k.ct.reply.sport = 21;
	c->k.ct.reply.dport = 40000;
}

void start_conn(struct conn *c, const struct alg_config *cfg)
{
	start_on(c, alg_new(cfg, &fake_kernel_ops, &c->k));
}

void greet_on(struct conn *c, struct alg *a)
{
	c->alg = a;
	c->seq[0] = 1000;
	c->seq[1] = 5000;
	send_pkt(c, DIR_ORIG, PKT_TCP_SYN, NULL);
	send_pkt(c, DIR_REPLY, PKT_TCP_SYN | PKT_TCP_ACK, NULL);
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, "220 ready\r\n");
}

void start_on(struct conn *c, struct alg *a)
{
	greet_on(c, a);
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK, "USER anonymous\r\n");
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, "230 Login successful.\r\n");
}

void start_adopted(struct conn *c, const struct alg_config *cfg)
{
	c->k.ct.seen_reply = true;
	c->k.predates = true;
	c->alg = alg_new(cfg, &fake_kernel_ops, &c->k);
	c->seq[0] = 1500;
	c->seq[1] = 6000;
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK, "NOOP\r\n");
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, "200 ok\r\n");
}

void setup_conn(struct conn *c, const struct alg_config *cfg)
{
	init_conn(c, CLIENT, PUBLIC, SERVER, CLIENT);
	start_conn(c, cfg);
}

void open_conn(struct conn *c)
{
	struct alg_config cfg;
	config_defaults(&cfg);
	setup_conn(c, &cfg);
}

void epsv(struct conn *c, int port)
{
	char line[80];
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	snprintf(line, sizeof(line), "229 Entering Extended Passive Mode (|||%d|)\r\n", port);
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, line);
}

uint64_t refusals_for(struct conn *c, const char *reason)
{
	const struct alg_counters *k = alg_counters(c->alg);
	for (unsigned i = 0; i < ALG_REASONS_MAX && k->refusals[i].reason; i++)
		if (strcmp(k->refusals[i].reason, reason) == 0)
			return k->refusals[i].count;
	return 0;
}

void setup_active(struct conn *c)
{
	struct alg_config cfg;
	config_defaults(&cfg);
	init_conn(c, LAN_CLIENT, OUT_SERVER, OUT_SERVER, GW);
	start_conn(c, &cfg);
}

void adopt_conn(struct conn *c, const struct alg_config *cfg)
{
	init_conn(c, CLIENT, PUBLIC, SERVER, CLIENT);
	c->k.ct.seen_reply = true;
	c->k.predates = true;
	c->alg = alg_new(cfg, &fake_kernel_ops, &c->k);
	c->seq[DIR_ORIG] = 1500;
	c->seq[DIR_REPLY] = 6000;
}

void tick(struct conn *c, time_t now)
{
	alg_tick(c->alg, now, keep, c);
}
