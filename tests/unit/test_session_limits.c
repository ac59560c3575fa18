/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Limits: pinholes per session, per client and in all, sessions per client, a worker's share. */
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

static void pinholes_bounded_per_session(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_pinholes_per_session = 3;
	setup_conn(&c, &cfg);
	for (int i = 0; i < 5; i++) {
		char line[80];
		send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
		snprintf(line, sizeof(line), "229 Entering Extended Passive Mode (|||%d|)\r\n", 50000 + i);
		send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, line);
	}
	assert_int_equal(c.k.nadded, 5);
	assert_int_equal(c.k.ndeleted, 2);
	assert_int_equal(c.k.deleted[0].port, 50000);
	assert_int_equal(c.k.deleted[1].port, 50001);
	alg_free(c.alg);
}

/* Floods: per-client and global pinhole limits refuse (the reply passes unchanged); a full session replaces. */
static void pinhole_limits_per_client_and_global(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_pinholes_per_session = 8;
	cfg.max_pinholes_per_client = 2;
	setup_conn(&c, &cfg);
	epsv(&c, 50000);
	epsv(&c, 50001);
	epsv(&c, 50002);
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 2);
	assert_int_equal(refusals_for(&c, "client-max-pinholes"), 1);
	/* A session at its own limit replaces its oldest, which does not add to the others. */
	cfg.max_pinholes_per_client = 100;
	cfg.max_pinholes = 2;
	alg_set_config(c.alg, &cfg);
	epsv(&c, 50003);
	assert_int_equal(c.k.nadded, 2);
	assert_int_equal(refusals_for(&c, "max-pinholes"), 1);
	/* Once the connection closes its pinholes go and the count with them. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	alg_free(c.alg);

	config_defaults(&cfg);
	cfg.max_pinholes_per_session = 2;
	cfg.max_pinholes = 2;
	setup_conn(&c, &cfg);
	epsv(&c, 50000);
	epsv(&c, 50001);
	epsv(&c, 50002);
	assert_int_equal(c.k.nadded, 3);
	assert_int_equal(c.k.ndeleted, 1);
	/* A reload that raises MaxPinholesPerSession leaves existing sessions at the size they have. */
	cfg.max_pinholes_per_session = 8;
	cfg.max_pinholes = 100;
	alg_set_config(c.alg, &cfg);
	for (int i = 0; i < 6; i++)
		epsv(&c, 50003 + i);
	assert_int_equal(c.k.nadded, 9);
	assert_int_equal(c.k.ndeleted, 7);
	alg_free(c.alg);
}

static void sessions_limited_per_client(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_sessions_per_client = 1;
	setup_conn(&c, &cfg);
	/* A second connection from the same client: its SYN is let through unread, no session. */
	c.k.ct.orig.sport = 40001;
	c.k.ct.reply.dport = 40001;
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	assert_int_equal(refusals_for(&c, "client-max-sessions"), 1);
	alg_free(c.alg);
}

/* Worker 1 of 2: session ids 2, 4, ...; half of a global limit of 3, rounded up, is 2. */
static void worker_share(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	cfg.max_sessions = 3;
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.alg = alg_new(&cfg, &fake_kernel_ops, &c.k);
	alg_set_worker(c.alg, 1, 2);
	for (uint16_t port = 40000; port < 40003; port++) {
		c.k.ct.orig.sport = port;
		c.k.ct.reply.dport = port;
		send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	}
	assert_int_equal(refusals_for(&c, "max-sessions"), 1);
	struct alg *v[1] = {c.alg};
	char *j = alg_status(v, 1, 1000, true, "test", "xt", NULL, NULL);
	assert_non_null(strstr(j, "{\"id\":2,\"worker\":1,"));
	assert_non_null(strstr(j, "{\"id\":4,\"worker\":1,"));
	assert_null(strstr(j, "\"id\":3,"));
	free(j);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pinholes_bounded_per_session),
	    cmocka_unit_test(pinhole_limits_per_client_and_global),
	    cmocka_unit_test(sessions_limited_per_client),
	    cmocka_unit_test(worker_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
