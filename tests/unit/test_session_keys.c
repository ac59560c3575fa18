/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Public pinhole keys are unique gateway-wide: two LAN clients behind one
 * masquerade address announcing the same port, in one worker or in two,
 * get different public ports; a key the kernel already has is skipped; a
 * session keeps one armed pinhole per direction; limits are checked again
 * when a pinhole is armed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alg/holes.h"
#include "alg/log.h"
#include "alg/session.h"
#include "tests/common/session_harness.h"

static const uint8_t LAN_CLIENT2[4] = {192, 0, 2, 51};

/* A LAN client behind the gateway's masquerade (GW) to OUT_SERVER, from source port sport. */
static void init_lan(struct conn *c, const uint8_t *client, uint16_t sport, uint16_t masq_port)
{
	init_conn(c, client, OUT_SERVER, OUT_SERVER, GW);
	c->k.ct.orig.sport = sport;
	c->k.ct.reply.dport = masq_port;
	c->k.exclusive = true;
}

static struct alg *new_alg(struct conn *c, const struct alg_config *cfg)
{
	struct alg *a = alg_new(cfg, &fake_kernel_ops, &c->k);
	assert_non_null(a);
	return a;
}

/* One worker: the second client's PORT gets the next port while the first's is still unanswered. */
static void same_port_one_worker(void **state)
{
	struct conn c1, c2;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	init_lan(&c1, LAN_CLIENT, 40000, 40000);
	init_lan(&c2, LAN_CLIENT2, 40000, 40001);
	/* One alg answers for both conntracks from c1's kernel. */
	c1.k.has_ct2 = true;
	c1.k.ct2 = c2.k.ct;
	c1.k.ct2.seqadj_present[0] = c1.k.ct2.seqadj_present[1] = true;
	struct alg *a = new_alg(&c1, &cfg);
	start_on(&c1, a);
	start_on(&c2, a);

	send_pkt(&c1, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
	assert_string_equal(out_payload(&c1), "PORT 203,0,113,1,195,80\r\n");
	send_pkt(&c2, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,51,195,80\r\n");
	assert_string_equal(out_payload(&c2), "PORT 203,0,113,1,195,81\r\n");
	send_pkt(&c1, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	send_pkt(&c2, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	assert_int_equal(c1.k.nadded, 2);
	assert_int_equal(c1.k.added[0].port, 50000);
	assert_memory_equal(c1.k.added[0].target, LAN_CLIENT, 4);
	assert_int_equal(c1.k.added[1].port, 50001);
	assert_memory_equal(c1.k.added[1].target, LAN_CLIENT2, 4);
	assert_int_equal(c1.k.added[1].target_port, 50000);
	alg_free(a);
}

/* Two workers (two algs, two kernels' views) sharing one key set. */
static void same_port_two_workers(void **state)
{
	struct conn c1, c2;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.workers = 2;
	init_lan(&c1, LAN_CLIENT, 40000, 40000);
	init_lan(&c2, LAN_CLIENT2, 40000, 40001);
	struct holekeys *keys = holekeys_new();
	assert_non_null(keys);
	struct alg *a1 = new_alg(&c1, &cfg), *a2 = new_alg(&c2, &cfg);
	alg_set_worker(a1, 0, 2);
	alg_set_worker(a2, 1, 2);
	alg_set_keys(a1, keys);
	alg_set_keys(a2, keys);
	start_on(&c1, a1);
	start_on(&c2, a2);

	send_pkt(&c1, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
	assert_string_equal(out_payload(&c1), "PORT 203,0,113,1,195,80\r\n");
	send_pkt(&c2, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,51,195,80\r\n");
	assert_string_equal(out_payload(&c2), "PORT 203,0,113,1,195,81\r\n");
	send_pkt(&c2, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	send_pkt(&c1, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	assert_int_equal(c1.k.nadded, 1);
	assert_int_equal(c1.k.added[0].port, 50000);
	assert_int_equal(c2.k.nadded, 1);
	assert_int_equal(c2.k.added[0].port, 50001);
	/* A PORT the server refuses gives its reservation back at once. */
	send_pkt(&c2, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,51,195,100\r\n");
	assert_string_equal(out_payload(&c2), "PORT 203,0,113,1,195,100\r\n");
	send_pkt(&c2, DIR_REPLY, PKT_TCP_ACK, "500 Illegal PORT command.\r\n");
	send_pkt(&c1, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,100\r\n");
	assert_string_equal(out_payload(&c1), "PORT 203,0,113,1,195,100\r\n");

	/*
	 * Once the first session ends, its key is free again for the other
	 * worker, but only when its pinhole has left the kernel, at the tick.
	 */
	send_pkt(&c1, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	send_pkt(&c2, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,51,195,80\r\n");
	assert_string_equal(out_payload(&c2), "PORT 203,0,113,1,195,82\r\n");
	assert_int_equal(c1.k.ndeleted, 0);
	tick(&c1, 1001);
	assert_int_equal(c1.k.ndeleted, 1);
	assert_int_equal(c1.k.deleted[0].port, 50000);
	send_pkt(&c2, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,51,195,80\r\n");
	assert_string_equal(out_payload(&c2), "PORT 203,0,113,1,195,80\r\n");
	alg_free(a1);
	alg_free(a2);
	holekeys_free(keys);
}

/* A key the kernel already has (EEXIST at arm time) gets the next port, in the line that goes out. */
static void kernel_has_key(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.k.exclusive = true;
	/* Left over from elsewhere: the kernel has CLIENT -> PUBLIC:50000. */
	struct pinhole stale = {.family = AF_INET, .port = 50000, .target_port = 50000, .timeout = 60};
	memcpy(stale.client, CLIENT, 4);
	memcpy(stale.local, PUBLIC, 4);
	memcpy(stale.target, SERVER, 4);
	c.k.added[0] = stale;
	c.k.nadded = 1;
	start_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	assert_string_equal(out_payload(&c), "227 Entering Passive Mod (203,0,113,1,195,81).\r\n");
	assert_int_equal(c.k.nadded, 2);
	assert_int_equal(c.k.added[1].port, 50001);
	assert_int_equal(c.k.added[1].target_port, 50000);
	/*
	 * The next announcement of the same port skips the taken key without asking the kernel, and
	 * the one it replaces, which stays armed until the new one is.
	 */
	epsv(&c, 50000);
	assert_string_equal(out_payload(&c), "229 Entering Extended Passive Mode (|||50002|)\r\n");
	assert_int_equal(c.k.nadded, 3);
	alg_free(c.alg);
}

/* Like the kernel helper (max_expected 1): a newer announcement replaces the older, armed or not. */
static void one_pinhole_per_direction(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	c.k.exclusive = true;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,81\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	assert_int_equal(c.k.nadded, 1);
	assert_int_equal(c.k.added[0].port, 50001);
	/* An armed one is replaced in the same kernel change; a passive one is another direction. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,82\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	assert_int_equal(c.k.nadded, 2);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.deleted[0].port, 50001);
	alg_free(c.alg);
}

/* Two sessions of one client pass their PORTs under MaxPinholesPerClient = 1; the second arm is refused. */
static void limits_checked_at_arm(void **state)
{
	struct conn c1, c2;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_pinholes_per_client = 1;
	init_lan(&c1, LAN_CLIENT, 40000, 40000);
	init_lan(&c2, LAN_CLIENT, 40001, 40001);
	c1.k.has_ct2 = true;
	c1.k.ct2 = c2.k.ct;
	c1.k.ct2.seqadj_present[0] = c1.k.ct2.seqadj_present[1] = true;
	struct alg *a = new_alg(&c1, &cfg);
	start_on(&c1, a);
	start_on(&c2, a);
	send_pkt(&c1, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,80\r\n");
	send_pkt(&c2, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,50,195,90\r\n");
	send_pkt(&c1, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	send_pkt(&c2, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n");
	assert_int_equal(c1.k.nadded, 1);
	assert_int_equal(c1.k.added[0].port, 50000);
	assert_int_equal(refusals_for(&c1, "client-max-pinholes"), 1);
	alg_free(a);
}

int main(void)
{
	log_open("test", LOG_LVL_ERR, false);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(same_port_one_worker),  cmocka_unit_test(same_port_two_workers),
	    cmocka_unit_test(kernel_has_key),	     cmocka_unit_test(one_pinhole_per_direction),
	    cmocka_unit_test(limits_checked_at_arm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
