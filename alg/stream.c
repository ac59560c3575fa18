/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int32_t sdiff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static bool ranges_intersect(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return sdiff(a + alen, b) > 0 && sdiff(b + blen, a) > 0;
}

void stream_init(struct stream *s)
{
	memset(s, 0, sizeof(*s));
}

static void free_edits(struct stream *s)
{
	for (unsigned i = 0; i < s->nedits; i++)
		free(s->edits[i].bytes);
	s->nedits = 0;
}

static void free_released(struct stream *s)
{
	for (unsigned i = 0; i < s->nreleased; i++)
		free(s->released[i].pkt);
	s->nreleased = 0;
}

void stream_free(struct stream *s)
{
	for (unsigned i = 0; i < s->nheld; i++)
		free(s->held[i].pkt);
	for (unsigned i = 0; i < STREAM_EMIT_RING; i++)
		free(s->emitted[i].out);
	free_edits(s);
	free(s->edits);
	free_released(s);
	free(s->scratch);
	free(s->outbuf);
	free(s->curbuf);
	free(s->seen);
	free(s->line);
	free(s->held);
	free(s->released);
	memset(s, 0, sizeof(*s));
}

void stream_syn(struct stream *s, uint32_t isn)
{
	s->started = true;
	s->synced = true;
	s->syn_seen = true;
	s->isn = isn;
	s->next_seq = isn + 1;
	s->seen_start = isn + 1;
	s->line_seq = isn + 1;
	s->line_len = 0;
	s->line_total = 0;
	s->line_long = false;
	s->line_start_released = false;
}

static void hist_push(struct stream *s, uint32_t pos, int32_t after)
{
	if (s->nhist == STREAM_HIST) {
		memmove(&s->hist[0], &s->hist[1], (STREAM_HIST - 1) * sizeof(s->hist[0]));
		s->nhist--;
		s->hist_lost = true;
	}
	s->hist[s->nhist].pos = pos;
	s->hist[s->nhist].after = after;
	s->nhist++;
}

void stream_set_adj(struct stream *s, uint32_t pos, int32_t before, int32_t after)
{
	s->corr_pos = pos;
	s->off_before = before;
	s->off_after = after;
	/* Older history is unknown: assume one correction point. */
	s->nhist = 0;
	s->base_off = before;
	if (before != after)
		hist_push(s, pos, after);
}

/*
 * Is the offset the kernel will apply to a segment starting at seq the one
 * its bytes need (the sum of all length changes before it)?
 */
static bool offset_still_right(const struct stream *s, uint32_t seq)
{
	int32_t kernel = sdiff(seq, s->corr_pos) > 0 ? s->off_after : s->off_before;
	for (unsigned i = s->nhist; i-- > 0;)
		if (sdiff(seq, s->hist[i].pos) > 0)
			return s->hist[i].after == kernel;
	if (s->hist_lost)
		return false;
	return s->base_off == kernel;
}

static int reserve(uint8_t **buf, size_t *cap, size_t need)
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

static void out_simple(struct stream_result *res, uint32_t id, enum stream_verdict v, enum stream_reason why)
{
	res->out[res->nout++] = (struct stream_out){.id = id, .verdict = v};
	res->reason = why;
}

static const uint8_t *held_payload(const struct stream_held *h)
{
	return h->pkt + h->payload_off;
}

static void remember_emitted(struct stream *s, uint32_t seq, uint32_t len, const uint8_t *out, size_t out_len)
{
	struct stream_emitted *e = &s->emitted[s->emit_next];
	uint8_t *copy = malloc(out_len ? out_len : 1);

	/* Losing a record only means a later retransmission of it is dropped. */
	if (!copy)
		return;
	memcpy(copy, out, out_len);
	free(e->out);
	*e = (struct stream_emitted){.seq = seq, .len = len, .out_len = (uint32_t)out_len, .out = copy};
	s->emit_next = (s->emit_next + 1) % STREAM_EMIT_RING;
}

