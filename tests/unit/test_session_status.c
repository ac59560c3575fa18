/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "alg/log.h"
#include "tests/common/session_harness.h"

/* The Prometheus rendering, line for line: one session, one armed pinhole, two refusals of one reason. */
static void prometheus_exact_lines(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "227 Entering Passive Mode (192,0,2,10,195,80).\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "\xff\xf4\xff\xf2PORT 203,0,113,20,195,80\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 Unknown command.\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "P\xff\xf1ORT 203,0,113,20,195,80\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "500 Unknown command.\r\n");
	const struct alg_counters *ctr = alg_counters(c.alg);
	char *expected = NULL;
	assert_true(asprintf(&expected,
			     "# HELP ftp_alg_info Version, queue path and table of the running daemon.\n"
			     "# TYPE ftp_alg_info gauge\n"
			     "ftp_alg_info{version=\"te\\\"st\",queue_path=\"xt\",table=\"ftp_alg\"} 1\n"
			     "# HELP ftp_alg_uptime_seconds Seconds since the daemon started.\n"
			     "# TYPE ftp_alg_uptime_seconds gauge\n"
			     "ftp_alg_uptime_seconds 0\n"
			     "# HELP ftp_alg_workers Queue worker threads.\n"
			     "# TYPE ftp_alg_workers gauge\n"
			     "ftp_alg_workers 1\n"
			     "# HELP ftp_alg_sessions Control connections followed now.\n"
			     "# TYPE ftp_alg_sessions gauge\n"
			     "ftp_alg_sessions 1\n"
			     "# HELP ftp_alg_sessions_max MaxSessions.\n"
			     "# TYPE ftp_alg_sessions_max gauge\n"
			     "ftp_alg_sessions_max 16384\n"
			     "# HELP ftp_alg_pinholes_armed Pinholes armed now.\n"
			     "# TYPE ftp_alg_pinholes_armed gauge\n"
			     "ftp_alg_pinholes_armed 1\n"
			     "# HELP ftp_alg_pinholes_max MaxPinholes.\n"
			     "# TYPE ftp_alg_pinholes_max gauge\n"
			     "ftp_alg_pinholes_max 32768\n"
			     "# HELP ftp_alg_packets_total Packets queued to ftp-alg.\n"
			     "# TYPE ftp_alg_packets_total counter\n"
			     "ftp_alg_packets_total %llu\n"
			     "# HELP ftp_alg_sessions_total Control connections followed since start.\n"
			     "# TYPE ftp_alg_sessions_total counter\n"
			     "ftp_alg_sessions_total 1\n"
			     "# HELP ftp_alg_rewrites_total Lines rewritten.\n"
			     "# TYPE ftp_alg_rewrites_total counter\n"
			     "ftp_alg_rewrites_total %llu\n"
			     "# HELP ftp_alg_pinholes_opened_total Pinholes armed since start.\n"
			     "# TYPE ftp_alg_pinholes_opened_total counter\n"
			     "ftp_alg_pinholes_opened_total 1\n"
			     "# HELP ftp_alg_pinholes_used_total Pinholes a data connection used.\n"
			     "# TYPE ftp_alg_pinholes_used_total counter\n"
			     "ftp_alg_pinholes_used_total 0\n"
			     "# HELP ftp_alg_pinholes_expired_total Pinholes that expired unused.\n"
			     "# TYPE ftp_alg_pinholes_expired_total counter\n"
			     "ftp_alg_pinholes_expired_total 0\n"
			     "# HELP ftp_alg_pinholes_closed_total Pinholes removed with their session.\n"
			     "# TYPE ftp_alg_pinholes_closed_total counter\n"
			     "ftp_alg_pinholes_closed_total 0\n"
			     "# HELP ftp_alg_refused_total Lines refused, by reason.\n"
			     "# TYPE ftp_alg_refused_total counter\n"
			     "ftp_alg_refused_total{reason=\"telnet-command-in-PORT\"} 2\n"
			     "# HELP ftp_alg_dropped_total Packets dropped.\n"
			     "# TYPE ftp_alg_dropped_total counter\n"
			     "ftp_alg_dropped_total 0\n"
			     "# HELP ftp_alg_errors_total Kernel errors.\n"
			     "# TYPE ftp_alg_errors_total counter\n"
			     "ftp_alg_errors_total 0\n"
			     "x 1\n",
			     (unsigned long long)ctr->packets, (unsigned long long)ctr->rewrites) > 0);
	struct alg *v[1] = {c.alg};
	/* The harness's clock starts the alg at time 1000 (alg_new). */
	char *out = alg_status_prometheus(v, 1, 1000, "te\"st", "xt", "x 1\n");
	assert_string_equal(out, expected);
	unsigned sessions, pinholes;
	alg_totals(v, 1, &sessions, &pinholes);
	assert_int_equal(sessions, 1);
	assert_int_equal(pinholes, 1);
	free(out);
	free(expected);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(prometheus_exact_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
