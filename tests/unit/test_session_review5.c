/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * review5: closed sessions leave MaxSessionsPerClient, so what closes a
 * session must be what the endpoint itself takes.
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

/*
 * A client holds a partial "POR" (held, not yet sent to the server), then
 * sends a RST just after it: in order for the daemon's stream, but the
 * server's next expected byte is the held "P", so it answers with a
 * challenge ACK and keeps the connection (RFC 5961), and conntrack, whose
 * RST must match the server's last ACK, stays ESTABLISHED. The session must
 * stay open and keep counting against MaxSessionsPerClient 1; on this
 * branch it was closed and a second control connection was followed.
 */
static void rst_after_held_bytes_keeps_session(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_sessions_per_client = 1;
	setup_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "POR");
	send_pkt(&c, DIR_ORIG, PKT_TCP_RST | PKT_TCP_ACK, NULL);
	assert_int_equal(open_sessions(c.alg), 1);
	/* The line goes on and is still checked. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "T 198,51,100,7,4,1\r\n");
	/* "POR" left held as "XXX": this segment is the verb's last byte. */
	assert_memory_equal(out_payload(&c), "X 198", 5);
	on_port(&c, 40001);
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "client-max-sessions"), 1);
	alg_free(c.alg);
}

/* The same with a FIN after held bytes: the server takes it only once the held bytes reach it. */
static void fin_after_held_bytes_keeps_session(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_sessions_per_client = 1;
	setup_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "POR");
	send_pkt(&c, DIR_ORIG, PKT_TCP_FIN | PKT_TCP_ACK, NULL);
	assert_int_equal(open_sessions(c.alg), 1);
	on_port(&c, 40001);
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "client-max-sessions"), 1);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rst_after_held_bytes_keeps_session),
	    cmocka_unit_test(fin_after_held_bytes_keeps_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
