/* SPDX-License-Identifier: GPL-2.0-or-later */
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
#include "conf/config.h"
#include "tests/common/session_harness.h"

static const uint8_t OUT[4] = {203, 0, 113, 10}, IN[4] = {192, 0, 2, 10};

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* Warnings logged while a session starts and asks for EPSV. */
static char *warnings_of(struct conn *c, const struct alg_config *cfg, bool adopted)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	log_open("test", LOG_LVL_WARN, LOG_SINK_STDERR);
	log_set_stream(f);
	if (adopted)
		start_adopted(c, cfg);
	else
		start_conn(c, cfg);
	send_pkt(c, DIR_ORIG, PKT_TCP_ACK, "EPSV\r\n");
	send_pkt(c, DIR_REPLY, PKT_TCP_ACK, "229 Entering Extended Passive Mode (|||6446|)\r\n");
	log_set_stream(NULL);
	log_open("test", 0, LOG_SINK_STDERR);
	fclose(f);
	return buf;
}

/* A routed session whose sides cannot be told apart says so once; it is not warned about offsets. */
static void unclassified_logged_once_no_seqadj_quiet(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	init_conn(&c, OUT, IN, IN, OUT);
	c.k.seqadj_ext = false;
	c.k.via_default_err = -ENETUNREACH;
	char *log = warnings_of(&c, &cfg, false);
	assert_int_equal(count(log, "event=unclassified"), 1);
	assert_non_null(strstr(log, "warning: session=1 event=unclassified error=\"Network is unreachable\""));
	assert_int_equal(count(log, "event=no-seqadj"), 0);
	assert_int_equal(c.k.nadded, 0);
	/* Routed (no tuple change, so no seqadj from NAT setup): the extension is still probed for. */
	assert_int_equal(c.k.seqadj_calls, 1);
	assert_int_equal(c.k.ct_get_calls, 2);
	free(log);
	alg_free(c.alg);
}

/* A NATed session without the extension (adopted): there the warning matters. */
static void nated_session_warns_no_seqadj(void **state)
{
	struct conn c;
	struct alg_config cfg;
	(void)state;
	config_defaults(&cfg);
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.k.seqadj_ext = false;
	char *log = warnings_of(&c, &cfg, true);
	assert_int_equal(count(log, "warning: session=1 event=no-seqadj"), 1);
	assert_int_equal(count(log, "event=unclassified"), 0);
	free(log);
	alg_free(c.alg);

	/* Seen from its SYN, it has the extension the expectation rule gives: nothing to warn about. */
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	c.k.seqadj_ext = false;
	log = warnings_of(&c, &cfg, false);
	assert_int_equal(count(log, "event=no-seqadj"), 0);
	free(log);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, LOG_SINK_STDERR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(unclassified_logged_once_no_seqadj_quiet),
	    cmocka_unit_test(nated_session_warns_no_seqadj),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