static bool intersects_emitted(const struct stream *s, uint32_t seq, uint32_t len)
{
	for (unsigned i = 0; i < STREAM_EMIT_RING; i++)
		if (s->emitted[i].out && ranges_intersect(seq, len, s->emitted[i].seq, s->emitted[i].len))
			return true;
	return false;
}

/* Record bytes [next_seq, next_seq + n) as first seen; call before next_seq moves past them. */
static void seen_add(struct stream *s, const uint8_t *p, size_t n)
{
	if (!s->seen) {
		s->seen = malloc(STREAM_SEEN);
		if (!s->seen)
			return;
		s->seen_start = s->next_seq;
	}
	uint32_t seq = s->next_seq;
	if (n > STREAM_SEEN) {
		seq += (uint32_t)(n - STREAM_SEEN);
		p += n - STREAM_SEEN;
		n = STREAM_SEEN;
	}
	for (size_t i = 0; i < n; i++)
		s->seen[(seq + (uint32_t)i) & (STREAM_SEEN - 1)] = p[i];
	uint32_t end = s->next_seq + (uint32_t)n;
	if (sdiff(end, s->seen_start) > STREAM_SEEN)
		s->seen_start = end - STREAM_SEEN;
}

/* Forget what was seen (resynchronised or gone opaque): nothing before next_seq can be checked. */
static void seen_reset(struct stream *s)
{
	s->seen_start = s->next_seq;
}

/*
 * Replace [seq, seq + n) in buf with the first copy. Returns 1 if that
 * changed it, 0 if it was the same, -1 if the ring no longer covers it.
 */
static int seen_restore(const struct stream *s, uint32_t seq, uint8_t *buf, size_t n)
{
	if (n == 0)
		return 0;
	if (!s->seen || sdiff(seq, s->seen_start) < 0 || sdiff(s->next_seq, seq) < (int32_t)n)
		return -1;
	int changed = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = s->seen[(seq + (uint32_t)i) & (STREAM_SEEN - 1)];
		if (buf[i] != b) {
			buf[i] = b;
			changed = 1;
		}
	}
	return changed;
}

/* A segment that carries only bytes seen before. */
static void retransmission(struct stream *s, uint32_t id, uint32_t seq, const uint8_t *payload, uint32_t len,
			   struct stream_result *res)
{
	if (!offset_still_right(s, seq)) {
		/* From before an older rewrite: the kernel would place it wrongly. Already acknowledged anyway. */
		out_simple(res, id, STREAM_DROP, STREAM_STALE_OFFSET);
		return;
	}
	for (unsigned i = 0; i < s->nheld; i++)
		if (ranges_intersect(seq, len, s->held[i].seq, s->held[i].len)) {
			/* The first copy is held and will be released rewritten. */
			out_simple(res, id, STREAM_DROP, STREAM_RETRANSMIT);
			return;
		}
	for (unsigned i = 0; i < STREAM_EMIT_RING; i++) {
		const struct stream_emitted *e = &s->emitted[i];
		if (e->out && e->seq == seq && e->len == len) {
			res->out[res->nout++] = (struct stream_out){
			    .id = id, .verdict = STREAM_ACCEPT, .modified = true, .payload = e->out, .len = e->out_len};
			res->reason = STREAM_RETRANSMIT;
			return;
		}
	}
	if (intersects_emitted(s, seq, len)) {
		/* Not byte-identical to what we sent: let the sender try again. */
		out_simple(res, id, STREAM_DROP, STREAM_OVERLAPS_EDIT);
		return;
	}
	/*
	 * Never parsed again. Where the ring still has the first copy, that is
	 * what goes on, so the receiver gets the bytes that were parsed; older
	 * bytes go on as sent (the receiver acknowledged them long ago).
	 */
	if (reserve(&s->curbuf, &s->curbuf_cap, len) == 0) {
		memcpy(s->curbuf, payload, len);
		if (seen_restore(s, seq, s->curbuf, len) == 1) {
			res->out[res->nout++] = (struct stream_out){
			    .id = id, .verdict = STREAM_ACCEPT, .modified = true, .payload = s->curbuf, .len = len};
			res->reason = STREAM_RETRANSMIT;
			return;
		}
	}
	out_simple(res, id, STREAM_ACCEPT, STREAM_RETRANSMIT);
}

