/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alg/log.h"
#include "alg/pkt.h"
#include "alg/session.h"
#include "tests/common/tcp4.h"

/* A fake kernel: records what the session layer asks for. */
struct fake_kernel {
	struct ct_info ct;
	struct ct_info ct2; /* a second connection, when has_ct2 */
	bool has_ct2;
	bool seqadj_ext;
	int seqadj_calls;
	int last_dir;
	uint32_t last_pos;
	int32_t last_before, last_after;
	struct pinhole added[32];
	int nadded;
	struct pinhole deleted[32];
	int ndeleted;
	uint8_t outside[4]; /* the one address reached via the default route */
	bool consumed[32];  /* added[i] used by its data connection */
};

static int f_ct_get(void *k, const struct flow *seen, int dir, struct ct_info *out)
{
	struct fake_kernel *f = k;
	for (int i = 0; i < (f->has_ct2 ? 2 : 1); i++) {
		const struct ct_info *ct = i ? &f->ct2 : &f->ct;
		const struct flow *want = dir == DIR_REPLY ? &ct->reply : &ct->orig;
		if (memcmp(seen->saddr, want->saddr, 4) || memcmp(seen->daddr, want->daddr, 4) ||
		    seen->sport != want->sport || seen->dport != want->dport)
			continue;
		*out = *ct;
		return 0;
	}
	return -ENOENT;
}

static int f_seqadj(void *k, const struct flow *orig, int dir, uint32_t pos, int32_t before, int32_t after)
{
	struct fake_kernel *f = k;
	(void)orig;
	f->seqadj_calls++;
	f->last_dir = dir;
	f->last_pos = pos;
	f->last_before = before;
	f->last_after = after;
	if (f->seqadj_ext)
		f->ct.seqadj_present[dir] = true;
	return 0;
}

static int f_del(void *k, const struct pinhole *p);

static int f_add(void *k, const struct pinhole *p, const struct pinhole *replaced)
{
	struct fake_kernel *f = k;
	if (replaced)
		f_del(k, replaced);
	f->added[f->nadded++ % 32] = *p;
	return 0;
}

static int f_del(void *k, const struct pinhole *p)
{
	struct fake_kernel *f = k;
	f->deleted[f->ndeleted++ % 32] = *p;
	for (int i = 0; i < f->nadded && i < 32; i++)
		if (f->added[i].port == p->port && f->consumed[i])
			return 0;
	return 1;
}

static int f_via_default(void *k, int family, const uint8_t *addr)
{
	struct fake_kernel *f = k;
	(void)family;
	return memcmp(addr, f->outside, 4) == 0;
}

static int f_armed(void *k, void (*cb)(void *ctx, const struct pinhole *p), void *ctx)
{
	struct fake_kernel *f = k;
	for (int i = 0; i < f->nadded && i < 32; i++) {
		bool gone = f->consumed[i];
		for (int j = 0; j < f->ndeleted && j < 32; j++)
			if (f->deleted[j].port == f->added[i].port)
				gone = true;
		if (!gone)
			cb(ctx, &f->added[i]);
	}
	return 0;
}

static const struct alg_kernel_ops fake_ops = {f_ct_get, f_seqadj, f_add, f_del, f_via_default, f_armed};

static const uint8_t CLIENT[4] = {203, 0, 113, 10}, PUBLIC[4] = {203, 0, 113, 1}, SERVER[4] = {192, 0, 2, 10};

struct conn {
	struct alg *alg;
	struct fake_kernel k;
	uint32_t seq[2];
	uint32_t id;
	struct alg_verdicts v;
	unsigned emits; /* batches of verdicts handed out */
	uint8_t last_out[2048];
	size_t last_out_len;
};

/* Keeps the verdicts of the last batch, and a copy of its last rebuilt packet. */
static void keep(void *ctx, const struct alg_verdicts *v)
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

static size_t build(const struct ct_info *ct, uint8_t *p, int dir, uint32_t seq, uint8_t flags, const char *payload)
{
	/* As seen at prerouting before NAT: each direction carries its conntrack tuple. */
	const struct flow *f = dir == DIR_ORIG ? &ct->orig : &ct->reply;
	return tcp4_build(p, f->saddr, f->daddr, f->sport, f->dport, seq, flags, payload,
			  payload ? strlen(payload) : 0);
}

