/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bounce protection whatever the line looks like: verbs ended by any white
 * space, hidden behind Telnet commands or leading white space, on connections
 * that are not FTP (NAT slipstreaming), and ports below the floor from a server.
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
#include "tests/common/tcp4.h"

/* A LAN client behind masquerade, greeted, that has not spoken yet. */
static void greeted_active(struct conn *c)
{
	struct alg_config cfg;
	config_defaults(&cfg);
	init_conn(c, LAN_CLIENT, OUT_SERVER, OUT_SERVER, GW);
	greet_on(c, alg_new(&cfg, &fake_kernel_ops, &c->k));
}

/* The line as it leaves the gateway: rewritten, or as sent. */
static const char *sent_as(struct conn *c, const char *line)
{
	const char *o = out_payload(c);
	return *o ? o : line;
}

/* Fails on main: a verb ended by a tab, VT, FF, CR or NUL was not a verb, so its foreign address passed. */
static void any_separator_ends_the_verb(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
		size_t len;
	} cases[] = {
#define C(in, out) {in, out, sizeof(in) - 1}
	    C("PORT\t198,51,100,7,0,25\r\n", "XXXX\t198,51,100,7,0,25\r\n"),
	    C("PORT\v198,51,100,7,0,25\r\n", "XXXX\v198,51,100,7,0,25\r\n"),
	    C("port\f198,51,100,7,0,25\r\n", "XXXX\f198,51,100,7,0,25\r\n"),
	    C("PORT\r198,51,100,7,0,25\r\n", "XXXX\r198,51,100,7,0,25\r\n"),
	    C("EPRT\t|1|198.51.100.7|25|\r\n", "XXXX\t|1|198.51.100.7|25|\r\n"),
	    C("LPRT\t4,4,198,51,100,7,2,0,25\r\n", "XXXX\t4,4,198,51,100,7,2,0,25\r\n"),
	    /* ProFTPD skips leading white space and drops Telnet commands before it reads the verb. */
	    C(" PORT 198,51,100,7,0,25\r\n", "XXXXT 198,51,100,7,0,25\r\n"),
	    C("\t\tEPRT |1|198.51.100.7|25|\r\n", "XXXXRT |1|198.51.100.7|25|\r\n"),
	    C("\xff\xf4PORT\t198,51,100,7,0,25\r\n", "XXXXRT\t198,51,100,7,0,25\r\n"),
	    C("\xff\xf1 PORT 198,51,100,7,0,25\r\n", "XXXXORT 198,51,100,7,0,25\r\n"),
	    /* PORT as sent, PORTX once Telnet commands are dropped: either reading counts. */
	    C("PORT\xff\xf1X 198,51,100,7,0,25\r\n", "XXXX\xff\xf1X 198,51,100,7,0,25\r\n"),
#undef C
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn c;
		open_conn(&c);
		char payload[128];
		memcpy(payload, cases[i].in, cases[i].len + 1);
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, payload);
		if (strcmp(sent_as(&c, payload), cases[i].out) != 0)
			fail_msg("case %zu: sent as \"%s\"", i, sent_as(&c, payload));
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
		assert_int_equal(c.k.nadded, 0);
		alg_free(c.alg);
	}
	/* A NUL ends the verb for a C server: the line stops there, so it counts as PORT. */
	struct conn c;
	open_conn(&c);
	uint8_t p[2048];
	static const char nul[] = "PORT\0"
				  "198,51,100,7,0,25\r\n";
	const struct flow *f = &c.k.ct.orig;
	size_t len =
	    tcp4_build(p, f->saddr, f->daddr, f->sport, f->dport, c.seq[DIR_ORIG], PKT_TCP_ACK, nul, sizeof(nul) - 1);
	alg_packet(c.alg, DIR_ORIG, c.id++, p, len, 1000, keep, &c);
	assert_int_equal(c.last_out_len, len);
	assert_memory_equal(c.last_out + 40,
			    "XXXX\0"
			    "198,51,100,7,0,25\r\n",
			    sizeof(nul) - 1);
	alg_free(c.alg);
}

/* Fails on main: a verb split off by the segment end is held, then checked whole. */
static void split_hidden_verb_is_held(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, " ");
	assert_int_equal(c.v.n, 0); /* held */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PO");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "RT\t198,51,100,7,0,25\r\n");
	assert_int_equal(c.v.n, 3);
	assert_int_equal(refusals_for(&c, "space-before-PORT"), 1);
	alg_free(c.alg);
	/* Held past the limit: the white space goes out as XXX, so the server's verb is XXXPORT. */
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "   ");
	assert_int_equal(c.v.n, 0);
	alg_tick(c.alg, 1002, keep, &c);
	assert_string_equal(out_payload(&c), "XXX");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 198,51,100,7,0,25\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 XXXPORT not understood.\r\n");
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
}

