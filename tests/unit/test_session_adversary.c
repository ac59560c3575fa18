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
#include <unistd.h>

#include "alg/log.h"
#include "alg/pkt.h"
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

/* A packet of any size through alg_packet; verdicts into c->v (rebuilt packets not copied). */
static void keep_v(void *ctx, const struct alg_verdicts *v)
{
	struct conn *c = ctx;
	c->v = *v;
	c->emits++;
}

static uint8_t big_out[70000];
static size_t big_out_len;

/* keep_v, and the last rebuilt packet's payload in big_out (empty if none). */
static void keep_big(void *ctx, const struct alg_verdicts *v)
{
	keep_v(ctx, v);
	big_out_len = 0;
	for (unsigned i = 0; i < v->n; i++)
		if (v->v[i].data) {
			struct pkt_info pi;
			assert_int_equal(pkt_parse(v->v[i].data, v->v[i].len, &pi), 0);
			memcpy(big_out, v->v[i].data + pi.payload_off, pi.payload_len);
			big_out_len = pi.payload_len;
		}
}

static void send_big(struct conn *c, int dir, const char *payload, size_t plen, time_t now)
{
	static uint8_t p[70000];
	const struct flow *f = dir == DIR_ORIG ? &c->k.ct.orig : &c->k.ct.reply;
	size_t len = tcp4_build(p, f->saddr, f->daddr, f->sport, f->dport, c->seq[dir], PKT_TCP_ACK, payload, plen);
	alg_packet(c->alg, dir, c->id++, p, len, now, keep_big, c);
	c->seq[dir] += (uint32_t)plen;
}

/* Standard error into a file, so that a test can count log lines. */
static char log_path[64];

static int saved_stderr = -1;

static void capture_log(void)
{
	fflush(stderr);
	saved_stderr = dup(2);
	snprintf(log_path, sizeof(log_path), "/tmp/test_adversary.%d.log", (int)getpid());
	assert_non_null(freopen(log_path, "w", stderr));
	log_set_level(LOG_LVL_INFO);
}

/* Standard error back (cmocka reports failures there). */
static int restore_log(void **state)
{
	(void)state;
	if (saved_stderr >= 0) {
		fflush(stderr);
		dup2(saved_stderr, 2);
		close(saved_stderr);
		saved_stderr = -1;
		unlink(log_path);
	}
	return 0;
}