static void send_pkt(struct conn *c, int dir, uint8_t flags, const char *payload)
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
static const char *out_payload(struct conn *c)
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

/* The fake conntrack: client:40000 -> dst:21, answered by server:21 -> reply_dst:40000. */
static void set_ct(struct conn *c, const uint8_t *client, const uint8_t *dst, const uint8_t *server,
		   const uint8_t *reply_dst)
{
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

static void start_conn(struct conn *c, const struct alg_config *cfg)
{
	c->alg = alg_new(cfg, &fake_ops, &c->k);
	c->seq[0] = 1000;
	c->seq[1] = 5000;
	send_pkt(c, DIR_ORIG, PKT_TCP_SYN, NULL);
	send_pkt(c, DIR_REPLY, PKT_TCP_SYN | PKT_TCP_ACK, NULL);
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, "220 ready\r\n");
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK, "USER anonymous\r\n");
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, "230 Login successful.\r\n");
}

static void setup_conn(struct conn *c, const struct alg_config *cfg)
{
	memset(c, 0, sizeof(*c));
	c->k.seqadj_ext = true;
	set_ct(c, CLIENT, PUBLIC, SERVER, CLIENT);
	c->alg = alg_new(cfg, &fake_ops, &c->k);
	c->seq[0] = 1000;
	c->seq[1] = 5000;
	send_pkt(c, DIR_ORIG, PKT_TCP_SYN, NULL);
	send_pkt(c, DIR_REPLY, PKT_TCP_SYN | PKT_TCP_ACK, NULL);
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, "220 ready\r\n");
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK, "USER anonymous\r\n");
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, "230 Login successful.\r\n");
}

static void open_conn(struct conn *c)
{
	struct alg_config cfg;
	config_defaults(&cfg);
	setup_conn(c, &cfg);
}

static void pasv_rewritten_with_pinhole(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	uint32_t seq227 = c.seq[DIR_REPLY];
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode (203,0,113,1,195,80).\r\n");
	assert_int_equal(c.k.nadded, 1);
	struct pinhole *p = &c.k.added[0];
	assert_memory_equal(p->client, CLIENT, 4);
	assert_memory_equal(p->local, PUBLIC, 4);
	assert_memory_equal(p->target, SERVER, 4);
	assert_int_equal(p->port, 50000);
	assert_int_equal(p->target_port, 50000);
	assert_int_equal(p->timeout, 60);
	assert_int_equal(c.k.last_dir, DIR_REPLY);
	assert_int_equal(c.k.last_pos, seq227);
	assert_int_equal(c.k.last_before, 0);
	assert_int_equal(c.k.last_after, 1);
	/* The next rewrite carries the offset forward. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "pasv\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,81).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode (203,0,113,1,195,81).\r\n");
	assert_int_equal(c.k.last_before, 1);
	assert_int_equal(c.k.last_after, 2);
	/* FIN: the armed pinholes go. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	assert_int_equal(c.k.ndeleted, 2);
	alg_free(c.alg);
}

/* Insertion: a forged 227 with a bad checksum, or one the parser cannot read, is dropped unread. */
static void bad_packets_dropped_unread(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	uint8_t p[2048];
	const char *forged = "227 Entering Passive Mode (192,0,2,10,195,80).\r\n";
	size_t len = build(&c.k.ct, p, DIR_REPLY, c.seq[DIR_REPLY], PKT_TCP_ACK, forged);
	p[len - 3] ^= 0x01;
	alg_packet(c.alg, DIR_REPLY, c.id++, p, len, 1000, keep, &c);
	assert_int_equal(c.v.n, 1);
	assert_false(c.v.v[0].accept);
	assert_int_equal(c.k.nadded, 0);
	/* An IPv4 fragment (the kernel reassembles before the queue) is not read either. */
	len = build(&c.k.ct, p, DIR_REPLY, c.seq[DIR_REPLY], PKT_TCP_ACK, forged);
	p[6] = 0x20; /* more fragments */
	alg_packet(c.alg, DIR_REPLY, c.id++, p, len, 1000, keep, &c);
	assert_int_equal(c.v.n, 1);
	assert_false(c.v.v[0].accept);
	assert_int_equal(c.k.nadded, 0);
	assert_int_equal(alg_counters(c.alg)->dropped, 2);
	/* The genuine reply at the same place is still rewritten. */
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, forged);
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode (203,0,113,1,195,80).\r\n");
	assert_int_equal(c.k.nadded, 1);
	alg_free(c.alg);
}