static int32_t pending_delta(const struct stream *s)
{
	int32_t d = 0;
	for (unsigned i = 0; i < s->nedits; i++)
		d += (int32_t)s->edits[i].new_len - (int32_t)s->edits[i].old_len;
	return d;
}

static void complete_line(struct stream *s, const struct stream_ops *ops, void *ctx, size_t max_seg)
{
	if (!ops->line)
		return;
	if (s->line_long || s->line_start_released) {
		ops->line(ctx, s->line ? s->line : "", s->line_len, 0, NULL, 0, false);
		return;
	}
	/* Room for the edit first: once the callback has armed a pinhole, the rewrite must happen. */
	if (s->nedits == s->edits_cap) {
		unsigned n = s->edits_cap ? 2 * s->edits_cap : 4;
		struct stream_edit *e = realloc(s->edits, n * sizeof(*e));
		if (!e)
			return;
		s->edits = e;
		s->edits_cap = n;
	}
	int64_t budget = (int64_t)max_seg - 1 + pending_delta(s);
	if (budget < 0)
		budget = 0;
	char out[STREAM_LINE_MAX + STREAM_GROW_MAX];
	/* Growth is capped per release: the MSS clamp leaves exactly that much room in a full segment. */
	int64_t grow = STREAM_GROW_MAX - pending_delta(s);
	if (grow < 0)
		grow = 0;
	size_t cap = s->line_len + (size_t)grow;
	if (cap > sizeof(out))
		cap = sizeof(out);
	int r = ops->line(ctx, s->line, s->line_len, (size_t)budget, out, cap, true);
	if (r < 0 || (size_t)r > sizeof(out))
		return;
	if ((size_t)r == s->line_len && memcmp(out, s->line, s->line_len) == 0)
		return;
	if ((int64_t)r < (int64_t)s->line_len - budget)
		return;
	char *copy = malloc((size_t)r ? (size_t)r : 1);
	if (!copy)
		return;
	memcpy(copy, out, (size_t)r);
	s->edits[s->nedits++] = (struct stream_edit){
	    .seq = s->line_seq, .old_len = (uint32_t)s->line_len, .new_len = (uint32_t)r, .bytes = copy};
}

static void parse_bytes(struct stream *s, const struct stream_ops *ops, void *ctx, uint32_t seq, const uint8_t *p,
			size_t n, size_t max_seg)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (!s->synced) {
			if (c == '\n') {
				s->synced = true;
				s->line_seq = seq + (uint32_t)i + 1;
				s->line_len = 0;
				s->line_total = 0;
				s->line_long = false;
				s->line_start_released = false;
			}
			continue;
		}
		if (s->line_len == s->line_cap && s->line_cap < STREAM_LINE_MAX) {
			/* Most lines are short: the buffer grows to STREAM_LINE_MAX only for long ones. */
			size_t grow = s->line_cap ? 2 * s->line_cap : 128;
			if (grow > STREAM_LINE_MAX)
				grow = STREAM_LINE_MAX;
			char *l = realloc(s->line, grow);
			if (l) {
				s->line = l;
				s->line_cap = grow;
			}
		}
		if (s->line_len < s->line_cap)
			s->line[s->line_len++] = (char)c;
		else
			s->line_long = true; /* over STREAM_LINE_MAX, or out of memory: not parsed */
		s->line_total++;
		if (c == '\n') {
			complete_line(s, ops, ctx, max_seg);
			s->line_seq = seq + (uint32_t)i + 1;
			s->line_len = 0;
			s->line_total = 0;
			s->line_long = false;
			s->line_start_released = false;
		}
	}
}