static unsigned log_count(const char *needle)
{
	fflush(stderr);
	FILE *f = fopen(log_path, "r");
	assert_non_null(f);
	char line[4096];
	unsigned n = 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

/* Use up the refusal logs (log_gate) of second now with segments whose checksum is wrong. */
static void exhaust_gate(struct conn *c, time_t now)
{
	unsigned before = log_count("reason=bad-checksum");
	for (int i = 0; i < 25; i++) {
		uint8_t p[256];
		size_t len = build(&c->k.ct, p, DIR_ORIG, c->seq[DIR_ORIG], PKT_TCP_ACK, "NOOP\r\n");
		p[len - 1] ^= 1;
		alg_packet(c->alg, DIR_ORIG, c->id++, p, len, now, keep_v, c);
	}
	assert_true(log_count("reason=bad-checksum") - before <= 20);
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
	/* Conntrack ignores it too: the connection stays established. */
	c.k.ct.has_tcp_state = true;
	c.k.ct.tcp_state = 3; /* TCP_CONNTRACK_ESTABLISHED */
	uint32_t seq = c.seq[0];
	c.seq[0] = seq + 1000; /* in window, not exact */
	send_at(&c, DIR_ORIG, PKT_TCP_RST, NULL, 1000);
	c.seq[0] = seq;
	/* The announced data connection still works (a closed session's pinholes would go at this tick). */
	assert_int_equal(c.k.ndeleted, 0);
	alg_tick(c.alg, 1012, keep, &c);
	assert_int_equal(c.k.ndeleted, 0);
	/* The conntrack is still there: the connection lives on. */
	send_at(&c, DIR_ORIG, PKT_TCP_ACK, "NOOP\r\n", 1013);
	assert_true(all_accepted(&c));
	send_at(&c, DIR_REPLY, PKT_TCP_ACK, "200 NOOP ok.\r\n", 1013);
	assert_true(all_accepted(&c));
	alg_free(c.alg);
}

/* The other side of the rule above: a close that conntrack took ends the session and its pinholes. */
static void close_taken_by_conntrack_ends_session(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	epsv(&c, 50000);
	c.k.ct.has_tcp_state = true;
	c.k.ct.tcp_state = 8; /* TCP_CONNTRACK_CLOSE */
	send_at(&c, DIR_ORIG, PKT_TCP_RST, NULL, 1000);
	tick(&c, 1001);
	assert_int_equal(c.k.ndeleted, 1);
	/* Kept while its conntrack lingers, gone with it. */
	alg_tick(c.alg, 1011, keep, &c);
	char *st = alg_status(&c.alg, 1, 1011, true, "t", "xt", NULL, NULL);
	assert_non_null(strstr(st, "\"sessions\":[{"));
	free(st);
	c.k.ct_get_err = -ENOENT;
	alg_tick(c.alg, 1022, keep, &c);
	st = alg_status(&c.alg, 1, 1022, true, "t", "xt", NULL, NULL);
	assert_non_null(strstr(st, "\"sessions\":[]"));
	free(st);
	alg_free(c.alg);
}

/*
 * A client (or server) makes the daemon log without bound: every rewrite
 * logs "event=port"/"event=pasv"/"event=epsv", every 200 to a PORT logs
 * "event=port-armed", ungated. One LAN client pipelining PORT lines (one per
 * segment, ~60 bytes each) writes one journal line per line it sends.
 * Contract: every log line a peer can trigger is rate-gated.
 */
static void rewrite_logs_are_gated(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	capture_log();
	for (int i = 0; i < 50; i++) {
		char line[64];
		snprintf(line, sizeof(line), "PORT 192,0,2,50,%d,%d\r\n", 4 + i / 200, i % 200 + 1);
		send_at(&c, DIR_ORIG, PKT_TCP_ACK, line, 1000);
		send_at(&c, DIR_REPLY, PKT_TCP_ACK, "200 PORT command successful.\r\n", 1000);
	}
	/* The rewrites happened (the test measures the logs, not the policy). */
	assert_true(alg_counters(c.alg)->rewrites >= 50);
	assert_true(log_count("event=port") <= 20);
	alg_free(c.alg);
}

/*
 * A client that splits "P" from the rest and waits makes alg_tick log
 * "event=hold-timeout" for every such session, outside log_gate: a client
 * with many sessions (or many clients) logs once per session every 2 s
 * while the refusal logs of that second are already used up.
 */
static void hold_timeout_log_is_gated(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	capture_log();
	send_at(&c, DIR_ORIG, PKT_TCP_ACK, "P", 1000);
	assert_int_equal(c.v.n, 0); /* held */
	exhaust_gate(&c, 1002);
	alg_tick(c.alg, 1002, keep_v, &c);
	assert_int_equal(refusals_for(&c, "PORT-split-too-fine"), 1);
	assert_int_equal(log_count("event=hold-timeout"), 0);
	alg_free(c.alg);
}

/*
 * A LAN client hides a PORT behind the first 4096 bytes of a line: the
 * daemon reads no line over 4096 bytes and neutralizes only one whose start
 * may be a PORT. A server whose line buffer is 4096 bytes or less and that
 * takes the rest as a new command (vsftpd 2.x returns the full buffer as a
 * command and reads on; many embedded servers use 512 bytes) receives
 * "PORT 198,51,100,7,0,22" with its verb intact.
 */
static void port_behind_long_line(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	static char pad[4096];
	memcpy(pad, "NOOP ", 5);
	memset(pad + 5, 'a', sizeof(pad) - 5);
	send_big(&c, DIR_ORIG, pad, sizeof(pad), 1000);
	assert_true(all_accepted(&c));
	const char *tail = "PORT 198,51,100,7,0,22\r\n";
	send_big(&c, DIR_ORIG, tail, strlen(tail), 1000);
	/* Whatever goes on toward the server carries no PORT verb. */
	bool intact =
	    c.v.n == 1 && c.v.v[0].accept && (!c.v.v[0].data || (big_out_len >= 4 && memcmp(big_out, "PORT", 4) == 0));
	assert_false(intact);
	alg_free(c.alg);
}

/*
 * A stranger on the WAN sends SYNs (spoofed sources, or its own with its
 * RSTs filtered) and never completes the handshake. Each SYN makes a
 * session, and a session is only forgotten after IDLE_TIMEOUT (2 hours),
 * although its conntrack (SYN_SENT, 120 s) is long gone. MaxSessions
 * (16384, 64 addresses at MaxSessionsPerClient 256) SYNs lock every client
 * of the gateway out of FTP for two hours: their SYNs are dropped.
 */
static void syn_flood_sessions_outlive_conntrack(void **state)
{
	struct conn c;
	(void)state;
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	struct alg_config cfg;
	config_defaults(&cfg);
	cfg.max_sessions = 4;
	c.alg = alg_new(&cfg, &fake_kernel_ops, &c.k);
	const uint8_t spoofed[4] = {198, 51, 100, 66};
	for (int i = 0; i < 4; i++) {
		uint8_t p[64];
		size_t len = tcp4_build(p, spoofed, PUBLIC, (uint16_t)(50000 + i), 21, 777, PKT_TCP_SYN, NULL, 0);
		alg_packet(c.alg, DIR_ORIG, c.id++, p, len, 1000, keep_v, &c);
	}
	assert_int_equal(alg_counters(c.alg)->sessions, 4);
	/* Ten minutes later: the half-open conntracks expired long ago. */
	c.k.ct_get_err = -ENOENT;
	for (time_t t = 1060; t <= 1600; t += 60)
		alg_tick(c.alg, t, keep_v, &c);
	c.k.ct_get_err = 0;
	/* A real client connects. */
	c.seq[0] = 1000;
	send_at(&c, DIR_ORIG, PKT_TCP_SYN, NULL, 1600);
	assert_int_equal(refusals_for(&c, "max-sessions"), 0);
	assert_int_equal(alg_counters(c.alg)->sessions, 5);
	alg_free(c.alg);
}

/*
 * After a restart (or a crash: the queue bypasses while no daemon runs) an
 * established connection is adopted and read from its first line end, so
 * its first client line is never parsed. A client that sends a PORT to a
 * foreign host as the first line after the restart reaches the server with
 * the verb intact; control segments almost always start at a line start.
 */
static void adopted_first_line_port_passes(void **state)
{
	struct conn c;
	(void)state;
	struct alg_config cfg;
	config_defaults(&cfg);
	init_conn(&c, LAN_CLIENT, OUT_SERVER, OUT_SERVER, GW);
	c.k.ct.has_id = true;
	c.k.ct.id = 7;
	c.k.ct.seen_reply = true;
	c.k.predates = true;
	c.alg = alg_new(&cfg, &fake_kernel_ops, &c.k);
	c.seq[DIR_ORIG] = 1500;
	c.seq[DIR_REPLY] = 6000;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 198,51,100,7,0,22\r\n");
	bool intact = c.v.n == 1 && c.v.v[0].accept && (!c.v.v[0].data || strstr(out_payload(&c), "PORT 198"));
	assert_false(intact);
	alg_free(c.alg);
}

/*
 * Pairing slips on a line the server never answers. ProFTPD reads commands
 * into a 4103-byte buffer and drops a longer line without any reply; the
 * daemon counts it as a command awaiting one. A client then sends AUTH
 * (answered 504), and NOOP (answered 200): the 504 pairs with the long
 * line, the 200 with AUTH, and "any 2xx or 3xx reply to AUTH" makes the
 * connection opaque. From then on nothing is parsed: a plaintext PORT to a
 * foreign host reaches the server with its verb intact (a server with
 * AllowForeignAddress on connects to 198.51.100.7:22).
 */
static void pairing_slip_makes_plaintext_opaque(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	static char line[5000];
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'a', sizeof(line) - 7);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	send_big(&c, DIR_ORIG, line, 2500, 1000);
	send_big(&c, DIR_ORIG, line + 2500, 2500, 1000);
	/* ProFTPD: "too long", no reply. */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "AUTH XYZ\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "504 AUTH XYZ unsupported\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "NOOP\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 NOOP command successful\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 198,51,100,7,0,22\r\n");
	assert_string_equal(out_payload(&c), "XXXX 198,51,100,7,0,22\r\n");
	alg_free(c.alg);
}

