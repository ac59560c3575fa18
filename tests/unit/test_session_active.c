/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Active mode: PORT and EPRT rewritten or neutralized, pinholes armed by the server's yes. */
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

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(port_rewritten_armed_on_200),
	    cmocka_unit_test(port_bounce_neutralized),
	    cmocka_unit_test(replies_paired_in_order),
	    cmocka_unit_test(same_port_two_clients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