static void refusals(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	/* Not an answer to PASV. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "NOOP\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	/* Names a third host (bounce). */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,99,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	/* A 227 the client sends is never a reply. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	/* Multi-line: an echoed 227 inside is text, and the final line must stand alone. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK,
		 "227-Entering Passive Mode (192,0,2,10,195,80).\r\n227 Entering Passive Mode (192,0,2,10,1,2)\r\n");
	assert_string_equal(out_payload(&c), "");
	/* Inside a command argument. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "USER 227 Entering Passive Mode (192,0,2,10,195,80)\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "331 Please specify the password.\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	assert_true(alg_counters(c.alg)->refused >= 1);
	alg_free(c.alg);
}

static void auth_tls_goes_opaque(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "AUTH TLS\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "234 Proceed with negotiation.\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
}

static void epsv_and_passive_ports(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.passive_lo = 60000;
	cfg.passive_hi = 60001;
	setup_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "229 Entering Extended Passive Mode (|||6446|)\r\n");
	assert_string_equal(out_payload(&c), "229 Entering Extended Passive Mode (|||60000|)\r\n");
	assert_int_equal(c.k.added[0].port, 60000);
	assert_int_equal(c.k.added[0].target_port, 6446);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,25,46).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode (203,0,113,1,234,97).\r\n");
	assert_int_equal(c.k.added[1].port, 60001);
	alg_free(c.alg);
}

static void pinholes_bounded_per_session(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_pinholes_per_session = 3;
	setup_conn(&c, &cfg);
	for (int i = 0; i < 5; i++) {
		char line[80];
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
		snprintf(line, sizeof(line), "229 Entering Extended Passive Mode (|||%d|)\r\n", 50000 + i);
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, line);
	}
	assert_int_equal(c.k.nadded, 5);
	assert_int_equal(c.k.ndeleted, 2);
	assert_int_equal(c.k.deleted[0].port, 50000);
	assert_int_equal(c.k.deleted[1].port, 50001);
	alg_free(c.alg);
}

static void epsv(struct conn *c, int port)
{
	char line[80];
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	snprintf(line, sizeof(line), "229 Entering Extended Passive Mode (|||%d|)\r\n", port);
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, line);
}

static uint64_t refusals_for(struct conn *c, const char *reason)
{
	const struct alg_counters *k = alg_counters(c->alg);
	for (unsigned i = 0; i < ALG_REASONS_MAX && k->refusals[i].reason; i++)
		if (strcmp(k->refusals[i].reason, reason) == 0)
			return k->refusals[i].count;
	return 0;
}

/* Floods: per-client and global pinhole limits refuse (the reply passes unchanged); a full session replaces. */
static void pinhole_limits_per_client_and_global(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_pinholes_per_client = 2;
	setup_conn(&c, &cfg);
	epsv(&c, 50000);
	epsv(&c, 50001);
	epsv(&c, 50002);
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 2);
	assert_int_equal(refusals_for(&c, "client-max-pinholes"), 1);
	/* A session at its own limit replaces its oldest, which does not add to the others. */
	cfg.max_pinholes_per_client = 100;
	cfg.max_pinholes = 2;
	alg_set_config(c.alg, &cfg);
	epsv(&c, 50003);
	assert_int_equal(c.k.nadded, 2);
	assert_int_equal(refusals_for(&c, "max-pinholes"), 1);
	/* Once the connection closes its pinholes go and the count with them. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	alg_free(c.alg);

	config_defaults(&cfg);
	cfg.max_pinholes_per_session = 2;
	cfg.max_pinholes = 2;
	setup_conn(&c, &cfg);
	epsv(&c, 50000);
	epsv(&c, 50001);
	epsv(&c, 50002);
	assert_int_equal(c.k.nadded, 3);
	assert_int_equal(c.k.ndeleted, 1);
	/* A reload that raises MaxPinholesPerSession leaves existing sessions at the size they have. */
	cfg.max_pinholes_per_session = 8;
	cfg.max_pinholes = 100;
	alg_set_config(c.alg, &cfg);
	for (int i = 0; i < 6; i++)
		epsv(&c, 50003 + i);
	assert_int_equal(c.k.nadded, 9);
	assert_int_equal(c.k.ndeleted, 7);
	alg_free(c.alg);
}

