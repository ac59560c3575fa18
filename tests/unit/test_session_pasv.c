/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Passive mode: 227 and 229 rewritten, pinholes opened for them, sequence offsets, routed remapping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alg/log.h"
#include "alg/session.h"
#include "tests/common/session_harness.h"

static void pasv_rewritten_with_pinhole(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	uint32_t seq227 = c.seq[DIR_REPLY];
	/* No free text to trim: the line grows, and the kernel is told the offset. */
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 (203,0,113,1,195,80).\r\n");
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
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 (192,0,2,10,195,81).\r\n");
	assert_string_equal(out_payload(&c), "227 (203,0,113,1,195,81).\r\n");
	assert_int_equal(c.k.last_before, 1);
	assert_int_equal(c.k.last_after, 2);
	/* FIN: the armed pinhole goes at the next tick, in one kernel change. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	assert_int_equal(c.k.ndeleted, 1);
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 2);
	assert_int_equal(c.k.destroy_calls, 1);
	assert_int_equal(c.k.deleted[1].port, 50001);
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
	assert_string_equal(out_payload(&c), "229 Entering Extended Passive Mod (|||60000|)\r\n");
	assert_int_equal(c.k.added[0].port, 60000);
	assert_int_equal(c.k.added[0].target_port, 6446);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,25,46).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mo (203,0,113,1,234,97).\r\n");
	assert_int_equal(c.k.added[1].port, 60001);
	alg_free(c.alg);
}

/* Without a seqadj extension (an adopted connection older than ftp-alg) only same-length rewrites happen. */
static void no_seqadj_keeps_length(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.passive_lo = 7000;
	cfg.passive_hi = 7001;
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.k.seqadj_ext = false;
	start_adopted(&c, &cfg);
	int calls = c.k.seqadj_calls;
	/* 192,0,2,10,4,1 -> 203,0,113,1,27,88 would lengthen a line without free text: refused, passed as is. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 (192,0,2,10,4,1).\r\n");
	assert_string_equal(out_payload(&c), "");
	/* 6446 -> 7001 keeps the length: done, and no offset is ever set. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "229 Entering Extended Passive Mode (|||6446|)\r\n");
	assert_string_equal(out_payload(&c), "229 Entering Extended Passive Mode (|||7001|)\r\n");
	/* With free text the 3 more bytes come out of it. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,4,1).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive M (203,0,113,1,27,88).\r\n");
	assert_int_equal(c.k.seqadj_calls, calls);
	alg_free(c.alg);
}

/*
 * A NATed session seen from its SYN asks the kernel once (the reply tuple,
 * at the SYN-ACK). Whether it has a seqadj extension (all but certain: the
 * expectation rule gave it one) is asked only when a rewrite must change a
 * line's length: most 227s keep theirs.
 */
static void one_ct_get_per_session(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	assert_int_equal(c.k.ct_get_calls, 1);
	assert_int_equal(c.k.seqadj_calls, 0);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,80).\r\n");
	assert_int_equal(c.k.ct_get_calls, 1);
	assert_int_equal(c.k.seqadj_calls, 0);
	/* No text to give way: the probe (a zero offset, read back), then the offset. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 (192,0,2,10,195,81)\r\n");
	assert_string_equal(out_payload(&c), "227 (203,0,113,1,195,81)\r\n");
	assert_int_equal(c.k.ct_get_calls, 2);
	assert_int_equal(c.k.seqadj_calls, 2);
	assert_int_equal(c.k.last_after, 1);
	alg_free(c.alg);
}

/*
 * The rare session seen from a SYN that has no seqadj extension after all
 * (its first SYN passed before ftp-alg's table existed, and this is a
 * resend): the probe says so, and the rewrite keeps the length or is refused.
 */
static void syn_seen_without_seqadj(void **state)
{
	struct conn c;
	(void)state;
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.k.seqadj_ext = false;
	struct alg_config cfg;
	config_defaults(&cfg);
	start_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 (192,0,2,10,195,80)\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.seqadj_calls, 1); /* the probe alone */
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
}

/* A 227 whose free text absorbs the difference keeps its length: no offset, no ctnetlink update. */
static void length_kept_without_offset(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.passive_lo = 1024;
	cfg.passive_hi = 1024;
	setup_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode   (203,0,113,1,4,0).\r\n");
	assert_int_equal(c.k.added[0].port, 1024);
	assert_int_equal(c.k.added[0].target_port, 50000);
	assert_int_equal(c.k.seqadj_calls, 0);
	alg_free(c.alg);

	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,80).\r\n");
	assert_int_equal(c.k.seqadj_calls, 0);
	assert_int_equal(c.k.ct_get_calls, 1);
	alg_free(c.alg);
}

static void ignore(void *ctx, const char *origin, int line, const char *msg)
{
	(void)ctx;
	(void)origin;
	(void)line;
	(void)msg;
}

/* KeepReplyLength = no: the server's text stays, the line grows, and the kernel gets the offset. */
static void length_changes_when_asked(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	assert_int_equal(config_set(&cfg, "KeepReplyLength", "no", "test", 1, ignore, NULL), 0);
	assert_false(cfg.keep_reply_length);
	assert_int_equal(config_set(&cfg, "KeepReplyLength", "maybe", "test", 2, ignore, NULL), -EINVAL);
	setup_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode (203,0,113,1,195,80).\r\n");
	assert_int_equal(c.k.seqadj_calls, 2); /* the probe, then the offset */
	assert_int_equal(c.k.last_after, 1);
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
	init_conn(&c, OUT, IN, IN, OUT);
	memcpy(c.k.outside, OUT, 4);
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
	init_conn(&c, IN, OUT, OUT, IN);
	memcpy(c.k.outside, OUT, 4);
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

/* The kernel refuses the pinhole: the 227 passes as the server sent it, counted as an error. */
static void pinhole_refused_by_kernel(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	c.k.add_err = -ENOSPC;
	int calls = c.k.seqadj_calls;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.v.n, 1);
	assert_true(c.v.v[0].accept);
	assert_int_equal(c.k.nadded, 0);
	assert_int_equal(c.k.seqadj_calls, calls);
	assert_int_equal(alg_counters(c.alg)->errors, 1);
	assert_int_equal(alg_counters(c.alg)->pinholes, 0);
	/* Once the kernel takes it again, the next one opens. */
	c.k.add_err = 0;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,81).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,81).\r\n");
	assert_int_equal(c.k.nadded, 1);
	assert_int_equal(c.k.added[0].target_port, 50001);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pasv_rewritten_with_pinhole), cmocka_unit_test(epsv_and_passive_ports),
	    cmocka_unit_test(no_seqadj_keeps_length),	   cmocka_unit_test(one_ct_get_per_session),
	    cmocka_unit_test(routed_passive_remaps_port),  cmocka_unit_test(pinhole_refused_by_kernel),
	    cmocka_unit_test(length_kept_without_offset),  cmocka_unit_test(length_changes_when_asked),
	    cmocka_unit_test(syn_seen_without_seqadj),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
