/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "stream_sim.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "alg/ftp.h"

/* What the session layer would do: rewrite a 227 to to_addr, keeping the port. */

static bool fake_may(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	size_t n = len < 4 ? len : 4;
	return memcmp(line, "227 ", n) == 0 || memcmp(line, "PORT", n) == 0;
}

static int fake_line(void *ctx, const char *line, size_t len, size_t max_shrink, char *out, size_t cap,
		     bool may_rewrite)
{
	struct fake *f = ctx;
	struct ftp_endpoint ep;
	struct ftp_span span;
	if (!may_rewrite)
		return -1;
	f->lines++;
	if (f->port_x && len >= 4 && memcmp(line, "PORT", 4) == 0 && len <= cap) {
		memcpy(out, line, len);
		memcpy(out, "XXXX", 4);
		f->rewrites++;
		return (int)len;
	}
	if (ftp_parse_227(line, len, &ep, &span) < 0)
		return -1;
	memcpy(ep.addr, f->to_addr, 4);
	char rep[64];
	int n = ftp_format_hostport(&ep, span.len > max_shrink ? span.len - max_shrink : 0, rep, sizeof(rep));
	if (n < 0)
		return -1;
	n = ftp_splice(line, len, span, rep, (size_t)n, out, cap);
	if (n < 0 || (size_t)n + f->extra > cap)
		return -1;
	memmove(out + n - 2 + f->extra, out + n - 2, 2);
	memset(out + n - 2, '+', f->extra);
	f->rewrites++;
	return n + (int)f->extra;
}

const struct stream_ops sim_ops = {.may_rewrite = fake_may, .line = fake_line};

static int32_t seqoff(const struct stream_result *r, uint32_t seq)
{
	return (int32_t)(seq - r->corr_pos) > 0 ? r->off_after : r->off_before;
}

void deliver(struct sim *m, const struct stream_result *r, uint32_t cur_id)
{
	for (unsigned i = 0; i < r->nout; i++) {
		const struct stream_out *o = &r->out[i];
		if (o->verdict == STREAM_DROP) {
			m->drops++;
			continue;
		}
		const struct pktrec *p = &m->pk[o->id];
		const uint8_t *data = o->modified ? o->payload : p->pkt + HDR;
		size_t len = o->modified ? o->len : p->len - HDR;
		if (o->modified)
			m->modified++;
		if (o->held)
			assert_int_equal(o->held->seq, p->seq);
		uint32_t at = p->seq + (uint32_t)seqoff(r, p->seq) - (ISN + 1);
		for (size_t k = 0; k < len; k++) {
			size_t pos = at + k;
			assert_true(pos < sizeof(m->rx.buf));
			if (m->rx.has[pos] && m->rx.buf[pos] != data[k])
				m->rx.conflicts++;
			m->rx.buf[pos] = data[k];
			m->rx.has[pos] = true;
			if (pos + 1 > m->rx.end)
				m->rx.end = pos + 1;
		}
	}
	(void)cur_id;
}

void sim_init(struct sim *m, const uint8_t to[4])
{
	memset(m, 0, sizeof(*m));
	stream_init(&m->s);
	stream_syn(&m->s, ISN);
	memcpy(m->f.to_addr, to, 4);
}

bool sim_send(struct sim *m, const char *text, size_t off, size_t len)
{
	return sim_send_to(m, text, off, len, false);
}

bool sim_send_to(struct sim *m, const char *text, size_t off, size_t len, bool lost)
{
	uint32_t id = m->next_id++;
	struct pktrec *p = &m->pk[id];
	assert_true(len + HDR <= sizeof(p->pkt));
	memcpy(p->pkt, "HDR!", HDR);
	memcpy(p->pkt + HDR, text + off, len);
	p->len = len + HDR;
	p->seq = ISN + 1 + (uint32_t)off;
	struct stream_result r;
	assert_int_equal(stream_segment(&m->s, &sim_ops, &m->f, id, p->seq, p->pkt, p->len, HDR, len, &r), 0);
	if (!lost)
		deliver(m, &r, id);
	bool held = r.hold_current;
	stream_result_done(&m->s, &r);
	return held;
}

void expect_rx(struct sim *m, const char *want)
{
	size_t n = strlen(want);
	assert_int_equal(m->rx.conflicts, 0);
	if (m->rx.end != n || memcmp(m->rx.buf, want, n) != 0)
		fail_msg("receiver got %zu bytes:\n%.*s\nwant %zu:\n%s", m->rx.end, (int)m->rx.end, m->rx.buf, n, want);
	for (size_t i = 0; i < n; i++)
		assert_true(m->rx.has[i]);
}

const char *const LONG_IN = "150 x\r\n227 Entering Passive Mode (192,0,2,10,195,80).\r\n200 ok\r\n";
const char *const LONG_OUT = "150 x\r\n227 Entering Passive Mode (203,0,113,1,195,80).\r\n200 ok\r\n";
const uint8_t LONG_TO[4] = {203, 0, 113, 1};
const char *const SHORT_IN = "150 x\r\n227 Entering Passive Mode (198,51,100,100,195,80).\r\n200 ok\r\n";
const char *const SHORT_OUT = "150 x\r\n227 Entering Passive Mode (203,0,113,4,195,80).\r\n200 ok\r\n";
const uint8_t SHORT_TO[4] = {203, 0, 113, 4};

void run_cuts(const char *in, const char *out, const uint8_t to[4], const size_t *cuts, size_t ncuts)
{
	struct sim *m = calloc(1, sizeof(*m));
	sim_init(m, to);
	size_t prev = 0, n = strlen(in);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		if (end > prev)
			sim_send(m, in, prev, end - prev);
		prev = end;
	}
	expect_rx(m, out);
	assert_int_equal(m->f.rewrites, 1);
	int32_t delta = (int32_t)strlen(out) - (int32_t)n;
	assert_int_equal(m->s.off_after, delta);
	stream_free(&m->s);
	free(m);
}

struct sim *client_sim(void)
{
	struct sim *m = calloc(1, sizeof(*m));
	sim_init(m, LONG_TO);
	m->s.neutralize = true;
	m->f.port_x = true;
	return m;
}