/* Past 32 outstanding commands the rest are counted, not paired: their replies are never rewritten. */
static void deep_pipeline_keeps_pairing(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	for (int i = 0; i < 34; i++)
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 203,0,113,10,195,80\r\n");
	assert_string_equal(out_payload(&c), "XXXX 203,0,113,10,195,80\r\n");
	for (int i = 0; i < 34; i++) {
		char line[80];
		snprintf(line, sizeof(line), "227 Entering Passive Mode (192,0,2,10,195,%d).\r\n", i);
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, line);
		if (i < 32)
			assert_true(strstr(out_payload(&c), "(203,0,113,1,195,") != NULL);
		else
			assert_string_equal(out_payload(&c), "");
	}
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 XXXX not understood\r\n");
	assert_int_equal(refusals_for(&c, "pipelined-too-deep"), 3);
	/* All answered: the next PASV is paired again. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,99).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode (203,0,113,1,195,99).\r\n");
	alg_free(c.alg);
}

/* A server that strips Telnet commands (ProFTPD does) must not see a PORT the gateway did not check. */
static void telnet_commands_cannot_hide_port(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "\xff\xf4\xff\xf2PORT 203,0,113,20,195,80\r\n");
	assert_string_equal(out_payload(&c), "XXXXPORT 203,0,113,20,195,80\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 Unknown command.\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "P\xff\xf1ORT 203,0,113,20,195,80\r\n");
	assert_string_equal(out_payload(&c), "XXXXRT 203,0,113,20,195,80\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 Unknown command.\r\n");
	assert_int_equal(refusals_for(&c, "telnet-command-in-PORT"), 2);
	assert_int_equal(c.k.nadded, 0);
	/* ABOR behind IAC IP / IAC DM, as clients send it, is left alone. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK,
		 "\xff\xf4\xff\xf2"
		 "ABOR\r\n");
	assert_string_equal(out_payload(&c), "");
	alg_free(c.alg);
}

static void sessions_limited_per_client(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_sessions_per_client = 1;
	setup_conn(&c, &cfg);
	/* A second connection from the same client: its SYN is let through unread, no session. */
	c.k.ct.orig.sport = 40001;
	c.k.ct.reply.dport = 40001;
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "client-max-sessions"), 1);
	alg_free(c.alg);
}

/* The client reuses its ports right after a close (Linux does): a new session, not the old stream. */
static void ports_reused_after_close(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	/* While the session is open, a SYN with another sequence number (forged, say) ends nothing. */
	uint32_t open_seq = c.seq[0];
	c.seq[0] = 123456;
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(alg_counters(c.alg)->sessions, 1);
	c.seq[0] = open_seq;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "QUIT\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "221 Goodbye.\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_FIN | PKT_TCP_ACK, NULL);
	send_pkt(&c, DIR_ORIG, PKT_TCP_FIN | PKT_TCP_ACK, NULL);
	/* A retransmitted SYN of the old connection changes nothing. */
	uint32_t now_seq = c.seq[0];
	c.seq[0] = 1000;
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(alg_counters(c.alg)->sessions, 1);
	c.seq[0] = now_seq + 100000;
	c.seq[1] = 77000;
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(alg_counters(c.alg)->sessions, 2);
	send_pkt(&c, DIR_REPLY, PKT_TCP_SYN | PKT_TCP_ACK, NULL);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "220 ready\r\n");
	assert_int_equal(c.v.n, 1);
	assert_true(c.v.v[0].accept);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "USER anonymous\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "230 Login successful.\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,4,1).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode (203,0,113,1,4,1).\r\n");
	alg_free(c.alg);
}