/*
 * A resent segment that carries new bytes after the old ones gets its old
 * part replaced by what went out before (the neutralized PORT). If its new
 * part ends in a partial line that is held, the held copy is later released
 * as "unmodified": the kernel sends the packet as the client sent it, the
 * original PORT included. A hostile client sends the first copy so that the
 * server discards it (no ACK flag, an ACK beyond SND.NXT, or a stale
 * timestamp: the daemon checks none of these), then "retransmits" it with
 * one byte "P" more: the server reads "PORT 198,51,100,7,0,22" for the
 * first time, intact. (fuzz_stream finds the same in under 3 minutes.)
 */
static void resent_old_part_released_unmodified(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	uint32_t s0 = c.seq[DIR_ORIG];
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 198,51,100,7,0,22\r\n");
	assert_string_equal(out_payload(&c), "XXXX 198,51,100,7,0,22\r\n");
	/* The same bytes again, and one more: the partial line "P" is held. */
	c.seq[DIR_ORIG] = s0;
	uint32_t held_id = c.id;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 198,51,100,7,0,22\r\nP");
	bool intact = false;
	for (unsigned i = 0; i < c.v.n; i++)
		if (c.v.v[i].id == held_id && c.v.v[i].accept && !c.v.v[i].data)
			intact = true; /* the kernel's copy: as the client sent it */
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "WD\r\n");
	for (unsigned i = 0; i < c.v.n; i++)
		if (c.v.v[i].id == held_id && c.v.v[i].accept && !c.v.v[i].data)
			intact = true;
	assert_false(intact);
	alg_free(c.alg);
}

