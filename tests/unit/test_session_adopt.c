/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sessions this daemon did not see from their SYN: adopted only when
 * conntrack says they predate it and are established, resynchronized at a
 * line end, with the sequence offsets conntrack keeps; anything else is
 * dropped, never passed unread. Session limits drop the SYN.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alg/log.h"
#include "alg/session.h"
#include "tests/common/session_harness.h"

/* CLIENT to PUBLIC (DNAT to SERVER), already established when a new daemon (alg) starts. */
static void live_conn(struct conn *c, int32_t server_offset)
{
	struct alg_config cfg;
	config_defaults(&cfg);
	init_conn(c, CLIENT, PUBLIC, SERVER, CLIENT);
	c->k.ct.has_id = true;
	c->k.ct.id = 7;
	c->k.ct.seen_reply = true;
	c->k.predates = true;
	/* The previous daemon's rewrites changed the server's lines by server_offset bytes. */
	if (server_offset) {
		c->k.ct.seqadj_present[DIR_REPLY] = true;
		c->k.ct.corr_pos[DIR_REPLY] = 5100;
		c->k.ct.off_before[DIR_REPLY] = 0;
		c->k.ct.off_after[DIR_REPLY] = server_offset;
	}
	c->alg = alg_new(&cfg, &fake_kernel_ops, &c->k);
	c->seq[DIR_ORIG] = 1500;
	c->seq[DIR_REPLY] = 6000;
}

/* After a restart: the first line each way resynchronizes, then a PASV is rewritten on the kernel's offsets. */
static void adopted_after_restart(void **state)
{
	(void)state;
	for (int sign = -1; sign <= 1; sign += 2) {
		struct conn c;
		live_conn(&c, 3 * sign);
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "TYPE I\r\n");
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 Switching to Binary mode.\r\n");
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
		uint32_t pos = c.seq[DIR_REPLY];
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 (192,0,2,10,195,80).\r\n");
		assert_string_equal(out_payload(&c), "227 (203,0,113,1,195,80).\r\n");
		assert_int_equal(c.k.nadded, 1);
		/* The new correction point continues the old offset (both signs), one byte longer. */
		assert_int_equal(c.k.last_dir, DIR_REPLY);
		assert_int_equal(c.k.last_pos, pos);
		assert_int_equal(c.k.last_before, 3 * sign);
		assert_int_equal(c.k.last_after, 3 * sign + 1);
		alg_free(c.alg);
	}
}

/*
 * A connection that started while the daemon was starting: its SYN passed
 * before the queues were bound, the daemon sees the SYN-ACK first. Not the
 * client's fault: no first-line check, and its PASV is rewritten.
 */
static void started_during_start(void **state)
{
	struct conn c;
	(void)state;
	live_conn(&c, 0);
	c.seq[DIR_ORIG] = 1001;
	c.seq[DIR_REPLY] = 5000;
	send_pkt(&c, DIR_REPLY, PKT_TCP_SYN | PKT_TCP_ACK, NULL);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "220 ready\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "USER anonymous\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "331 Please specify the password.\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASS x\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "230 Login successful.\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,80).\r\n");
	assert_int_equal(refusals_for(&c, "not-ftp"), 0);
	alg_free(c.alg);
}

/*
 * A connection conntrack did not have when the daemon started, or not yet
 * answered, whose SYN the daemon never saw: its data is dropped, in either
 * direction, whatever it says.
 */
static void not_adoptable_dropped(void **state)
{
	(void)state;
	for (int why = 0; why < 2; why++) {
		struct conn c;
		live_conn(&c, 0);
		if (why == 0)
			c.k.predates = false;
		else
			c.k.ct.seen_reply = false;
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,99,195,80\r\n");
		assert_int_equal(c.v.n, 1);
		assert_false(c.v.v[0].accept);
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
		assert_int_equal(c.v.n, 1);
		assert_false(c.v.v[0].accept);
		assert_int_equal(refusals_for(&c, "not-adoptable"), 2);
		assert_int_equal(c.k.nadded, 0);
		/* Bare acknowledgements carry nothing to read and pass. */
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, NULL);
		assert_true(c.v.v[0].accept);
		alg_free(c.alg);
	}
}

/* Over MaxSessionsPerClient or MaxSessions the SYN is dropped: no connection passes unread. */
static void session_limits_drop_syn(void **state)
{
	(void)state;
	for (int global = 0; global < 2; global++) {
		struct conn c;
		struct alg_config cfg;
		config_defaults(&cfg);
		if (global)
			cfg.max_sessions = 1;
		else
			cfg.max_sessions_per_client = 1;
		setup_conn(&c, &cfg);
		c.k.ct.orig.sport = 40001;
		c.k.ct.reply.dport = 40001;
		c.seq[DIR_ORIG] = 9000;
		send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
		assert_int_equal(c.v.n, 1);
		assert_false(c.v.v[0].accept);
		assert_int_equal(refusals_for(&c, global ? "max-sessions" : "client-max-sessions"), 1);
		/* Its later data (had the SYN got through some other way) is not adopted either. */
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 203,0,113,10,195,80\r\n");
		assert_false(c.v.v[0].accept);
		alg_free(c.alg);
	}
}

int main(void)
{
	log_open("test", LOG_LVL_ERR, false);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(adopted_after_restart),
	    cmocka_unit_test(started_during_start),
	    cmocka_unit_test(not_adoptable_dropped),
	    cmocka_unit_test(session_limits_drop_syn),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