/* Worker 1 of 2: session ids 2, 4, ...; half of a global limit of 3, rounded up, is 2. */
static void worker_share(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_sessions = 3;
	memset(&c, 0, sizeof(c));
	c.k.seqadj_ext = true;
	set_ct(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.alg = alg_new(&cfg, &fake_ops, &c.k);
	alg_set_worker(c.alg, 1, 2);
	for (uint16_t port = 40000; port < 40003; port++) {
		c.k.ct.orig.sport = port;
		c.k.ct.reply.dport = port;
		send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	}
	assert_int_equal(refusals_for(&c, "max-sessions"), 1);
	struct alg *v[1] = {c.alg};
	char *j = alg_status(v, 1, 1000, true, "test", "xt", NULL, NULL);
	assert_non_null(strstr(j, "{\"id\":2,\"worker\":1,"));
	assert_non_null(strstr(j, "{\"id\":4,\"worker\":1,"));
	assert_null(strstr(j, "\"id\":3,"));
	free(j);
	alg_free(c.alg);
}

/* Without a seqadj extension (connection older than ftp-alg) only same-length rewrites happen. */
static void no_seqadj_keeps_length(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.passive_lo = 7000;
	cfg.passive_hi = 7000;
	memset(&c, 0, sizeof(c));
	c.k.seqadj_ext = false;
	set_ct(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.alg = alg_new(&cfg, &fake_ops, &c.k);
	c.seq[0] = 1000;
	c.seq[1] = 5000;
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	send_pkt(&c, DIR_REPLY, PKT_TCP_SYN | PKT_TCP_ACK, NULL);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "220 ready\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "USER anonymous\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "230 Login successful.\r\n");
	int calls = c.k.seqadj_calls;
	/* 192,0,2,10,4,1 -> 203,0,113,1,27,88 would lengthen the line: refused, passed as is. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,4,1).\r\n");
	assert_string_equal(out_payload(&c), "");
	/* 6446 -> 7000 keeps the length: done, and no offset is ever set. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "229 Entering Extended Passive Mode (|||6446|)\r\n");
	assert_string_equal(out_payload(&c), "229 Entering Extended Passive Mode (|||7000|)\r\n");
	assert_int_equal(c.k.seqadj_calls, calls);
	alg_free(c.alg);
}

/* A LAN client behind masquerade talking to an outside server. */
static const uint8_t LAN_CLIENT[4] = {192, 0, 2, 50}, OUT_SERVER[4] = {198, 51, 100, 200}, GW[4] = {203, 0, 113, 1};

static void setup_active(struct conn *c)
{
	struct alg_config cfg;
	config_defaults(&cfg);
	memset(c, 0, sizeof(*c));
	c->k.seqadj_ext = true;
	set_ct(c, LAN_CLIENT, OUT_SERVER, OUT_SERVER, GW);
	start_conn(c, &cfg);
}

static void port_rewritten_armed_on_200(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	uint32_t seq = c.seq[DIR_ORIG];
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
	assert_string_equal(out_payload(&c), "PORT 203,0,113,1,195,80\r\n");
	assert_int_equal(c.k.last_dir, DIR_ORIG);
	assert_int_equal(c.k.last_pos, seq);
	assert_int_equal(c.k.last_after, 1);
	assert_int_equal(c.k.nadded, 0); /* not before the server agrees */
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	assert_int_equal(c.k.nadded, 1);
	struct pinhole *p = &c.k.added[0];
	assert_memory_equal(p->client, OUT_SERVER, 4);
	assert_memory_equal(p->local, GW, 4);
	assert_int_equal(p->port, 50000);
	assert_memory_equal(p->target, LAN_CLIENT, 4);
	assert_int_equal(p->target_port, 50000);
	/* Refused by the server: nothing opens. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPRT |1|192.0.2.50|6000|\r\n");
	assert_string_equal(out_payload(&c), "EPRT |1|203.0.113.1|6000|\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 Illegal EPRT command.\r\n");
	assert_int_equal(c.k.nadded, 1);
	/* A LAN client's PASV to an outside server: nothing to rewrite, never an inbound pinhole. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (198,51,100,200,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 1);
	alg_free(c.alg);
}

static void port_bounce_neutralized(void **state)
{
	struct conn c;
	(void)state;
	static const char *const bad[] = {
	    "PORT 203,0,113,20,195,80\r\n",					     /* a third host */
	    "PORT 192,0,2,1,195,80\r\n",					     /* the gateway itself */
	    "PORT 192,0,2,50,0,25\r\n",						     /* below the floor: SMTP */
	    "PORT 192,0,2,50,256,1\r\n",					     /* malformed */
	    "EPRT |2|2001:db8::1|6000|\r\n",					     /* family mismatch */
	    "EPRT |1|127.0.0.1|6000|\r\n",					     /* loopback */
	    "eprt |1|255.255.255.255|6000|\r\n", "LPRT 4,4,192,0,2,50,2,195,80\r\n", /* not understood */
	};
	setup_active(&c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, bad[i]);
		const char *o = out_payload(&c);
		assert_int_equal(strlen(o), strlen(bad[i]));
		assert_memory_equal(o, "XXXX", 4);
		assert_string_equal(o + 4, bad[i] + 4);
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 ok\r\n");
	}
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
}

