/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One direction of a control connection: retransmissions in every cut, what may leave again and what may not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alg/ftp.h"
#include "alg/stream.h"
#include "tests/common/stream_sim.h"

static void retransmit_modified_is_identical(void **state)
{
	(void)state;
	struct sim *m = calloc(1, sizeof(*m));
	sim_init(m, LONG_TO);
	size_t n = strlen(LONG_IN);
	sim_send(m, LONG_IN, 0, n);
	expect_rx(m, LONG_OUT);
	unsigned mod = m->modified;
	/* The same segment again: the same rewritten bytes, not a second rewrite. */
	sim_send(m, LONG_IN, 0, n);
	assert_int_equal(m->modified, mod + 1);
	assert_int_equal(m->f.rewrites, 1);
	expect_rx(m, LONG_OUT);
	/* A different cut over the rewritten line cannot be made identical: dropped. */
	unsigned drops = m->drops;
	sim_send(m, LONG_IN, 3, 20);
	assert_int_equal(m->drops, drops + 1);
	/* Old bytes that never held a rewrite pass as they are. */
	sim_send(m, LONG_IN, 0, 5);
	expect_rx(m, LONG_OUT);
	stream_free(&m->s);
	free(m);
}
static void retransmit_of_held_is_dropped(void **state)
{
	(void)state;
	struct sim *m = calloc(1, sizeof(*m));
	sim_init(m, LONG_TO);
	assert_true(sim_send(m, LONG_IN, 0, 20));
	unsigned drops = m->drops;
	assert_false(sim_send(m, LONG_IN, 0, 20));
	assert_int_equal(m->drops, drops + 1);
	sim_send(m, LONG_IN, 20, strlen(LONG_IN) - 20);
	expect_rx(m, LONG_OUT);
	stream_free(&m->s);
	free(m);
}
/* The sender coalesces a held segment with new data in one retransmission. */
static void coalesced_retransmission_supersedes(void **state)
{
	(void)state;
	struct sim *m = calloc(1, sizeof(*m));
	sim_init(m, SHORT_TO);
	assert_true(sim_send(m, SHORT_IN, 0, 30));
	assert_true(sim_send(m, SHORT_IN, 30, 10));
	sim_send(m, SHORT_IN, 0, strlen(SHORT_IN));
	expect_rx(m, SHORT_OUT);
	assert_int_equal(m->drops, 2);
	stream_free(&m->s);
	free(m);
}
static void future_segment_dropped(void **state)
{
	(void)state;
	struct sim *m = calloc(1, sizeof(*m));
	sim_init(m, LONG_TO);
	sim_send(m, LONG_IN, 10, 10);
	assert_int_equal(m->drops, 1);
	sim_send(m, LONG_IN, 0, strlen(LONG_IN));
	expect_rx(m, LONG_OUT);
	stream_free(&m->s);
	free(m);
}
/*
 * A segment that overlaps bytes already seen, with different content there:
 * the first copy wins, and line starts come from it, so the forged "227"
 * prefix is neither delivered nor parsed.
 */
static void overlap_first_copy_wins(void **state)
{
	(void)state;
	static const char *const FORGED = "227 E\r\n227 Entering Passive Mode (192,0,2,10,195,80).\r\n200 ok\r\n";
	struct sim *m = calloc(1, sizeof(*m));
	sim_init(m, LONG_TO);
	sim_send(m, LONG_IN, 0, 7);
	assert_int_equal(strlen(FORGED), strlen(LONG_IN));
	/* Old bytes with new ones: the old part goes on as first sent, TCP resends the rest alone. */
	sim_send(m, FORGED, 0, strlen(FORGED));
	assert_int_equal(m->rx.end, 7);
	sim_send(m, FORGED, 7, strlen(FORGED) - 7);
	expect_rx(m, LONG_OUT);
	assert_int_equal(m->f.rewrites, 1);
	/* A whole retransmission with other bytes is never parsed again. */
	int lines = m->f.lines;
	static const char *const OTHER = "150 x\r\n227 Entering Passive Mode (192,0,2,10,195,99).\r\n200 ok\r\n";
	sim_send(m, OTHER, 0, strlen(OTHER));
	assert_int_equal(m->f.lines, lines);
	assert_int_equal(m->f.rewrites, 1);
	stream_free(&m->s);
	free(m);
}
/*
 * Fails on main: after STREAM_EMIT_RING later rewrites the record of a
 * neutralized line is gone, and its retransmission went out as first seen,
 * with "PORT".
 */
