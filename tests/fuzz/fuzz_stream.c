/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Segments cut from the input (first byte of each chunk: length and flags),
 * sometimes retransmitted or reordered, go through the stream tracker with
 * a session-like rewriter. The receiver view, built with seqadj's mapping,
 * must never see two different bytes at one position. Inputs of odd length
 * play the client side: a PORT line is neutralized by the rewriter or, if it
 * leaves unparsed, by the stream; the receiver must never see "PORT" begin a
 * line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alg/ftp.h"
#include "alg/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool client_side;

static bool may(void *ctx, const char *line, size_t len)
{
	(void)ctx;
	return len == 0 || line[0] == '2' || (client_side && line[0] == 'P');
}

static int rewrite(void *ctx, const char *line, size_t len, size_t max_shrink, char *out, size_t cap, bool may_rewrite)
{
	(void)ctx;
	if (!may_rewrite)
		return -1;
	if (client_side && len >= 4 && memcmp(line, "PORT", 4) == 0 && len <= cap) {
		memcpy(out, line, len);
		memcpy(out, "XXXX", 4);
		return (int)len;
	}
	struct ftp_endpoint ep;
	struct ftp_span span;
	if (ftp_parse_227(line, len, &ep, &span) < 0)
		return -1;
	ep.addr[0] ^= 0x5a;
	char rep[64];
	int n = ftp_format_hostport(&ep, span.len > max_shrink ? span.len - max_shrink : 0, rep, sizeof(rep));
	return n < 0 ? -1 : ftp_splice(line, len, span, rep, (size_t)n, out, cap);
}

static const struct stream_ops ops = {may, rewrite};

#define RX 65536
static uint8_t rx[RX];
static bool has[RX];
static uint8_t sent[RX]; /* what the (honest) sender has sent so far */
static uint32_t seg_seq[4096];
static uint8_t seg_pkt[4096][300];
static size_t seg_len[4096];

static const uint32_t isn = 0xfffff000u;

/* What the receiver gets: each byte at the position seqadj's mapping gives it. */
static void deliver(const struct stream_result *r)
{
	for (unsigned i = 0; i < r->nout; i++) {
		const struct stream_out *o = &r->out[i];
		if (o->verdict == STREAM_DROP)
			continue;
		const uint8_t *p = o->modified ? o->payload : seg_pkt[o->id] + 4;
		size_t l = o->modified ? o->len : seg_len[o->id];
		uint32_t sq = seg_seq[o->id];
		int32_t d = (int32_t)(sq - r->corr_pos) > 0 ? r->off_after : r->off_before;
		uint32_t at = sq + (uint32_t)d - (isn + 1);
		for (size_t k = 0; k < l; k++) {
			if (at + k >= RX)
				abort();
			if (has[at + k] && rx[at + k] != p[k])
				abort(); /* the receiver would see inconsistent data */
			rx[at + k] = p[k];
			has[at + k] = true;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream s;
	stream_init(&s);
	stream_syn(&s, isn);
	client_side = size % 2 == 1;
	s.neutralize = client_side;
	memset(has, 0, sizeof(has));
	size_t pos = 0;
	uint32_t next = 0, id = 0; /* next: first byte the sender has not sent yet */
	while (pos < size && id < 4096) {
		uint8_t ctl = data[pos++];
		size_t n = (size_t)(ctl & 0x3f) + 1;
		uint32_t off = next;
		size_t old = 0; /* leading bytes re-sent from what was sent before */
		switch (ctl & 0xc0) {
		case 0x40: /* plain retransmission */
			if (next < n)
				break;
			off = next - (uint32_t)n;
			old = n;
			break;
		case 0xc0: /* retransmission coalesced with new data */
			old = n / 2 < next ? n / 2 : next;
			off = next - (uint32_t)old;
			break;
		case 0x80: /* a segment from beyond a gap: never acceptable */
			off = next + 1;
			break;
		}
		size_t fresh = n - old;
		if (fresh > size - pos)
			fresh = size - pos;
		n = old + fresh;
		if (n == 0 || off + n > RX - 1024)
			break;
		memcpy(seg_pkt[id], "HDR!", 4);
		memcpy(seg_pkt[id] + 4, sent + off, old);
		memcpy(seg_pkt[id] + 4 + old, data + pos, fresh);
		pos += fresh;
		if ((ctl & 0xc0) != 0x80) {
			memcpy(sent + off + old, data + pos - fresh, fresh);
			if (off + n > next)
				next = off + (uint32_t)n;
		}
		seg_len[id] = n;
		seg_seq[id] = isn + 1 + off;
		struct stream_result r;
		stream_segment(&s, &ops, NULL, id, seg_seq[id], seg_pkt[id], n + 4, 4, n, &r);
		if (getenv("FUZZ_TRACE")) {
			fprintf(stderr, "seg %u off %u len %zu old %zu: %.*s| hold=%d reason=%d corr=%u %d/%d\n", id,
				off, n, old, (int)n, (const char *)seg_pkt[id] + 4, r.hold_current, r.reason,
				r.corr_pos - (isn + 1), r.off_before, r.off_after);
			for (unsigned i = 0; i < r.nout; i++)
				fprintf(stderr, "   out id %u %s mod=%d len %zu\n", r.out[i].id,
					r.out[i].verdict == STREAM_DROP ? "DROP" : "ACCEPT", r.out[i].modified,
					r.out[i].len);
		}
		deliver(&r);
		stream_result_done(&s, &r);
		id++;
	}
	if (client_side) {
		struct stream_result r;
		stream_flush(&s, &r, "XXXX", 4);
		deliver(&r);
		stream_result_done(&s, &r);
		for (size_t i = 0; i + 4 <= RX; i++)
			if ((i == 0 || (has[i - 1] && rx[i - 1] == '\n')) && has[i] && has[i + 1] && has[i + 2] &&
			    has[i + 3] && memcmp(rx + i, "PORT", 4) == 0)
				abort(); /* a PORT verb reached the receiver unread */
	}
	stream_free(&s);
	return 0;
}
