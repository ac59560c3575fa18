/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An adversary's findings against the session layer. Each test asserts the
 * secure outcome the SECURITY contract promises, so it fails while the
 * weakness it demonstrates exists.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alg/log.h"
#include "alg/session.h"
#include "tests/common/session_harness.h"
#include "tests/common/tcp4.h"

/* send_pkt at another time. */
static void send_at(struct conn *c, int dir, uint8_t flags, const char *payload, time_t now)
{
	uint8_t p[2048];
	size_t len = build(&c->k.ct, p, dir, c->seq[dir], flags, payload);
	alg_packet(c->alg, dir, c->id++, p, len, now, keep, c);
	c->seq[dir] += (uint32_t)(payload ? strlen(payload) : 0) + ((flags & PKT_TCP_SYN) ? 1 : 0);
}

static bool all_accepted(const struct conn *c)
{
	for (unsigned i = 0; i < c->v.n; i++)
		if (!c->v.v[i].accept)
			return false;
	return c->v.n > 0;
}

/*
 * A stranger on the WAN injects one in-window RST that the server ignores
 * (RFC 5961) and conntrack ignores (not exact). Contract: "FIN and RST seen
 * by ftp-alg decide nothing". The session is marked closing anyway, its
 * pinholes go, and ten seconds later it is freed: the live control
 * connection's next packets are "not-adoptable" and dropped for good.
 */
static void forged_rst_kills_live_session(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	epsv(&c, 50000);
	assert_int_equal(c.k.nadded, 1);
	uint32_t seq = c.seq[0];
	c.seq[0] = seq + 1000; /* in window, not exact */
	send_at(&c, DIR_ORIG, PKT_TCP_RST, NULL, 1000);
	c.seq[0] = seq;
	/* The announced data connection still works. */
	assert_int_equal(c.k.ndeleted, 0);
	alg_tick(c.alg, 1012, keep, &c);
	/* The conntrack is still there: the connection lives on. */
	send_at(&c, DIR_ORIG, PKT_TCP_ACK, "NOOP\r\n", 1013);
	assert_true(all_accepted(&c));
	send_at(&c, DIR_REPLY, PKT_TCP_ACK, "200 NOOP ok.\r\n", 1013);
	assert_true(all_accepted(&c));
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", LOG_LVL_ERR, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(forged_rst_kills_live_session),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
