/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Lines whose start was released before they completed (split where nothing
 * needed holding, or held past the limits) still count: pairing, AUTH and
 * multi-line state follow every line, and such a line never opens anything.
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

/* Fails on main: a split NOOP was not counted, so its 200 answered the PASV and the 227 was not rewritten. */
static void split_command_keeps_pairing(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "NO");
	assert_int_equal(c.v.n, 1); /* released at once: a NOOP is never rewritten */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "OP\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 NOOP ok.\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,80).\r\n");
	assert_int_equal(c.k.nadded, 1);
	alg_free(c.alg);
}

/* Fails on main: a split AUTH TLS or a split 234 left the session parsed, so bytes inside TLS were rewritten. */
static void split_auth_still_encrypts(void **state)
{
	(void)state;
	static const char *const cmd[][2] = {{"AU", "TH TLS\r\n"}, {"AUTH TLS\r\n", NULL}, {"AUTH GSSAPI\r\n", NULL}};
	static const char *const reply[][2] = {
	    {"234 Proceed.\r\n", NULL}, {"23", "4 Proceed.\r\n"}, {"334 ADAT=x\r\n", NULL}};
	for (size_t i = 0; i < 3; i++) {
		struct conn c;
		open_conn(&c);
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, cmd[i][0]);
		if (cmd[i][1])
			send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, cmd[i][1]);
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, reply[i][0]);
		if (reply[i][1])
			send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, reply[i][1]);
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
		if (*out_payload(&c) || c.k.nadded)
			fail_msg("case %zu: parsed after AUTH", i);
		alg_free(c.alg);
	}
	/* AUTH refused: still FTP in the clear. */
	struct conn c;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "AUTH TLS\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "504 No.\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,80).\r\n");
	alg_free(c.alg);
}

/* Fails on main: the split first line of a multi-line reply was not seen, so a line inside it opened a pinhole. */
static void split_multiline_opens_nothing(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "229-Ext");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "ended\r\n229 Entering Extended Passive Mode (|||50000|)\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	/* Another code first: the 229 inside is text; the reply ends with its own code. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "150-Wa");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "it\r\n229 Entering Extended Passive Mode (|||50001|)\r\n150 Done.\r\n");
	assert_int_equal(c.k.nadded, 0);
	/* Pairing held: the next EPSV is answered and rewritten. */
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 Done.\r\n");
	epsv(&c, 50002);
	assert_int_equal(c.k.nadded, 1);
	alg_free(c.alg);
}

/* Fails on main: the final line of a multi-line 227 was honoured. */
static void multiline_227_final_line_not_honoured(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227-Entering Passive Mode\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	assert_int_equal(refusals_for(&c, "multi-line-reply-announces-port"), 1);
	alg_free(c.alg);
}

/* A 227 released unrewritten at the hold limit opens nothing when it completes, and still pairs. */
static void released_reply_opens_nothing(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,");
	assert_int_equal(c.v.n, 0); /* held */
	alg_tick(c.alg, 1002, keep, &c);
	assert_int_equal(c.v.n, 1);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	assert_int_equal(refusals_for(&c, "reply-released-before-complete"), 1);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,81).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,81).\r\n");
	assert_int_equal(c.k.nadded, 1);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(split_command_keeps_pairing),   cmocka_unit_test(split_auth_still_encrypts),
	    cmocka_unit_test(split_multiline_opens_nothing), cmocka_unit_test(multiline_227_final_line_not_honoured),
	    cmocka_unit_test(released_reply_opens_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
