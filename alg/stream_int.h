/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * What stream.c (lines, holding, release) and stream_record.c (what went
 * out before: the original bytes, the rewrites, the offsets' history, and
 * the retransmissions checked against them) share.
 */
#include <errno.h>
#include <stdlib.h>

#include "stream.h"

static inline int32_t sdiff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static inline int reserve(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 256; /* control segments are mostly short */
	while (n < need)
		n *= 2;
	uint8_t *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static inline void out_simple(struct stream_result *res, uint32_t id, enum stream_verdict v, enum stream_reason why)
{
	res->out[res->nout++] = (struct stream_out){.id = id, .verdict = v};
	res->reason = why;
}

static inline const uint8_t *held_payload(const struct stream_held *h)
{
	return h->pkt + h->payload_off;
}

/* stream_record.c: what went out before. */
void rec_hist_push(struct stream *s, uint32_t pos, int32_t after);
/* Is the offset the kernel will apply to a segment starting at seq the one its bytes need? */
bool rec_offset_still_right(const struct stream *s, uint32_t seq);
/* A rewritten range [seq, seq + len) as it went out (out, out_len), for retransmissions of it. */
void rec_remember(struct stream *s, uint32_t seq, uint32_t len, const uint8_t *orig, const uint8_t *out,
		  size_t out_len);
/* Record bytes [next_seq, next_seq + n) as first seen; call before next_seq moves past them. */
void rec_seen_add(struct stream *s, const uint8_t *p, size_t n);
/* Forget what was seen: nothing before next_seq can be checked. */
void rec_seen_reset(struct stream *s);
/* What already went out for [seq, seq + len), rebuilt into outbuf as far as it can be proven. */
uint32_t rec_replay(struct stream *s, uint32_t seq, const uint8_t *payload, uint32_t len, size_t *out_len);
/* A segment that begins in bytes already released: only what can be proven goes on. */
void rec_retransmission(struct stream *s, uint32_t id, uint32_t seq, const uint8_t *payload, uint32_t len,
			struct stream_result *res);
