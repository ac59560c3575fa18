/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The session layer feeding its streams: SYNs mid-stream, and the limits on held segments. */
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
#include "tests/common/tcp4.h"

/*
 * Fails on main: a SYN with seq = next - 1 reset the line parser while a
 * PORT was held, and the rest of the line was released with it unread.
 */
static void mid_stream_syn_keeps_line_state(void **state)
{
	struct conn c;
	(void)state;
	open_conn(&c);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "PORT 198,5");
	assert_int_equal(c.v.n, 0);
	c.seq[DIR_ORIG]--;
	send_pkt(&c, DIR_ORIG, PKT_TCP_SYN, NULL);
	send_pkt(&c, DIR_ORIG, PKT_TCP_ACK, "1,100,7,4,1\r\n");
	assert_int_equal(c.v.n, 2);
	assert_true(c.v.v[0].accept && c.v.v[1].accept);
	assert_string_equal(out_payload(&c), "XXXX 198,5");
	alg_free(c.alg);
}

/* Many sessions, each its own client port, driven directly. */
struct flood {
	struct alg *alg;
	struct fake_kernel k;
	uint32_t id;
	unsigned sent, verdicts, dropped, neutralized;
	unsigned most_held; /* packets without a verdict, at most */
	uint8_t last[2048];
	size_t last_len;
};

static void count(void *ctx, const struct alg_verdicts *v)
{
	struct flood *f = ctx;
	for (unsigned i = 0; i < v->n; i++) {
		f->verdicts++;
		if (!v->v[i].accept)
			f->dropped++;
		if (v->v[i].data) {
			struct pkt_info pi;
			assert_int_equal(pkt_parse(v->v[i].data, v->v[i].len, &pi), 0);
			if (pi.payload_len && v->v[i].data[pi.payload_off] == 'X')
				f->neutralized++;
			memcpy(f->last, v->v[i].data, v->v[i].len);
			f->last_len = v->v[i].len;
		}
	}
}

static void flood_send(struct flood *f, const uint8_t *client, uint16_t sport, uint32_t seq, uint8_t flags,
		       const char *payload, size_t len)
{
	uint8_t p[2048];
	size_t n = tcp4_build(p, client, PUBLIC, sport, 21, seq, flags, payload, len);
	f->sent++;
	alg_packet(f->alg, DIR_ORIG, f->id++, p, n, 1000, count, f);
	if (f->sent - f->verdicts > f->most_held)
		f->most_held = f->sent - f->verdicts;
}

static const uint8_t OTHER[4] = {203, 0, 113, 20}, THIRD[4] = {203, 0, 113, 30};

/* One client in 32 sessions sends PORT lines a byte at a time, never finishing them. */
static void hostile(struct flood *f, const uint8_t *client, unsigned sessions, unsigned per_session)
{
	static char line[STREAM_HOLD_MAX + 1];
	memset(line, '1', sizeof(line));
	memcpy(line, "PORT ", 5);
	for (unsigned s = 0; s < sessions; s++)
		flood_send(f, client, (uint16_t)(41000 + s), 100, PKT_TCP_SYN, NULL, 0);
	for (unsigned i = 0; i < per_session; i++)
		for (unsigned s = 0; s < sessions; s++)
			flood_send(f, client, (uint16_t)(41000 + s), 101 + i, PKT_TCP_ACK, line + i, 1);
}

static void flood_reply(struct flood *f, const uint8_t *client, uint16_t dport, uint32_t seq, uint8_t flags,
			const char *payload)
{
	uint8_t p[2048];
	size_t n = tcp4_build(p, SERVER, client, 21, dport, seq, flags, payload, payload ? strlen(payload) : 0);
	f->sent++;
	alg_packet(f->alg, DIR_REPLY, f->id++, p, n, 1000, count, f);
}

/*
 * The other client's PORT, in three segments, in a session that opened like
 * FTP (its conntrack known, the greeting and a login first): held whole and
 * let through intact.
 */
