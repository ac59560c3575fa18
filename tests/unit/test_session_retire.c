/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A session's unused pinholes leave the kernel at the tick after it ends,
 * all sessions' in one change: the used ones are counted used, the expired
 * ones expired, and a key and its place in the limits stay taken until the
 * pinhole is gone. Where the kernel cannot destroy, each goes alone.
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
#include "alg/session_int.h"
#include "tests/common/session_harness.h"

static const uint8_t CLIENT2[4] = {198, 51, 100, 21};

static void close_conn(struct conn *c)
{
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
}

/* A logged-in session on an alg of its own with the kernel calls ops. */
static struct alg *start_with(struct conn *c, const struct alg_config *cfg, const struct alg_kernel_ops *ops)
{
	init_conn(c, CLIENT, PUBLIC, SERVER, CLIENT);
	struct alg *a = alg_new(cfg, ops, &c->k);
	assert_non_null(a);
	start_on(c, a);
	return a;
}

/*
 * Two connections on one alg, which answers for both conntracks from c1's
 * kernel: c1 logged in, c2 (from client2, source port sport2) not started.
 */
static struct alg *two_on_one(struct conn *c1, struct conn *c2, const uint8_t client2[4], uint16_t sport2,
			      const struct alg_config *cfg, const struct alg_kernel_ops *ops)
{
	init_conn(c2, client2, PUBLIC, SERVER, client2);
	c2->k.ct.orig.sport = c2->k.ct.reply.dport = sport2;
	struct alg *a = start_with(c1, cfg, ops);
	c1->k.has_ct2 = true;
	c1->k.ct2 = c2->k.ct;
	return a;
}

static int no_destroy(void *k, const struct pinhole *v, unsigned n)
{
	(void)k;
	(void)v;
	(void)n;
	return -EOPNOTSUPP;
}

/* Two sessions end within a second: their pinholes go in one change at the tick, none before. */
static void two_sessions_one_change(void **state)
{
	(void)state;
	struct conn c1, c2;
	struct alg_config cfg;
	config_defaults(&cfg);
	struct alg *a = two_on_one(&c1, &c2, CLIENT2, 40000, &cfg, &fake_kernel_ops);
	start_on(&c2, a);
	epsv(&c1, 50000);
	epsv(&c2, 50000);
	close_conn(&c1);
	close_conn(&c2);
	/* c2's requests go to c1's fake kernel, the alg's. */
	assert_int_equal(c1.k.ndeleted, 0);
	tick(&c1, 1001);
	assert_int_equal(c1.k.destroy_calls, 1);
	assert_int_equal(c1.k.ndeleted, 2);
	const struct alg_counters *ctr = alg_counters(a);
	assert_int_equal(ctr->pinholes_closed, 2);
	assert_int_equal(ctr->pinholes_used, 0);
	/* Nothing is left for the next tick. */
	tick(&c1, 1002);
	assert_int_equal(c1.k.ndeleted, 2);
	alg_free(a);
}

/* A pinhole its data connection used is not in the kernel's list: counted used. */
static void used_is_counted_used(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	epsv(&c, 50000);
	c.k.consumed[0] = true;
	close_conn(&c);
	tick(&c, 1001);
	/* Destroyed all the same (a dump read in parts can miss an entry), and counted as used. */
	assert_int_equal(c.k.destroy_calls, 1);
	assert_int_equal(alg_counters(c.alg)->pinholes_used, 1);
	assert_int_equal(alg_counters(c.alg)->pinholes_closed, 0);
	alg_free(c.alg);
}

/* One past its timeout by the tick expired in the kernel on its own. */
static void expired_is_counted_expired(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	epsv(&c, 50000);
	close_conn(&c);
	tick(&c, 1000 + 61);
	assert_int_equal(c.k.ndeleted, 0);
	assert_int_equal(alg_counters(c.alg)->pinholes_expired, 1);
	alg_free(c.alg);
}

/* A refused change keeps the pinholes for the next tick; their keys stay taken meanwhile. */
static void refused_change_is_retried(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	epsv(&c, 50000);
	close_conn(&c);
	c.k.del_err = -ENOBUFS;
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 0);
	assert_int_equal(alg_counters(c.alg)->errors, 1);
	c.k.del_err = 0;
	tick(&c, 1002);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.deleted[0].port, 50000);
	assert_int_equal(alg_counters(c.alg)->pinholes_closed, 1);
	alg_free(c.alg);
}

/* Without DESTROYSETELEM (before 6.3) each is looked up and removed alone, as before. */
static void without_destroy_each_alone(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	struct alg_kernel_ops ops = fake_kernel_ops;
	ops.pinholes_destroy = no_destroy;
	config_defaults(&cfg);
	struct alg *a = start_with(&c, &cfg, &ops);
	epsv(&c, 50000);
	close_conn(&c);
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.destroy_calls, 0);
	assert_int_equal(alg_counters(a)->pinholes_closed, 1);
	alg_free(a);
}

/*
 * Without DESTROYSETELEM, a delete that fails leaves the pinhole in the
 * kernel: it stays retired (key taken, counted) and is retried at the next
 * tick, as a refused batch is.
 */
static void fallback_delete_error_is_retried(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	struct alg_kernel_ops ops = fake_kernel_ops;
	ops.pinholes_destroy = no_destroy;
	config_defaults(&cfg);
	struct alg *a = start_with(&c, &cfg, &ops);
	epsv(&c, 50000);
	close_conn(&c);
	c.k.del_err = -ENOBUFS;
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 0);
	c.k.del_err = 0;
	tick(&c, 1002);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.deleted[0].port, 50000);
	alg_free(a);
}