/* A 200 that answers another command must not arm the PORT's pinhole. */
static void replies_paired_in_order(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "TYPE I\r\nPORT 192,0,2,50,195,80\r\n");
	assert_string_equal(out_payload(&c), "TYPE I\r\nPORT 203,0,113,1,195,80\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 Switching to Binary mode.\r\n");
	assert_int_equal(c.k.nadded, 0);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	assert_int_equal(c.k.nadded, 1);
	alg_free(c.alg);
}

/* Routed, no NAT: the client outside, the server inside. Pinholes publish another port. */
static void routed_passive_remaps_port(void **state)
{
	struct conn c;
	struct alg_config cfg;
	static const uint8_t OUT[4] = {203, 0, 113, 10}, IN[4] = {192, 0, 2, 10};
	(void)state;
	config_defaults(&cfg);
	memset(&c, 0, sizeof(c));
	c.k.seqadj_ext = true;
	memcpy(c.k.outside, OUT, 4);
	set_ct(&c, OUT, IN, IN, OUT);
	start_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "229 Entering Extended Passive Mode (|||6446|)\r\n");
	assert_string_equal(out_payload(&c), "229 Entering Extended Passive Mode (|||6447|)\r\n");
	assert_int_equal(c.k.nadded, 1);
	assert_memory_equal(c.k.added[0].client, OUT, 4);
	assert_memory_equal(c.k.added[0].local, IN, 4);
	assert_int_equal(c.k.added[0].port, 6447);
	assert_memory_equal(c.k.added[0].target, IN, 4);
	assert_int_equal(c.k.added[0].target_port, 6446);
	alg_free(c.alg);

	/* The reverse (client inside, server outside): PORT keeps the address, publishes another port. */
	memset(&c, 0, sizeof(c));
	c.k.seqadj_ext = true;
	memcpy(c.k.outside, OUT, 4);
	set_ct(&c, IN, OUT, OUT, IN);
	start_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,10,195,80\r\n");
	assert_string_equal(out_payload(&c), "PORT 192,0,2,10,195,81\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 ok\r\n");
	assert_int_equal(c.k.nadded, 1);
	assert_memory_equal(c.k.added[0].client, OUT, 4);
	assert_int_equal(c.k.added[0].port, 50001);
	assert_int_equal(c.k.added[0].target_port, 50000);
	/* And this client's PASV needs nothing. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (203,0,113,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 1);
	alg_free(c.alg);
}

/* Two LAN clients announcing the same port to one server get distinct public ports. */
static void same_port_two_clients(void **state)
{
	struct conn c1, c2;
	(void)state;
	setup_active(&c1);
	setup_active(&c2);
	/* Second client: another LAN host, masqueraded to the same address. */
	alg_free(c2.alg);
	c2.k.ct.orig.saddr[3] = 51;
	c2.k.ct.orig.sport = 40001;
	c2.k.ct.reply.dport = 40001;
	c2.alg = c1.alg; /* one daemon, whose kernel knows both connections */
	c1.k.ct2 = c2.k.ct;
	c1.k.has_ct2 = true;
	c2.seq[0] = 1000;
	c2.seq[1] = 5000;
	send_pkt(&c2, DIR_ORIG, PKT_TCP_SYN, NULL);
	send_pkt(&c2, DIR_REPLY, PKT_TCP_SYN | PKT_TCP_ACK, NULL);
	send_pkt(&c2, DIR_REPLY, PKT_TCP_ACK, "220 ready\r\n");
	send_pkt(&c2, DIR_ORIG, PKT_TCP_ACK, "USER anonymous\r\n");
	send_pkt(&c2, DIR_REPLY, PKT_TCP_ACK, "230 Login successful.\r\n");
	send_pkt(&c1, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
	send_pkt(&c1, DIR_REPLY, PKT_TCP_ACK, "200 ok\r\n");
	send_pkt(&c2, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,51,195,80\r\n");
	assert_string_equal(out_payload(&c2), "PORT 203,0,113,1,195,81\r\n");
	send_pkt(&c2, DIR_REPLY, PKT_TCP_ACK, "200 ok\r\n");
	assert_int_equal(c1.k.nadded, 2);
	assert_int_equal(c1.k.added[0].port, 50000);
	assert_int_equal(c1.k.added[1].port, 50001);
	assert_int_equal(c1.k.added[0].target[3], 50);
	assert_int_equal(c1.k.added[1].target[3], 51);
	alg_free(c1.alg);
}

static void status_and_pinhole_accounting(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,81).\r\n");
	char *j = alg_status(&c.alg, 1, 1000, true, "test", "xt", "\"timing\":{}", NULL);
	assert_non_null(strstr(j, "\"client\":\"203.0.113.10:40000\""));
	assert_non_null(strstr(j, "\"server\":\"192.0.2.10:21\""));
	assert_non_null(strstr(j, "\"public\":\"203.0.113.1:50000\",\"to\":\"192.0.2.10:50000\",\"expires_in\":60"));
	assert_non_null(strstr(j, "\"seq_offset\":{\"client\":0,\"server\":2}"));
	assert_non_null(strstr(j, "\"pinholes_armed\":2,\"max_pinholes\":32768,\"max_pinholes_per_client\":256"));
	assert_non_null(strstr(j, "],\"timing\":{},\"sessions\":["));
	free(j);
	/* The first is used by its data connection, the second times out. */
	c.k.consumed[0] = true;
	alg_tick(c.alg, 1001, NULL, NULL);
	assert_int_equal(alg_counters(c.alg)->pinholes_used, 1);
	alg_tick(c.alg, 1061, NULL, NULL);
	assert_int_equal(alg_counters(c.alg)->pinholes_expired, 1);
	j = alg_status(&c.alg, 1, 1061, false, "test", "xt", NULL, "time per operation: none\n");
	assert_non_null(strstr(j, "pinholes 2 opened / 1 used / 1 expired"));
	assert_non_null(strstr(j, "pinholes armed: 0 (limit 32768, 256 per client)"));
	assert_non_null(strstr(j, " errors\ntime per operation: none\n"));
	free(j);
	alg_free(c.alg);
}

/* NAT slipstreaming: an HTTP request on the control port makes the connection opaque. */
static void not_ftp_is_never_parsed(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "POST / HTTP/1.1\r\nPASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pasv_rewritten_with_pinhole),
	    cmocka_unit_test(bad_packets_dropped_unread),
	    cmocka_unit_test(refusals),
	    cmocka_unit_test(auth_tls_goes_opaque),
	    cmocka_unit_test(epsv_and_passive_ports),
	    cmocka_unit_test(pinholes_bounded_per_session),
	    cmocka_unit_test(pinhole_limits_per_client_and_global),
	    cmocka_unit_test(sessions_limited_per_client),
	    cmocka_unit_test(worker_share),
	    cmocka_unit_test(ports_reused_after_close),
	    cmocka_unit_test(telnet_commands_cannot_hide_port),
	    cmocka_unit_test(deep_pipeline_keeps_pairing),
	    cmocka_unit_test(no_seqadj_keeps_length),
	    cmocka_unit_test(port_rewritten_armed_on_200),
	    cmocka_unit_test(port_bounce_neutralized),
	    cmocka_unit_test(replies_paired_in_order),
	    cmocka_unit_test(routed_passive_remaps_port),
	    cmocka_unit_test(same_port_two_clients),
	    cmocka_unit_test(status_and_pinhole_accounting),
	    cmocka_unit_test(not_ftp_is_never_parsed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
