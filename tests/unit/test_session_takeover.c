/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A gateway pair: sessions adopted after a failover read the first segment
 * each way from its start, and "ftp-alg takeover" (alg_takeover) restarts
 * the streams of sessions another gateway carried meanwhile, keeping what
 * was learnt of them, and forgets those whose conntrack is gone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "alg/log.h"
#include "alg/session.h"
#include "tests/common/session_harness.h"

static const char PASV_227[] = "227 Entering Passive Mode (192,0,2,10,195,80).\r\n";
static const char PUB_227[] = "227 Entering Passive Mod (203,0,113,1,195,80).\r\n";
/* With KeepReplyLength = no: the line grows, so the carried offsets must be built on. */
static const char PUB_227_GROWN[] = "227 Entering Passive Mode (203,0,113,1,195,80).\r\n";

static void ignore(void *ctx, const struct alg_verdicts *v)
{
	(void)ctx;
	(void)v;
}

/* The peer gateway carried the connection: len bytes each way went past, its rewrites added offset. */
static void peer_carried(struct conn *c, uint32_t client_bytes, uint32_t server_bytes, int32_t offset)
{
	c->seq[DIR_ORIG] += client_bytes;
	c->seq[DIR_REPLY] += server_bytes;
	c->k.ct.seqadj_present[DIR_REPLY] = true;
	c->k.ct.corr_pos[DIR_REPLY] = c->seq[DIR_REPLY] - 100;
	c->k.ct.off_before[DIR_REPLY] = offset - 1;
	c->k.ct.off_after[DIR_REPLY] = offset;
}

/* Adopted after a failover, a PASV sent first is read and its 227 rewritten (main skipped both lines). */
static void adopted_pasv_first(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	cfg.keep_reply_length = false;
	adopt_conn(&c, &cfg);
	c.k.ct.has_id = true;
	c.k.ct.id = 7;
	peer_carried(&c, 0, 0, 2);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	assert_true(c.v.v[0].accept);
	uint32_t pos = c.seq[DIR_REPLY];
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, PASV_227);
	assert_string_equal(out_payload(&c), PUB_227_GROWN);
	assert_int_equal(c.k.nadded, 1);
	assert_memory_equal(c.k.added[0].client, CLIENT, 4);
	assert_int_equal(c.k.last_pos, pos);
	assert_int_equal(c.k.last_before, 2);
	assert_int_equal(c.k.last_after, 3);
	alg_free(c.alg);
}

/* Adopted: a client segment that begins with PORT naming another host is neutralized. */
static void adopted_port_checked(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	adopt_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,99,195,80\r\n");
	assert_int_equal(refusals_for(&c, "PORT-names-other-host"), 1);
	assert_int_equal(strncmp(out_payload(&c), "PORT", 4) != 0, 1);
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
}

/* A 227 with no PASV seen since adoption opens nothing. */
static void adopted_unpaired_227(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	adopt_conn(&c, &cfg);
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, PASV_227);
	assert_true(c.v.v[0].accept);
	assert_string_equal(out_payload(&c), "");
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
}

/*
 * Fail-back: this daemon followed the session, the peer carried it on (the
 * sequence numbers and offsets moved), then takeover. Without it every
 * later segment is beyond the next expected byte and dropped.
 */
static void failback_after_takeover(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	cfg.keep_reply_length = false;
	setup_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, PASV_227);
	assert_string_equal(out_payload(&c), PUB_227_GROWN);
	peer_carried(&c, 300, 900, 5);
	assert_int_equal(alg_takeover(c.alg, 1, ignore, NULL), 1);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	assert_true(c.v.v[0].accept);
	uint32_t pos = c.seq[DIR_REPLY];
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, PASV_227);
	assert_true(c.v.v[0].accept);
	/* The first pinhole is still armed with its key: the next free public port. */
	assert_string_equal(out_payload(&c), "227 Entering Passive Mode (203,0,113,1,195,81).\r\n");
	assert_int_equal(c.k.nadded, 2);
	assert_int_equal(c.k.last_pos, pos);
	assert_int_equal(c.k.last_before, 5);
	assert_int_equal(c.k.last_after, 6);
	alg_free(c.alg);
}

/* What was learnt stays: a connection found not to be FTP stays so after a takeover. */
static void takeover_keeps_not_ftp(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	init_conn(&c, CLIENT, PUBLIC, SERVER, CLIENT);
	greet_on(&c, alg_new(&cfg, &fake_kernel_ops, &c.k));
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "GET / HTTP/1.1\r\n");
	assert_int_equal(refusals_for(&c, "http-on-control-port"), 1);
	assert_int_equal(alg_takeover(c.alg, 1, ignore, NULL), 1);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 192,0,2,1,195,80\r\n");
	assert_int_equal(refusals_for(&c, "PORT-on-non-FTP-connection"), 1);
	assert_int_equal(c.k.nadded, 0);
	alg_free(c.alg);
}

/* A session whose conntrack is gone is forgotten, its pinholes removed. */
static void takeover_forgets_gone(void **state)
{
	(void)state;
	struct conn c;
	open_conn(&c);
	epsv(&c, 50000);
	assert_int_equal(c.k.nadded, 1);
	c.k.ct_get_err = -ENOENT;
	assert_int_equal(alg_takeover(c.alg, 1001, ignore, NULL), 0);
	tick(&c, 1002);
	assert_int_equal(c.k.ndeleted, 1);
	alg_free(c.alg);
}

