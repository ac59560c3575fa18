/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Review of the retired pinholes (holes_retire_all, holes_retired): a
 * pinhole must leave the kernel at the tick after its control connection
 * ends, and its key and counts must stay until it has.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "alg/session.h"
#include "tests/common/session_harness.h"

static int no_destroy(void *k, const struct pinhole *v, unsigned n)
{
	(void)k;
	(void)v;
	(void)n;
	return -EOPNOTSUPP;
}

/*
 * The client half-closes right after EPSV (in order: the session is
 * closing) and the server answers 229, then closes too. The pinhole armed
 * after the first FIN must still leave the kernel at the tick after the
 * control connection has ended, not live on until its own timeout.
 */
static void armed_after_close_leaves_at_tick(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "229 Entering Extended Passive Mode (|||50000|)\r\n");
	assert_int_equal(c.k.nadded, 1);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	tick(&c, 1001);
	tick(&c, 1002);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.deleted[0].port, 50000);
	alg_free(c.alg);
}

/*
 * Without DESTROYSETELEM each retired pinhole is deleted alone. A delete
 * that fails leaves the pinhole in the kernel: it must stay retired (key
 * taken, counted) and be retried at the next tick, as a refused batch is.
 */
static void fallback_delete_error_is_retried(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	struct alg_kernel_ops ops = fake_kernel_ops;
	ops.pinholes_destroy = no_destroy;
	config_defaults(&cfg);
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	struct alg *a = alg_new(&cfg, &ops, &c.k);
	assert_non_null(a);
	start_on(&c, a);
	epsv(&c, 50000);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	c.k.del_err = -ENOBUFS;
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 0);
	c.k.del_err = 0;
	tick(&c, 1002);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.deleted[0].port, 50000);
	alg_free(c.alg);
}

/*
 * The same failure must not free the client's place in MaxPinholesPerClient
 * while its pinhole is still in the kernel.
 */
static void fallback_delete_error_keeps_client_count(void **state)
{
	(void)state;
	struct conn c1, c2;
	struct alg_config cfg;
	struct alg_kernel_ops ops = fake_kernel_ops;
	ops.pinholes_destroy = no_destroy;
	config_defaults(&cfg);
	cfg.max_pinholes_per_client = 1;
	init_conn(&c1, CLIENT, PUBLIC, SERVER, CLIENT);
	init_conn(&c2, CLIENT, PUBLIC, SERVER, CLIENT);
	c2.k.ct.orig.sport = c2.k.ct.reply.dport = 40001;
	c1.k.has_ct2 = true;
	c1.k.ct2 = c2.k.ct;
	struct alg *a = alg_new(&cfg, &ops, &c1.k);
	assert_non_null(a);
	start_on(&c1, a);
	epsv(&c1, 50000);
	send_pkt(&c1, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	c1.k.del_err = -ENOBUFS;
	tick(&c1, 1001);
	/* The first pinhole is still in the kernel: the client's next one is over its limit. */
	start_on(&c2, a);
	epsv(&c2, 50001);
	assert_int_equal(c1.k.nadded, 1);
	assert_int_equal(refusals_for(&c2, "client-max-pinholes"), 1);
	alg_free(a);
}

static uint16_t hidden_port;

/*
 * The kernel's list as a dump in several parts reads it while data
 * connections delete other entries: nf_tables resumes each part by a count
 * of elements, so a live entry can be skipped. Here port hidden_port is.
 */
struct armed_fwd {
	void (*cb)(void *ctx, const struct pinhole *p);
	void *ctx;
};

static void collect_cb(void *ctx, const struct pinhole *p)
{
	struct armed_fwd *inner = ctx;
	if (p->port != hidden_port)
		inner->cb(inner->ctx, p);
}

static int armed_skipping(void *k, void (*cb)(void *ctx, const struct pinhole *p), void *ctx)
{
	struct armed_fwd inner = {cb, ctx};
	return fake_kernel_ops.pinholes_armed(k, collect_cb, &inner);
}

/*
 * A retired pinhole that an incomplete read of the kernel's list misses is
 * taken as used and never removed: it stays in the kernel until its
 * timeout, its key and counts freed. DESTROYSETELEM does not fail on a
 * missing entry, so every retired pinhole not past its time should go.
 */
static void retired_missed_by_list_is_still_removed(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	struct alg_kernel_ops ops = fake_kernel_ops;
	ops.pinholes_armed = armed_skipping;
	hidden_port = 50000;
	config_defaults(&cfg);
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	struct alg *a = alg_new(&cfg, &ops, &c.k);
	assert_non_null(a);
	start_on(&c, a);
	epsv(&c, 50000);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.deleted[0].port, 50000);
	alg_free(c.alg);
}

/*
 * A client whose only session was forgotten (takeover) waits among the
 * orphans with its retired pinhole; it opens a new session before the tick
 * and closes that too: one struct peer throughout, freed once, counts exact.
 */
static void orphan_regains_a_session(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	epsv(&c, 50000);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	assert_int_equal(alg_takeover(c.alg, 1000, keep, &c), 0);
	/* The same client again, before the tick: the orphan is its client. */
	start_on(&c, c.alg);
	epsv(&c, 50001);
	assert_int_equal(c.k.nadded, 2);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	assert_int_equal(alg_takeover(c.alg, 1000, keep, &c), 0);
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 2);
	assert_int_equal(alg_counters(c.alg)->pinholes_closed, 2);
	tick(&c, 1002);
	alg_free(c.alg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(armed_after_close_leaves_at_tick),
	    cmocka_unit_test(fallback_delete_error_is_retried),
	    cmocka_unit_test(fallback_delete_error_keeps_client_count),
	    cmocka_unit_test(retired_missed_by_list_is_still_removed),
	    cmocka_unit_test(orphan_regains_a_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