static void retransmission_after_records_lost(void **state)
{
	(void)state;
	struct sim *m = client_sim();
	static char in[(STREAM_EMIT_RING + 2) * 8 + 1];
	for (unsigned i = 0; i < STREAM_EMIT_RING + 2; i++)
		memcpy(in + i * 8, "PORT 1\r\n", 8);
	for (unsigned i = 0; i < STREAM_EMIT_RING + 2; i++)
		sim_send(m, in, i * 8, 8);
	unsigned drops = m->drops;
	/* Every cut of the oldest: dropped (or rewritten), never "PORT". */
	sim_send(m, in, 0, 8);
	sim_send(m, in, 0, 4);
	sim_send(m, in, 2, 10);
	assert_int_equal(m->drops, drops + 3);
	assert_int_equal(m->rx.conflicts, 0);
	/* The newest are still recorded: rewritten again, in any cut. */
	size_t last = (STREAM_EMIT_RING + 1) * 8;
	sim_send(m, in, last, 8);
	sim_send(m, in, last + 1, 3);
	sim_send(m, in, last - 8, 16);
	assert_int_equal(m->drops, drops + 3);
	assert_int_equal(m->rx.conflicts, 0);
	stream_free(&m->s);
	free(m);
}
/* Fails on main: bytes from before the ring passed as the retransmission carried them. */
static void retransmission_before_ring_dropped(void **state)
{
	(void)state;
	struct sim *m = client_sim();
	static char in[8 + STREAM_SEEN + 600];
	memcpy(in, "NOOP 1\r\n", 8);
	for (size_t i = 8; i < sizeof(in); i += 6)
		memcpy(in + i, "NOOP\r\n", sizeof(in) - i < 6 ? sizeof(in) - i : 6);
	for (size_t off = 0; off < sizeof(in); off += 8)
		sim_send(m, in, off, sizeof(in) - off < 8 ? sizeof(in) - off : 8);
	static const char forged[] = "PORT 1\r\n";
	unsigned drops = m->drops;
	sim_send(m, forged, 0, 8);
	assert_int_equal(m->drops, drops + 1);
	assert_int_equal(m->rx.conflicts, 0);
	stream_free(&m->s);
	free(m);
}
/*
 * The ring grows from STREAM_SEEN_MIN as the stream does: a client's old
 * bytes resent after each growth are still proven (they pass as they are),
 * and a forgery of them is still dropped.
 */
static void ring_growth_keeps_proof(void **state)
{
	(void)state;
	struct sim *m = client_sim();
	enum { N = STREAM_SEEN + 64 };
	static char in[N + 1], forged[N + 1];
	for (size_t i = 0; i < N; i += 8)
		snprintf(in + i, 9, "NOOP %02zu\r", (i / 8) % 100);
	for (size_t i = 7; i < N; i += 8)
		in[i] = '\n';
	size_t sent = 0;
	/* Up to each size the ring takes (256, 512, 1024, 2048 and past it), then the oldest bytes again. */
	static const size_t upto[] = {200, 400, 800, 1600, N};
	for (size_t k = 0; k < sizeof(upto) / sizeof(upto[0]); k++) {
		for (; sent < upto[k]; sent += 8)
			sim_send(m, in, sent, 8);
		unsigned drops = m->drops;
		size_t oldest = sent > STREAM_SEEN ? sent - STREAM_SEEN + 8 : 0;
		sim_send(m, in, oldest, 8);
		assert_int_equal(m->drops, drops);
		assert_int_equal(m->rx.conflicts, 0);
		/* The same bytes forged: the receiver still gets only the first version. */
		memcpy(forged, in, N);
		memcpy(forged + oldest, "PORT", 4);
		sim_send(m, forged, oldest, 8);
		assert_int_equal(m->rx.conflicts, 0);
	}
	assert_int_equal(m->s.seen_cap, STREAM_SEEN);
	stream_free(&m->s);
	free(m);
}