/* The same failure does not free the client's place in MaxPinholesPerClient while its pinhole is still there. */
static void fallback_delete_error_keeps_client_count(void **state)
{
	(void)state;
	struct conn c1, c2;
	struct alg_config cfg;
	struct alg_kernel_ops ops = fake_kernel_ops;
	ops.pinholes_destroy = no_destroy;
	config_defaults(&cfg);
	cfg.max_pinholes_per_client = 1;
	struct alg *a = two_on_one(&c1, &c2, CLIENT, 40001, &cfg, &ops);
	epsv(&c1, 50000);
	close_conn(&c1);
	c1.k.del_err = -ENOBUFS;
	tick(&c1, 1001);
	/* The first pinhole is still in the kernel: the client's next one is over its limit. */
	start_on(&c2, a);
	epsv(&c2, 50001);
	assert_int_equal(c1.k.nadded, 1);
	assert_int_equal(refusals_for(&c2, "client-max-pinholes"), 1);
	alg_free(a);
}

/* The kernel's list could not be read: each is looked up and removed alone, so the counts stay exact. */
static void unread_list_each_alone(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	epsv(&c, 50000);
	close_conn(&c);
	c.k.armed_err = -ENOBUFS;
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.destroy_calls, 0);
	alg_free(c.alg);
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
 * still removed: DESTROYSETELEM does not fail on a missing entry, so every
 * retired pinhole not past its time goes.
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
	struct alg *a = start_with(&c, &cfg, &ops);
	epsv(&c, 50000);
	close_conn(&c);
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.deleted[0].port, 50000);
	alg_free(a);
}

/*
 * The client half-closes right after EPSV and the server answers 229, then
 * closes too: the pinhole armed after the first FIN leaves the kernel at the
 * tick after the control connection has ended, not at its own timeout.
 */
static void armed_after_close_leaves_at_tick(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	close_conn(&c);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "229 Entering Extended Passive Mode (|||50000|)\r\n");
	assert_int_equal(c.k.nadded, 1);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK | PKT_TCP_FIN, NULL);
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(c.k.deleted[0].port, 50000);
	alg_free(c.alg);
}

/* A session found not to be FTP (a browser's header field before login) loses its pinholes at once. */
static void not_ftp_removes_at_once(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	greet_on(&c, alg_new(&cfg, &fake_kernel_ops, &c.k));
	/* Before login, then an HTTP header field. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "USER anonymous\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "331 Password?\r\n");
	epsv(&c, 50000);
	assert_int_equal(c.k.nadded, 1);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "Host: ftp.example\r\n");
	assert_int_equal(c.k.ndeleted, 1);
	alg_free(c.alg);
}

/*
 * A client that ends sessions as fast as it opens them cannot hold more
 * pinholes than MaxPinholesPerClient: a retired one counts until it has left
 * the kernel.
 */
static void retired_count_against_client(void **state)
{
	(void)state;
	struct conn c1, c2;
	struct alg_config cfg;
	config_defaults(&cfg);
	cfg.max_pinholes_per_client = 1;
	struct alg *a = two_on_one(&c1, &c2, CLIENT, 40001, &cfg, &fake_kernel_ops);
	epsv(&c1, 50000);
	assert_int_equal(c1.k.nadded, 1);
	close_conn(&c1);
	/* The first session's pinhole is still in the kernel: the client's next one is refused. */
	start_on(&c2, a);
	epsv(&c2, 50001);
	assert_int_equal(c1.k.nadded, 1);
	assert_int_equal(refusals_for(&c2, "client-max-pinholes"), 1);
	tick(&c1, 1001);
	assert_int_equal(c1.k.ndeleted, 1);
	epsv(&c2, 50002);
	assert_int_equal(c1.k.nadded, 2);
	alg_free(a);
}

/*
 * A client with no session left but a retired pinhole waits among the
 * orphans, and is freed by the tick that removes the pinhole.
 */
static void orphan_client_freed(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	epsv(&c, 50000);
	close_conn(&c);
	/* A takeover forgets the closed session before its pinhole has left the kernel. */
	assert_int_equal(alg_takeover(c.alg, 1000, keep, &c), 0);
	assert_int_equal(c.k.ndeleted, 0);
	assert_non_null(c.alg->orphans);
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 1);
	assert_int_equal(alg_counters(c.alg)->pinholes_closed, 1);
	assert_null(c.alg->orphans);
	for (size_t i = 0; i < HASH_BUCKETS; i++)
		assert_null(c.alg->peers[i]);
	alg_free(c.alg);
}

/*
 * An orphaned client opens a new session before the tick and closes that
 * too: one struct peer throughout, freed once, counts exact.
 */
static void orphan_regains_a_session(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	epsv(&c, 50000);
	close_conn(&c);
	assert_int_equal(alg_takeover(c.alg, 1000, keep, &c), 0);
	/* The same client again, before the tick: the orphan is its client. */
	start_on(&c, c.alg);
	epsv(&c, 50001);
	assert_int_equal(c.k.nadded, 2);
	close_conn(&c);
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
	    cmocka_unit_test(two_sessions_one_change),
	    cmocka_unit_test(used_is_counted_used),
	    cmocka_unit_test(expired_is_counted_expired),
	    cmocka_unit_test(refused_change_is_retried),
	    cmocka_unit_test(without_destroy_each_alone),
	    cmocka_unit_test(fallback_delete_error_is_retried),
	    cmocka_unit_test(fallback_delete_error_keeps_client_count),
	    cmocka_unit_test(unread_list_each_alone),
	    cmocka_unit_test(retired_missed_by_list_is_still_removed),
	    cmocka_unit_test(armed_after_close_leaves_at_tick),
	    cmocka_unit_test(not_ftp_removes_at_once),
	    cmocka_unit_test(retired_count_against_client),
	    cmocka_unit_test(orphan_client_freed),
	    cmocka_unit_test(orphan_regains_a_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