static int hold(struct stream *s, uint32_t id, uint32_t seq, const uint8_t *pkt, size_t pkt_len, size_t payload_off,
		const uint8_t *payload, size_t payload_len)
{
	if (!s->held) {
		s->held = malloc(STREAM_HOLD_MAX * sizeof(*s->held));
		s->released = malloc(STREAM_HOLD_MAX * sizeof(*s->released));
		if (!s->held || !s->released) {
			free(s->held);
			free(s->released);
			s->held = s->released = NULL;
			return -ENOMEM;
		}
	}
	uint8_t *copy = malloc(pkt_len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, pkt, payload_off);
	memcpy(copy + payload_off, payload, payload_len);
	memcpy(copy + payload_off + payload_len, pkt + payload_off + payload_len, pkt_len - payload_off - payload_len);
	s->held[s->nheld++] = (struct stream_held){.id = id,
						   .seq = seq,
						   .len = (uint32_t)payload_len,
						   .pkt = copy,
						   .pkt_len = pkt_len,
						   .payload_off = payload_off};
	return 0;
}

/* Release held segments and the current one, applying pending edits. */
static int release(struct stream *s, uint32_t id, uint32_t seq, const uint8_t *cur, size_t cur_len, bool cur_changed,
		   struct stream_result *res)
{
	if (s->nheld == 0 && s->nedits == 0) {
		/* Nearly every segment: nothing held, nothing rewritten. */
		res->out[res->nout++] = (struct stream_out){
		    .id = id, .verdict = STREAM_ACCEPT, .modified = cur_changed, .payload = cur, .len = cur_len};
		return 0;
	}
	unsigned n = s->nheld + 1;
	uint32_t base = s->nheld ? s->held[0].seq : seq;
	size_t total = cur_len;
	for (unsigned i = 0; i < s->nheld; i++)
		total += s->held[i].len;

	int32_t delta = pending_delta(s);
	size_t out_total = (size_t)((int64_t)total + delta);
	if (reserve(&s->outbuf, &s->outbuf_cap, out_total + 1) < 0 ||
	    reserve(&s->scratch, &s->scratch_cap, total + 1) < 0)
		return -ENOMEM;

	/* The original bytes of all segments, contiguous in sequence space. */
	size_t pos = 0;
	for (unsigned i = 0; i < s->nheld; i++) {
		memcpy(s->scratch + pos, held_payload(&s->held[i]), s->held[i].len);
		pos += s->held[i].len;
	}
	memcpy(s->scratch + pos, cur, cur_len);

	/* Choose the one segment that absorbs the length change. */
	unsigned j = n - 1;
	if (delta < 0) {
		size_t best = 0;
		for (unsigned i = 0; i < n; i++) {
			size_t l = i < s->nheld ? s->held[i].len : cur_len;
			if (l >= best) {
				best = l;
				j = i;
			}
		}
		if ((int64_t)best + delta < 1) {
			free_edits(s);
			delta = 0;
			out_total = total;
		}
	}

	size_t o = 0, from = 0;
	for (unsigned e = 0; e < s->nedits; e++) {
		size_t at = (size_t)(uint32_t)(s->edits[e].seq - base);
		if (at < from || at + s->edits[e].old_len > total)
			continue;
		memcpy(s->outbuf + o, s->scratch + from, at - from);
		o += at - from;
		memcpy(s->outbuf + o, s->edits[e].bytes, s->edits[e].new_len);
		o += s->edits[e].new_len;
		from = at + s->edits[e].old_len;
	}
	memcpy(s->outbuf + o, s->scratch + from, total - from);
	o += total - from;
	if (o != out_total) {
		/* An edit was skipped; fall back to the original bytes. */
		memcpy(s->outbuf, s->scratch, total);
		out_total = total;
		delta = 0;
	}
	free_edits(s);