/* The server's bytes from before the ring go on as sent: a lost segment of a long reply must not stall. */
static void server_retransmission_before_ring_passes(void **state)
{
	(void)state;
	struct sim *m = calloc(1, sizeof(*m));
	sim_init(m, LONG_TO);
	static char in[5028];
	const size_t n = sizeof(in) - 1;
	memset(in, 'x', n);
	memcpy(in, "227 ", 4);
	memcpy(in + n - 2, "\r\n", 2);
	for (size_t off = 0; off < n; off += 1384)
		sim_send_to(m, in, off, n - off < 1384 ? n - off : 1384, off == 1384);
	unsigned drops = m->drops;
	sim_send(m, in, 1384, 1384);
	assert_int_equal(m->drops, drops);
	expect_rx(m, in);
	stream_free(&m->s);
	free(m);
}
/*
 * Fails on main (dropped every time): a rewritten segment that changed
 * length is lost after the stream, and the sender retransmits it merged with
 * the next one, split, or merged with new data.
 */
static void lost_rewrite_retransmitted_in_any_cut(void **state)
{
	(void)state;
	static const char *const MORE = "227 Entering Passive Mode (192,0,2,10,195,81).\r\n";
	static const char *const MORE_OUT = "227 Entering Passive Mode (203,0,113,1,195,81).\r\n";
	char in[256], out[256];
	snprintf(in, sizeof(in), "%s%s", LONG_IN, MORE);
	snprintf(out, sizeof(out), "%s%s", LONG_OUT, MORE_OUT);
	size_t n = strlen(LONG_IN), rw_end = (size_t)(strstr(LONG_IN, "200 ok") - LONG_IN);
	assert_memory_equal(LONG_IN + rw_end, "200 ok\r\n", 8);
	for (int how = 0; how < 4; how++) {
		struct sim *m = calloc(1, sizeof(*m));
		sim_init(m, LONG_TO);
		sim_send(m, in, 0, 7);
		sim_send_to(m, in, 7, rw_end - 7, true); /* the rewritten line, lost */
		sim_send(m, in, rw_end, n - rw_end);
		unsigned drops = m->drops;
		switch (how) {
		case 0: /* merged with the next */
			sim_send(m, in, 7, n - 7);
			break;
		case 1: /* split: the receiver still gets the whole rewritten line */
			sim_send(m, in, 7, 10);
			/* A cut in the unchanged tail of the rewritten line maps byte for byte. */
			sim_send(m, in, rw_end - 4, n - rw_end + 4);
			break;
		case 2: /* overlapping the one before, and merged */
			sim_send(m, in, 3, n - 3);
			break;
		case 3: /* merged with new data: the old part goes on, the sender sends the rest again */
			sim_send(m, in, 7, n - 7 + 30);
			break;
		}
		assert_int_equal(m->drops, drops);
		sim_send(m, in, n, strlen(in) - n);
		expect_rx(m, out);
		assert_int_equal(m->f.rewrites, 2);
		stream_free(&m->s);
		free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(retransmit_modified_is_identical),
	    cmocka_unit_test(retransmit_of_held_is_dropped),
	    cmocka_unit_test(coalesced_retransmission_supersedes),
	    cmocka_unit_test(future_segment_dropped),
	    cmocka_unit_test(overlap_first_copy_wins),
	    cmocka_unit_test(retransmission_after_records_lost),
	    cmocka_unit_test(retransmission_before_ring_dropped),
	    cmocka_unit_test(ring_growth_keeps_proof),
	    cmocka_unit_test(server_retransmission_before_ring_passes),
	    cmocka_unit_test(lost_rewrite_retransmitted_in_any_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