static void other_port(struct flood *f, const uint8_t *client)
{
	static const char port[] = "PORT 203,0,113,20,195,80\r\n";
	struct ct_info *ct = &f->k.ct;
	memset(ct, 0, sizeof(*ct));
	ct->orig = (struct flow){.family = AF_INET, .sport = 42000, .dport = 21};
	memcpy(ct->orig.saddr, client, 4);
	memcpy(ct->orig.daddr, PUBLIC, 4);
	ct->reply = (struct flow){.family = AF_INET, .sport = 21, .dport = 42000};
	memcpy(ct->reply.saddr, SERVER, 4);
	memcpy(ct->reply.daddr, client, 4);
	flood_send(f, client, 42000, 484, PKT_TCP_SYN, NULL, 0);
	flood_reply(f, client, 42000, 900, PKT_TCP_SYN | PKT_TCP_ACK, NULL);
	flood_reply(f, client, 42000, 901, PKT_TCP_ACK, "220 hi\r\n");
	flood_send(f, client, 42000, 485, PKT_TCP_ACK, "USER anonymous\r\n", 16);
	flood_reply(f, client, 42000, 909, PKT_TCP_ACK, "230 ok\r\n");
	unsigned before = f->verdicts, dropped = f->dropped, neutralized = f->neutralized;
	flood_send(f, client, 42000, 501, PKT_TCP_ACK, port, 3);
	flood_send(f, client, 42000, 504, PKT_TCP_ACK, port + 3, 7);
	assert_int_equal(f->verdicts, before);
	flood_send(f, client, 42000, 511, PKT_TCP_ACK, port + 10, sizeof(port) - 1 - 10);
	assert_int_equal(f->verdicts, before + 3);
	assert_int_equal(f->dropped, dropped);
	assert_int_equal(f->neutralized, neutralized);
}

/*
 * Fails on main: 32 sessions of one client holding 128 one-byte segments
 * each kept 4,096 packets without a verdict, the kernel queue's length.
 * Now one client holds at most HoldMaxPerClient, all at most HoldMax; at
 * the limit only the offending line leaves (its verb neutralized), and no
 * other client's packet is dropped or held up.
 */
static void held_segments_capped_per_client_and_in_all(void **state)
{
	(void)state;
	struct alg_config cfg;
	config_defaults(&cfg);
	assert_int_equal(cfg.hold_max, 1024);
	assert_int_equal(cfg.hold_max_per_client, 64);
	struct flood *f = calloc(1, sizeof(*f));
	f->alg = alg_new(&cfg, &fake_kernel_ops, &f->k);
	hostile(f, CLIENT, 32, STREAM_HOLD_MAX);
	assert_int_equal(f->most_held, 64);
	assert_int_equal(f->dropped, 0);
	assert_true(f->neutralized > 0);
	other_port(f, OTHER);
	alg_free(f->alg);
	free(f);

	/* The global limit: two hostile clients fill it; a third still gets every verdict. */
	cfg.hold_max = 100;
	f = calloc(1, sizeof(*f));
	f->alg = alg_new(&cfg, &fake_kernel_ops, &f->k);
	hostile(f, CLIENT, 32, 8);
	hostile(f, THIRD, 32, 8);
	assert_true(f->most_held <= 100);
	assert_int_equal(f->dropped, 0);
	flood_send(f, OTHER, 42000, 500, PKT_TCP_SYN, NULL, 0);
	for (unsigned i = 0; i < 10; i++)
		flood_send(f, OTHER, 42000, 501 + i, PKT_TCP_ACK, "PORT 203,0" + i, 1);
	assert_true(f->most_held <= 100);
	assert_int_equal(f->dropped, 0);
	alg_shutdown(f->alg, count, f);
	assert_int_equal(f->verdicts, f->sent);
	alg_free(f->alg);
	free(f);
}

int main(void)
{
	log_open("test", 0, 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(mid_stream_syn_keeps_line_state),
	    cmocka_unit_test(held_segments_capped_per_client_and_in_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