	size_t out_off = 0;
	free_released(s);
	for (unsigned i = 0; i < n; i++) {
		bool is_cur = i == s->nheld;
		uint32_t sseq = is_cur ? seq : s->held[i].seq;
		size_t l = is_cur ? cur_len : s->held[i].len;
		size_t nl = l + (i == j ? (size_t)(int64_t)delta : 0);
		if (i == j && delta < 0)
			nl = l - (size_t)(-(int64_t)delta);
		const uint8_t *orig = is_cur ? cur : held_payload(&s->held[i]);
		bool modified = nl != l || memcmp(orig, s->outbuf + out_off, l) != 0 || (is_cur && cur_changed);
		struct stream_out *out = &res->out[res->nout++];
		*out = (struct stream_out){.id = is_cur ? id : s->held[i].id,
					   .verdict = STREAM_ACCEPT,
					   .modified = modified,
					   .payload = s->outbuf + out_off,
					   .len = nl};
		if (!is_cur) {
			s->released[s->nreleased] = s->held[i];
			out->held = &s->released[s->nreleased++];
		}
		if (modified && (nl != l || memcmp(orig, s->outbuf + out_off, l) != 0))
			remember_emitted(s, sseq, (uint32_t)l, s->outbuf + out_off, nl);
		out_off += nl;
	}
	if (delta != 0) {
		uint32_t pos_j = j == s->nheld ? seq : s->held[j].seq;
		s->off_before = s->off_after;
		s->off_after += delta;
		s->corr_pos = pos_j;
		hist_push(s, pos_j, s->off_after);
		res->seqadj_changed = true;
	}
	res->corr_pos = s->corr_pos;
	res->off_before = s->off_before;
	res->off_after = s->off_after;
	s->nheld = 0;
	return 0;
}

int stream_segment(struct stream *s, const struct stream_ops *ops, void *ctx, uint32_t id, uint32_t seq,
		   const uint8_t *pkt, size_t pkt_len, size_t payload_off, size_t payload_len,
		   struct stream_result *res)
{
	memset(res, 0, sizeof(*res));
	res->corr_pos = s->corr_pos;
	res->off_before = s->off_before;
	res->off_after = s->off_after;

	if (payload_len == 0 || payload_off > pkt_len || payload_len > pkt_len - payload_off) {
		out_simple(res, id, STREAM_ACCEPT, STREAM_OK);
		return 0;
	}
	const uint8_t *payload = pkt + payload_off;
	uint32_t len = (uint32_t)payload_len;

	if (!s->started) {
		/* Joined mid-stream: wait for a line end before parsing. */
		s->started = true;
		s->synced = false;
		s->next_seq = seq;
		seen_reset(s);
	}
	if (sdiff(seq + len, s->next_seq) <= 0) {
		retransmission(s, id, seq, payload, len, res);
		return 0;
	}
	if (sdiff(seq, s->next_seq) > 0) {
		out_simple(res, id, STREAM_DROP, STREAM_OUT_OF_ORDER);
		return 0;
	}

	size_t prefix = (size_t)(uint32_t)(s->next_seq - seq);
	/* The current segment's bytes; the seen prefix is replaced by the first copy. */
	if (reserve(&s->curbuf, &s->curbuf_cap, payload_len) < 0) {
		out_simple(res, id, STREAM_ACCEPT, STREAM_OK);
		return -ENOMEM;
	}
	uint8_t *cur = s->curbuf;
	memcpy(cur, payload, payload_len);
	bool cur_changed = false;

	if (prefix > 0) {
		unsigned first = s->nheld;
		if (s->nheld > 0) {
			if (sdiff(seq, s->held[0].seq) <= 0) {
				first = 0;
			} else {
				for (unsigned i = 0; i < s->nheld; i++)
					if (s->held[i].seq == seq)
						first = i;
				if (first == s->nheld) {
					out_simple(res, id, STREAM_DROP, STREAM_RETRANSMIT);
					return 0;
				}
			}
		}
		uint32_t old_end = first < s->nheld ? s->held[first].seq : s->next_seq;
		uint32_t old_len = (uint32_t)(old_end - seq);
		if ((sdiff(old_end, seq) > 0 && intersects_emitted(s, seq, old_len)) || !offset_still_right(s, seq)) {
			out_simple(res, id, STREAM_DROP, STREAM_OVERLAPS_EDIT);
			return 0;
		}
		/* The released part of the overlap: the first copy wins, as the parser saw it. */
		if (sdiff(old_end, seq) > 0) {
			int r = seen_restore(s, seq, cur, old_len);
			if (r < 0) {
				out_simple(res, id, STREAM_DROP, STREAM_RETRANSMIT);
				return 0;
			}
			if (r > 0)
				cur_changed = true;
		}
		for (unsigned i = first; i < s->nheld; i++) {
			struct stream_held *h = &s->held[i];
			size_t at = (size_t)(uint32_t)(h->seq - seq);
			if (memcmp(cur + at, held_payload(h), h->len) != 0)
				cur_changed = true;
			memcpy(cur + at, held_payload(h), h->len);
			res->out[res->nout++] = (struct stream_out){.id = h->id, .verdict = STREAM_DROP};
			free(h->pkt);
		}
		s->nheld = first;
	}