/* Fails on main: a connection that did not open like FTP carried any later PORT to the server unchecked. */
static void not_ftp_still_neutralizes_port(void **state)
{
	struct conn c;
	(void)state;
	greeted_active(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "HELO example\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 What?\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
	assert_string_equal(out_payload(&c), "XXXX 192,0,2,50,195,80\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPRT\t|1|192.0.2.99|25|\r\n");
	assert_string_equal(out_payload(&c), "XXXX\t|1|192.0.2.99|25|\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	/* Nothing else is touched, and no reply is read. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	assert_string_equal(out_payload(&c), "");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (198,51,100,200,195,80).\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	assert_int_equal(refusals_for(&c, "not-ftp"), 1);
	assert_int_equal(refusals_for(&c, "PORT-on-non-FTP-connection"), 2);
	alg_free(c.alg);
}

/*
 * Fails on main: NAT slipstreaming with a browser's fetch() whose method is an
 * FTP verb. USER / HTTP/1.1 was a plausible first line, so the PORT in the body
 * was rewritten and its pinhole armed.
 */
static void http_request_is_never_ftp(void **state)
{
	(void)state;
	static const char *const requests[] = {
	    "USER / HTTP/1.1\r\nHost: 198.51.100.200:21\r\nContent-Length: 24\r\n\r\n",
	    "PRI * HTTP/2.0\r\n\r\n",
	};
	for (size_t i = 0; i < 2; i++) {
		struct conn c;
		greeted_active(&c);
		char req[256];
		snprintf(req, sizeof(req), "%s", requests[i]);
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, req);
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,0,80\r\n");
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
		assert_string_equal(out_payload(&c), "XXXX 192,0,2,50,195,80\r\n");
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
		assert_int_equal(c.k.nadded, 0);
		assert_int_equal(refusals_for(&c, "http-on-control-port"), 1);
		alg_free(c.alg);
	}
	/* Header fields after a plausible first line, before login: the same. */
	struct conn c;
	greeted_active(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "USER x\r\nHost: 198.51.100.200\r\n\r\nPORT 192,0,2,50,195,80\r\n");
	assert_string_equal(out_payload(&c), "USER x\r\nHost: 198.51.100.200\r\n\r\nXXXX 192,0,2,50,195,80\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "331 Password?\r\n200 PORT command successful.\r\n");
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
	/* After login, the same PORT is an FTP client's. */
	setup_active(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
	assert_string_equal(out_payload(&c), "PORT 203,0,113,1,195,80\r\n");
	alg_free(c.alg);
}

/* Fails on main: a server's 227/229 naming one of its well-known ports opened a pinhole to it. */
static void server_port_below_floor_opens_nothing(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,0,22).\r\n");
	assert_string_equal(out_payload(&c), "");
	epsv(&c, 1023);
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	assert_int_equal(refusals_for(&c, "227-port-below-floor"), 1);
	assert_int_equal(refusals_for(&c, "229-port-below-floor"), 1);
	/* At the floor: the public port is the server's, so the line stays as it is, and the pinhole opens. */
	epsv(&c, 1024);
	assert_int_equal(c.k.nadded, 1);
	assert_int_equal(c.k.added[0].target_port, 1024);
	alg_free(c.alg);
	/* The floor is MinDataPort. */
	struct alg_config cfg;
	config_defaults(&cfg);
	cfg.min_data_port = 21;
	setup_conn(&c, &cfg);
	epsv(&c, 22);
	assert_int_equal(c.k.nadded, 1);
	alg_free(c.alg);
}

/* Fails on main: EPRT |1|203.0.113.010| passed untouched, and inet_aton reads .010 as .8. */
static void leading_zeros_neutralized(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPRT |1|203.0.113.010|6275|\r\n");
	assert_string_equal(out_payload(&c), "XXXX |1|203.0.113.010|6275|\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 203,0,113,010,24,131\r\n");
	assert_string_equal(out_payload(&c), "XXXX 203,0,113,010,24,131\r\n");
	/* Without leading zeros it names the client and passes (this gateway does not NAT the client). */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPRT |1|203.0.113.10|6275|\r\n");
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(refusals_for(&c, "malformed-EPRT"), 1);
	assert_int_equal(refusals_for(&c, "malformed-PORT"), 1);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(any_separator_ends_the_verb),	     cmocka_unit_test(split_hidden_verb_is_held),
	    cmocka_unit_test(not_ftp_still_neutralizes_port),	     cmocka_unit_test(http_request_is_never_ftp),
	    cmocka_unit_test(server_port_below_floor_opens_nothing), cmocka_unit_test(leading_zeros_neutralized),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