/*
 * The same without any help from the server: a segment that begins exactly
 * at a held one replaces it, and the held bytes win inside it. The client
 * holds " " (a space may start a hidden verb), then sends at the same
 * sequence number "PORT 198,51,100,7,0,22\r\nP": the daemon reads
 * " ORT 198,..." (no verb), holds the segment for its "P", and releases it
 * as unmodified, so the kernel sends "PORT 198,51,100,7,0,22" intact.
 */
static void held_replacement_released_unmodified(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	uint32_t s0 = c.seq[DIR_ORIG];
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, " ");
	assert_int_equal(c.v.n, 0); /* held */
	c.seq[DIR_ORIG] = s0;
	uint32_t held_id = c.id;
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 198,51,100,7,0,22\r\nP");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "WD\r\n");
	bool intact = false;
	for (unsigned i = 0; i < c.v.n; i++)
		if (c.v.v[i].id == held_id && c.v.v[i].accept && !c.v.v[i].data)
			intact = true;
	assert_false(intact);
	alg_free(c.alg);
}

/*
 * The same slip with a bare LF. ProFTPD 1.3.6 and later end a command line
 * only at CR LF (pr_netio_telnet_gets2: a LF not after CR is copied into the
 * command), so "NOOP\nNOOP\r\n" is one command with one reply, and two for
 * the daemon, whose contract says "a line ends at LF (after CR or not, as
 * servers accept both)". Then AUTH (504), NOOP (200): opaque, and the PORT
 * passes.
 */
static void bare_lf_slips_pairing(void **state)
{
	struct conn c;
	(void)state;
	setup_active(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "NOOP\nNOOP\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 NOOP command successful\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "AUTH XYZ\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "504 AUTH XYZ unsupported\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "NOOP\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, "200 NOOP command successful\r\n");
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 198,51,100,7,0,22\r\n");
	assert_string_equal(out_payload(&c), "XXXX 198,51,100,7,0,22\r\n");
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", LOG_LVL_ERR, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(forged_rst_kills_live_session, restore_log),
	    cmocka_unit_test_teardown(close_taken_by_conntrack_ends_session, restore_log),
	    cmocka_unit_test_teardown(rewrite_logs_are_gated, restore_log),
	    cmocka_unit_test_teardown(hold_timeout_log_is_gated, restore_log),
	    cmocka_unit_test_teardown(port_behind_long_line, restore_log),
	    cmocka_unit_test_teardown(syn_flood_sessions_outlive_conntrack, restore_log),
	    cmocka_unit_test_teardown(adopted_first_line_port_passes, restore_log),
	    cmocka_unit_test_teardown(pairing_slip_makes_plaintext_opaque, restore_log),
	    cmocka_unit_test_teardown(resent_old_part_released_unmodified, restore_log),
	    cmocka_unit_test_teardown(held_replacement_released_unmodified, restore_log),
	    cmocka_unit_test_teardown(bare_lf_slips_pairing, restore_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
