/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A closed session (both FINs in order, an in-order RST, or conntrack's
 * word) is kept until its conntrack goes (TIME_WAIT: two minutes), for
 * stray segments, but it no longer counts against MaxSessions or
 * MaxSessionsPerClient: a client that opens a connection per file is
 * limited by its open ones. When closed ones fill the table, the oldest
 * gives way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "alg/log.h"
#include "alg/session.h"
#include "tests/common/session_harness.h"

static unsigned open_sessions(struct alg *a)
{
	unsigned sessions, pinholes;
	struct alg *const v[1] = {a};
	alg_totals(v, 1, &sessions, &pinholes);
	return sessions;
}

static void on_port(struct conn *c, uint16_t port)
{
	c->k.ct.orig.sport = port;
	c->k.ct.reply.dport = port;
}

/* MaxSessionsPerClient 1: after the first connection closes, the next is followed; a third is not. */
static void closed_leaves_client_limit(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_sessions_per_client = 1;
	setup_conn(&c, &cfg);
	/*
	 * The client's FIN alone does not end it for the limits: its server may
	 * refuse it (PAWS drops a FIN with an old timestamp, conntrack does not
	 * look), and the connection would live on outside them.
	 */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	assert_int_equal(open_sessions(c.alg), 1);
	on_port(&c, 40001);
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "client-max-sessions"), 1);
	/* The server's FIN in order too: over for both ends. */
	on_port(&c, 40000);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	assert_int_equal(open_sessions(c.alg), 0);
	on_port(&c, 40001);
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "client-max-sessions"), 1);
	assert_int_equal(alg_counters(c.alg)->sessions, 2);
	assert_int_equal(open_sessions(c.alg), 1);
	on_port(&c, 40002);
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "client-max-sessions"), 2);
	alg_free(c.alg);
}

/* MaxSessions 2, one closed and one open: a new one takes the closed one's place; then the table is full. */
static void full_table_evicts_oldest_closed(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_sessions = 2;
	setup_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	on_port(&c, 40001);
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	on_port(&c, 40002);
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "max-sessions"), 0);
	assert_int_equal(open_sessions(c.alg), 2);
	struct alg *v[1] = {c.alg};
	char *j = alg_status(v, 1, 1000, true, "test", "xt", NULL, NULL);
	/* The closed first session (id 1) gave way. */
	assert_null(strstr(j, "{\"id\":1,"));
	free(j);
	on_port(&c, 40003);
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "max-sessions"), 1);
	alg_free(c.alg);
}

/*
 * A client holds a partial "POR" (held, not yet sent to the server), then
 * sends flags just after it: in order for the daemon's stream, but the
 * server's next expected byte is the held "P". A RST gets a challenge ACK
 * (RFC 5961) and conntrack, whose RST must match the server's last ACK,
 * stays ESTABLISHED; a FIN waits for the held bytes. The session stays open
 * and keeps counting against MaxSessionsPerClient 1.
 */
static void after_held_bytes(struct conn *c, uint8_t flags)
{
	struct alg_config cfg;
	config_defaults(&cfg);
	cfg.max_sessions_per_client = 1;
	setup_conn(c, &cfg);
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK, "POR");
	send_pkt(c, DIR_ORIG, flags | PKT_TCP_ACK, NULL);
	assert_int_equal(open_sessions(c->alg), 1);
}

static void second_connection_refused(struct conn *c)
{
	on_port(c, 40001);
	send_pkt(c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(c, "client-max-sessions"), 1);
}

static void rst_after_held_bytes_keeps_session(void **state)
{
	struct conn c;
	(void)state;
	after_held_bytes(&c, PKT_TCP_RST);
	/* The line goes on and is still checked. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "T 198,51,100,7,4,1\r\n");
	/* "POR" left held as "XXX": this segment is the verb's last byte. */
	assert_memory_equal(out_payload(&c), "X 198", 5);
	second_connection_refused(&c);
	alg_free(c.alg);
}

static void fin_after_held_bytes_keeps_session(void **state)
{
	struct conn c;
	(void)state;
	after_held_bytes(&c, PKT_TCP_FIN);
	second_connection_refused(&c);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(closed_leaves_client_limit),
	    cmocka_unit_test(full_table_evicts_oldest_closed),
	    cmocka_unit_test(rst_after_held_bytes_keeps_session),
	    cmocka_unit_test(fin_after_held_bytes_keeps_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