	if (s->opaque) {
		s->next_seq = seq + len;
		seen_reset(s);
		res->out[res->nout++] = (struct stream_out){
		    .id = id, .verdict = STREAM_ACCEPT, .modified = cur_changed, .payload = cur, .len = payload_len};
		return 0;
	}

	size_t max_seg = payload_len;
	for (unsigned i = 0; i < s->nheld; i++)
		if (s->held[i].len > max_seg)
			max_seg = s->held[i].len;
	parse_bytes(s, ops, ctx, s->next_seq, cur + prefix, payload_len - prefix, max_seg);
	seen_add(s, cur + prefix, payload_len - prefix);
	s->next_seq = seq + len;

	bool partial = s->synced && s->line_total > 0 && !s->line_long && !s->line_start_released;
	if (partial && ops->may_rewrite && ops->may_rewrite(ctx, s->line, s->line_len)) {
		if (s->nheld < STREAM_HOLD_MAX) {
			int r = hold(s, id, seq, pkt, pkt_len, payload_off, cur, payload_len);
			if (r < 0) {
				out_simple(res, id, STREAM_ACCEPT, STREAM_OK);
				return r;
			}
			res->hold_current = true;
			res->reason = STREAM_HELD;
			return 0;
		}
		res->reason = STREAM_HOLD_FULL;
	}
	if (s->synced && s->line_total > 0)
		s->line_start_released = true;
	int r = release(s, id, seq, cur, payload_len, cur_changed, res);
	if (r < 0) {
		/* Out of memory: pass everything unmodified rather than lose it. */
		for (unsigned i = 0; i < s->nheld; i++) {
			res->out[res->nout++] = (struct stream_out){.id = s->held[i].id, .verdict = STREAM_ACCEPT};
			free(s->held[i].pkt);
		}
		s->nheld = 0;
		free_edits(s);
		out_simple(res, id, STREAM_ACCEPT, STREAM_OK);
		return r;
	}
	return 0;
}

void stream_flush(struct stream *s, struct stream_result *res, const char *mark, size_t mark_len)
{
	memset(res, 0, sizeof(*res));
	free_released(s);
	/* Overwrite the partial line's first bytes where they are held (same length, no offsets). */
	/* Whatever part of the line is there: "XX" of "PO" breaks the verb as well as "XXXX". */
	if (mark && s->line_total < mark_len)
		mark_len = s->line_total;
	bool can_mark = mark && mark_len > 0 && s->synced && !s->line_start_released;
	for (unsigned i = 0; i < s->nheld; i++) {
		struct stream_held *h = &s->held[i];
		bool modified = false;
		for (size_t k = 0; can_mark && k < mark_len; k++) {
			uint32_t at = s->line_seq + (uint32_t)k - h->seq;
			if (at < h->len) {
				h->pkt[h->payload_off + at] = (uint8_t)mark[k];
				modified = true;
			}
		}
		if (modified)
			remember_emitted(s, h->seq, h->len, h->pkt + h->payload_off, h->len);
		s->released[s->nreleased] = *h;
		res->out[res->nout++] = (struct stream_out){.id = h->id,
							    .verdict = STREAM_ACCEPT,
							    .modified = modified,
							    .payload = s->released[s->nreleased].pkt + h->payload_off,
							    .len = h->len,
							    .held = &s->released[s->nreleased]};
		s->nreleased++;
	}
	s->nheld = 0;
	free_edits(s);
	if (s->synced && s->line_total > 0)
		s->line_start_released = true;
	res->corr_pos = s->corr_pos;
	res->off_before = s->off_before;
	res->off_after = s->off_after;
}

void stream_result_done(struct stream *s, struct stream_result *res)
{
	(void)res;
	free_released(s);
}
