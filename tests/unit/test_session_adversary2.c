/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Second adversarial pass (Hardening II): each test asserts the secure
 * outcome of one attack on what changed since the first review.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>

#include "alg/kernel.h"
#include "alg/log.h"
#include "alg/session.h"
#include "tests/common/session_harness.h"

/*
 * HighAvailability = yes: a session that closes removes its pinholes, but
 * the record in its conntrack's labels still names the newest one, so a
 * takeover on the peer gateway within PinholeTimeout (the conntrack lingers
 * in TIME_WAIT with SEEN_REPLY) re-arms a pinhole this gateway removed.
 */
static void closed_session_record_cleared(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	cfg.high_availability = true;
	setup_conn(&c, &cfg);
	epsv(&c, 50000);
	assert_int_equal(c.k.nadded, 1);
	struct ct_hole_rec rec = {0};
	assert_true(ct_rec_decode(c.k.ct.labels, &rec));
	assert_int_equal(rec.port, 50000);
	/* The client closes in order: the session's pinholes go. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, "");
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 1);
	/* The record must say "none" now, or the peer's takeover re-arms it. */
	assert_false(ct_rec_decode(c.k.ct.labels, &rec));
	alg_free(c.alg);
}

/* Whether an accepted verdict of the last packet carries the bytes verb as sent (case-insensitive). */
static bool verb_passed(struct conn *c, const char *sent, const char *verb)
{
	for (unsigned i = 0; i < c->v.n; i++) {
		if (!c->v.v[i].accept)
			continue;
		if (!c->v.v[i].data)
			return strcasestr(sent, verb) != NULL;
		char buf[2048];
		size_t n = c->last_out_len < sizeof(buf) - 1 ? c->last_out_len : sizeof(buf) - 1;
		memcpy(buf, c->last_out, n);
		buf[n] = 0;
		/* The rebuilt packet's headers hold no letters of the verb in a row. */
		if (strcasestr(buf, verb))
			return true;
	}
	return false;
}

/*
 * A hostile client sends a line over 4096 bytes whose PORT starts in the
 * last bytes kept (4093..4095) and ends in the tail: scrub_tail fires only
 * once four tail bytes are seen, so PORT reaches the server intact. A server
 * whose buffer is char[4096] (4095 bytes and a NUL) takes it as a command.
 */
static void tail_verb_straddling_4096(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	char chunk[1600];
	memset(chunk, 'A', sizeof(chunk));
	memcpy(chunk, "NOOP ", 5);
	chunk[1500] = 0;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, chunk);
	memset(chunk, 'A', sizeof(chunk));
	chunk[1500] = 0;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, chunk);
	/* 3000 bytes so far: 1095 more put P at offset 4095, the last one kept. */
	memset(chunk, 'A', sizeof(chunk));
	strcpy(chunk + 1095, "PORT 192,0,2,99,0,21\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, chunk);
	assert_false(verb_passed(&c, chunk, "PORT 192"));
	alg_free(c.alg);
}

static void ignore(void *ctx, const struct alg_verdicts *v)
{
	(void)ctx;
	(void)v;
}

/*
 * A hostile client on an adopted session (daemon restart or failover) sends
 * its first segment starting 6 bytes before what the server already has
 * ("NOOP\r\n"): join_stream takes its first byte as a line start and reads
 * one line "AAAAAAPORT ...", an unknown verb; the server's TCP trims the 6
 * bytes it has and reads "PORT 192,0,2,99,195,80" at a line start.
 */
static void adopted_overlap_hides_port(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	adopt_conn(&c, &cfg);
	c.seq[DIR_ORIG] -= 6;
	static const char seg[] = "AAAAAAPORT 192,0,2,99,195,80\r\n";
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, seg);
	assert_false(verb_passed(&c, seg, "PORT 192"));
	alg_free(c.alg);
}

/* The same after "ftp-alg takeover" on a session followed from its SYN. */
static void takeover_overlap_hides_port(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "NOOP\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 ok\r\n");
	assert_int_equal(alg_takeover(c.alg, 1000, ignore, NULL), 1);
	c.seq[DIR_ORIG] -= 6;
	static const char seg[] = "AAAAAAPORT 192,0,2,99,195,80\r\n";
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, seg);
	assert_false(verb_passed(&c, seg, "PORT 192"));
	alg_free(c.alg);
}

/*
 * After an EPSV, a segment with flags from the client, in window but 1000
 * bytes past its stream; the caller's fake kernel answers for conntrack.
 * Returns the pinholes deleted once a tick has passed (a closed session's go
 * then).
 */
static int forged_in_window(struct conn *c, uint8_t flags, uint8_t ct_state_after, int ct_err)
{
	epsv(c, 50000);
	assert_int_equal(c->k.nadded, 1);
	uint8_t p[256];
	size_t len = build(&c->k.ct, p, DIR_ORIG, c->seq[DIR_ORIG] + 1000, PKT_TCP_ACK | flags, NULL);
	c->k.ct.tcp_state = ct_state_after;
	c->k.ct_get_err = ct_err;
	alg_packet(c->alg, DIR_ORIG, c->id++, p, len, 1000, keep, c);
	c->k.ct_get_err = 0;
	tick(c, 1001);
	return c->k.ndeleted;
}