/* The pinhole record's layout (kernel.h): round trip, the admin's bits untouched, nonsense refused. */
static void label_record_layout(void **state)
{
	(void)state;
	struct ct_hole_rec r = {.active = true, .port = 0xc350, .target_port = 0x1234, .expires = 0x89abcdef},
			   back = {0};
	uint8_t labels[16], mask[16];
	ct_rec_encode(&r, labels, mask);
	static const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0x03, 0xc3, 0x50, 0x12, 0x34, 0x89, 0xab, 0xcd, 0xef};
	assert_memory_equal(labels, want, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(mask[i], i < 7 ? 0 : 0xff);
	assert_true(ct_rec_decode(labels, &back));
	assert_true(back.active);
	assert_int_equal(back.port, 0xc350);
	assert_int_equal(back.target_port, 0x1234);
	assert_int_equal(back.expires, 0x89abcdef);
	r.active = false;
	ct_rec_encode(&r, labels, mask);
	assert_true(ct_rec_decode(labels, &back));
	assert_false(back.active);
	/* No record, unknown flags, or a zero port: nothing to re-arm. */
	uint8_t none[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};
	assert_false(ct_rec_decode(none, &back));
	labels[7] |= 0x04;
	assert_false(ct_rec_decode(labels, &back));
	labels[7] = 0x01;
	labels[8] = labels[9] = 0;
	assert_false(ct_rec_decode(labels, &back));
}

/* Arming a pinhole records it in the control conntrack's labels, leaving the admin's bits as they were. */
static void armed_pinhole_recorded(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	/* A single gateway records nothing: no ctnetlink request for a peer it does not have. */
	setup_conn(&c, &cfg);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, PASV_227);
	assert_int_equal(c.k.nadded, 1);
	assert_int_equal(c.k.labels_calls, 0);
	alg_free(c.alg);

	cfg.high_availability = true;
	setup_conn(&c, &cfg);
	c.k.ct.labels[0] = 0x5a; /* an administrator's label */
	time_t before = time(NULL);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PASV\r\n");
	send_pkt(&c, DIR_REPLY, PKT_TCP_ACK, PASV_227);
	assert_string_equal(out_payload(&c), PUB_227);
	assert_int_equal(c.k.labels_calls, 1);
	assert_int_equal(c.k.ct.labels[0], 0x5a);
	struct ct_hole_rec rec = {0};
	assert_true(ct_rec_decode(c.k.ct.labels, &rec));
	assert_false(rec.active);
	assert_int_equal(rec.port, 50000);
	assert_int_equal(rec.target_port, 50000);
	assert_true((time_t)rec.expires >= before + 60 && (time_t)rec.expires <= time(NULL) + 60);
	/* A failure to record costs only the failover: the pinhole is armed all the same. */
	c.k.labels_err = -ENOSPC;
	epsv(&c, 50001);
	assert_int_equal(c.k.nadded, 2);
	alg_free(c.alg);
}

/* Once the newest pinhole is used, the record names the newest one still armed: a takeover opens no used one. */
static void used_pinhole_unrecorded(void **state)
{
	(void)state;
	struct conn c;
	struct alg_config cfg;
	config_defaults(&cfg);
	cfg.max_pinholes_per_session = 4;
	cfg.high_availability = true;
	setup_conn(&c, &cfg);
	epsv(&c, 50000);
	epsv(&c, 50001);
	epsv(&c, 50002);
	assert_int_equal(c.k.nadded, 3);
	struct ct_hole_rec rec = {0};
	assert_true(ct_rec_decode(c.k.ct.labels, &rec));
	assert_int_equal(rec.port, 50002);
	c.k.consumed[2] = true;
	alg_tick(c.alg, 1001, ignore, NULL);
	assert_true(ct_rec_decode(c.k.ct.labels, &rec));
	assert_int_equal(rec.port, 50001);
	/* An older one used: the record stays. */
	c.k.consumed[0] = true;
	alg_tick(c.alg, 1002, ignore, NULL);
	assert_true(ct_rec_decode(c.k.ct.labels, &rec));
	assert_int_equal(rec.port, 50001);
	assert_int_equal(c.k.labels_calls, 4);
	/* The last one used: the kernel's set is empty, and that too counts as used (main skipped the check). */
	c.k.consumed[1] = true;
	alg_tick(c.alg, 1003, ignore, NULL);
	assert_false(ct_rec_decode(c.k.ct.labels, &rec));
	assert_int_equal(alg_counters(c.alg)->pinholes_used, 3);
	alg_free(c.alg);
}

int main(void)
{
	log_open("test", LOG_LVL_ERR, false);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(adopted_pasv_first),      cmocka_unit_test(adopted_port_checked),
	    cmocka_unit_test(adopted_unpaired_227),    cmocka_unit_test(failback_after_takeover),
	    cmocka_unit_test(takeover_keeps_not_ftp),  cmocka_unit_test(takeover_forgets_gone),
	    cmocka_unit_test(label_record_layout),     cmocka_unit_test(armed_pinhole_recorded),
	    cmocka_unit_test(used_pinhole_unrecorded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
