/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What is never read or rewritten: forged and fragmented packets, unpaired replies, TLS, non-FTP, Telnet tricks. */
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
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,80).\r\n");
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
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,99).\r\n");
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
	    cmocka_unit_test(bad_packets_dropped_unread),  cmocka_unit_test(refusals),
	    cmocka_unit_test(auth_tls_goes_opaque),	   cmocka_unit_test(telnet_commands_cannot_hide_port),
	    cmocka_unit_test(deep_pipeline_keeps_pairing), cmocka_unit_test(not_ftp_is_never_parsed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