/*
 * A stranger on the WAN injects a FIN into the client's stream in window but
 * not in order. Conntrack moves to FIN_WAIT on any in-window FIN (no exact
 * check, unlike RST), so closed_by_conntrack says "closing" and the session's
 * pinholes go, though the server drops the FIN once the client's data passes
 * its sequence number, and the connection goes on.
 */
static void forged_in_window_fin_keeps_pinholes(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	c.k.ct.has_tcp_state = true;
	c.k.ct.tcp_state = 3; /* ESTABLISHED */
	/* FIN_WAIT: conntrack took the in-window FIN */
	assert_int_equal(forged_in_window(&c, PKT_TCP_FIN, 4, 0), 0);
	alg_free(c.alg);
}

/*
 * A forged in-window RST (not exact) arriving while conntrack cannot be read
 * (a netlink error such as ENOBUFS under load) is taken as "conntrack took
 * it": closed_by_conntrack treats any error as gone, and the pinholes go.
 */
static void forged_rst_on_ct_error_keeps_pinholes(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	c.k.ct.has_tcp_state = true;
	c.k.ct.tcp_state = 3; /* ESTABLISHED */
	assert_int_equal(forged_in_window(&c, PKT_TCP_RST, 3, -ENOBUFS), 0);
	alg_free(c.alg);
}

/*
 * A hostile client's SYN carries data (TCP Fast Open, with a cookie the
 * server gave it before): the SYN path starts the stream after the SYN and
 * passes the packet unread, so a whole login, a PORT to a foreign host and a
 * RETR reach a TFO-enabled server. (The client's next segment then starts
 * past next_seq and is dropped as out of order: the rest of the session
 * stalls, but the bounce has been sent.)
 */
static void syn_payload_unread(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.alg = alg_new(&cfg, &fake_kernel_ops, &c.k);
	c.seq[DIR_ORIG] = 1000;
	c.seq[DIR_REPLY] = 5000;
	static const char seg[] = "USER a\r\nPASS b\r\nPORT 192,0,2,99,0,25\r\nRETR x\r\n";
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, seg);
	assert_false(verb_passed(&c, seg, "PORT 192"));
	alg_free(c.alg);
}

static void tcp4_recsum(uint8_t *p, size_t len)
{
	p[36] = p[37] = 0;
	uint32_t sum = IPPROTO_TCP + (uint32_t)(len - 20);
	for (size_t i = 12; i < 20; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	for (size_t i = 20; i < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | (i + 1 < len ? p[i + 1] : 0));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	p[36] = (uint8_t)(~sum >> 8);
	p[37] = (uint8_t)~sum;
}

/*
 * A hostile, logged-in client sends "PORXT 192,0,2,99,0,25" with URG set and
 * the urgent pointer at the X. ftp-alg reads the verb PORXT (unknown: passes);
 * a server that does not set SO_OOBINLINE has the urgent byte taken out of
 * its stream by TCP and reads "PORT 192,0,2,99,0,25": a bounce.
 */
static void urgent_byte_hides_port(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	static const char seg[] = "PORXT 192,0,2,99,0,25\r\n";
	uint8_t p[256];
	size_t len = build(&c.k.ct, p, DIR_ORIG, c.seq[DIR_ORIG], PKT_TCP_ACK | 0x20, seg);
	p[38] = 0;
	p[39] = 4; /* BSD urgent pointer (Linux default): the byte before seq + 4, the X */
	tcp4_recsum(p, len);
	alg_packet(c.alg, DIR_ORIG, c.id++, p, len, 1000, keep, &c);
	/* What the server's TCP hands its application: the payload without the urgent byte if URG stays. */
	for (unsigned i = 0; i < c.v.n; i++) {
		if (!c.v.v[i].accept)
			continue;
		const uint8_t *o = c.v.v[i].data ? c.v.v[i].data : p;
		size_t olen = c.v.v[i].data ? c.v.v[i].len : len;
		size_t off = (size_t)(o[32] >> 4) * 4 + 20;
		char view[256];
		size_t n = 0;
		unsigned urg = (o[33] & 0x20) ? (unsigned)(o[38] << 8 | o[39]) : 0;
		for (size_t j = off; j < olen && n < sizeof(view) - 1; j++)
			if (!urg || j - off != urg - 1)
				view[n++] = (char)o[j];
		view[n] = 0;
		assert_null(strstr(view, "PORT 192"));
	}
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", LOG_LVL_ERR, false);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(closed_session_record_cleared),
	    cmocka_unit_test(tail_verb_straddling_4096),
	    cmocka_unit_test(adopted_overlap_hides_port),
	    cmocka_unit_test(takeover_overlap_hides_port),
	    cmocka_unit_test(forged_in_window_fin_keeps_pinholes),
	    cmocka_unit_test(forged_rst_on_ct_error_keeps_pinholes),
	    cmocka_unit_test(syn_payload_unread),
	    cmocka_unit_test(urgent_byte_hides_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
