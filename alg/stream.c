/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "stream.h"
#include "stream_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* What belongs to the connection: its held packets, its records, its edits. */
static void free_connection(struct stream *s)
{
	for (unsigned i = 0; i < s->nheld; i++)
		free(s->held[i].pkt);
	for (unsigned i = 0; i < STREAM_EMIT_RING; i++)
		free(s->emitted[i].out);
	free_edits(s);
	free_released(s);
}

void stream_free(struct stream *s)
{
	free_connection(s);
	free(s->edits);
	free(s->scratch);
	free(s->outbuf);
	free(s->curbuf);
	free(s->seen);
	free(s->line);
	free(s->held);
	free(s->released);
	memset(s, 0, sizeof(*s));
}

void stream_recycle(struct stream *s)
{
	free_connection(s);
	struct stream keep = {.edits = s->edits,
			      .edits_cap = s->edits_cap,
			      .scratch = s->scratch,
			      .scratch_cap = s->scratch_cap,
			      .curbuf = s->curbuf,
			      .curbuf_cap = s->curbuf_cap,
			      .outbuf = s->outbuf,
			      .outbuf_cap = s->outbuf_cap,
			      .seen = s->seen,
			      .seen_cap = s->seen_cap,
			      .line = s->line,
			      .line_cap = s->line_cap,
			      .held = s->held,
			      .released = s->released};
	/* Every start sets seen_start to an empty ring; zeroed anyway so no session's bytes outlive it. */
	if (keep.seen)
		memset(keep.seen, 0, keep.seen_cap);
	*s = keep;
}

/* A new line begins at seq. */
static void line_start(struct stream *s, uint32_t seq)
{
	s->line_seq = seq;
	s->line_len = 0;
	s->line_total = 0;
	s->line_long = false;
	s->line_tail = 0;
	s->line_marked = false;
	s->line_start_released = false;
}

void stream_syn(struct stream *s, uint32_t isn)
{
	if (s->started)
		return;
	s->started = true;
	s->synced = true;
	s->syn_seen = true;
	s->isn = isn;
	s->next_seq = isn + 1;
	s->seen_start = isn + 1;
	line_start(s, isn + 1);
}

static int32_t pending_delta(const struct stream *s)
{
	int32_t d = 0;
	for (unsigned i = 0; i < s->nedits; i++)
		d += (int32_t)s->edits[i].new_len - (int32_t)s->edits[i].old_len;
	return d;
}

static int edits_reserve(struct stream *s)
{
	if (s->nedits < s->edits_cap)
		return 0;
	unsigned n = s->edits_cap ? 2 * s->edits_cap : 4;
	struct stream_edit *e = realloc(s->edits, n * sizeof(*e));
	if (!e)
		return -ENOMEM;
	s->edits = e;
	s->edits_cap = n;
	return 0;
}

/*
 * The current line leaves unparsed (too long, or released before its end):
 * its first bytes become "XXXX" (as many as there are), so that whatever
 * follows, no server takes its verb. Same length, so no offsets change.
 */
static int mark_line(struct stream *s)
{
	if (s->line_marked || !s->synced || s->line_start_released || s->line_total == 0)
		return 0;
	size_t n = s->line_total < 4 ? s->line_total : 4;
	char *x = malloc(4);
	if (!x || edits_reserve(s) < 0) {
		free(x);
		return -ENOMEM;
	}
	memset(x, 'X', 4);
	s->edits[s->nedits++] =
	    (struct stream_edit){.seq = s->line_seq, .old_len = (uint32_t)n, .new_len = (uint32_t)n, .bytes = x};
	s->line_marked = true;
	return 0;
}

static bool verb_prefix(const uint8_t *b, size_t n)
{
	static const char verbs[][5] = {"PORT", "EPRT", "LPRT"};
	for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
		size_t k = 0;
		while (k < n && k < 4 && (b[k] & 0xdf) == verbs[v][k])
			k++;
		if (k == n)
			return true;
	}
	return false;
}

/* Same-length "X"s over n bytes at seq, for the release to apply. */
static void scrub(struct stream *s, uint32_t seq, size_t n)
{
	char *x = malloc(n);
	if (!x || edits_reserve(s) < 0) {
		free(x);
		return;
	}
	memset(x, 'X', n);
	s->edits[s->nedits++] =
	    (struct stream_edit){.seq = seq, .old_len = (uint32_t)n, .new_len = (uint32_t)n, .bytes = x};
}

/*
 * The tail of an over-long client line is not kept, but a server with a
 * smaller line buffer may take part of it as a command of its own: any
 * PORT/EPRT/LPRT in it (any case) becomes XXXX, and one cut by the segment's
 * end loses its first bytes, so the next segment cannot complete it.
 */
/*
 * The last k bytes of the line up to p[i] (the tail's in this segment,
 * before them the kept ones), into w; false if they are not all known here.
 */
static bool line_end(const struct stream *s, const uint8_t *p, size_t i, size_t k, uint8_t *w)
{
	size_t tail = s->line_tail < i + 1 ? s->line_tail : i + 1; /* tail bytes in this segment */
	if (tail >= k) {
		memcpy(w, p + i + 1 - k, k);
		return true;
	}
	if (tail < s->line_tail || s->line_len < k - tail)
		return false;
	memcpy(w, s->line + s->line_len - (k - tail), k - tail);
	memcpy(w + k - tail, p + i + 1 - tail, tail);
	return true;
}

static void scrub_tail(struct stream *s, uint32_t seq, const uint8_t *p, size_t i)
{
	uint8_t w[4];
	if (!line_end(s, p, i, 4, w) || !verb_prefix(w, 4))
		return;
	/* Its bytes in the tail (a verb that began in the kept part loses its end: "POXX"). */
	size_t t = s->line_tail < 4 ? s->line_tail : 4;
	scrub(s, seq + (uint32_t)(i + 1 - t), t);
}

static void scrub_tail_end(struct stream *s, uint32_t seq, const uint8_t *p, size_t n)
{
	size_t in_seg = s->line_tail < n ? s->line_tail : n;
	uint8_t w[3];
	for (size_t k = 3; k > 0; k--)
		if (n > 0 && line_end(s, p, n - 1, k, w) && verb_prefix(w, k)) {
			/* Only the tail's bytes of this segment can still change. */
			size_t t = k < in_seg ? k : in_seg;
			if (t)
				scrub(s, seq + (uint32_t)(n - t), t);
			return;
		}
}

/* Does the current line (so far) need its verb neutralized if it leaves unparsed? */
static bool line_needs_mark(const struct stream *s, const struct stream_ops *ops, void *ctx)
{
	return s->neutralize && s->synced && !s->line_start_released && s->line_total > 0 && ops->may_rewrite &&
	       ops->may_rewrite(ctx, s->line, s->line_len);
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
	if (edits_reserve(s) < 0)
		return;
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
				line_start(s, seq + (uint32_t)i + 1);
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
		if (s->line_len < s->line_cap) {
			s->line[s->line_len++] = (char)c;
		} else {
			if (!s->line_long) {
				/* Over STREAM_LINE_MAX, or out of memory: not parsed, so its verb is broken. */
				if (line_needs_mark(s, ops, ctx) || (s->neutralize && s->line_len == 0))
					mark_line(s);
				s->line_long = true;
			}
			s->line_tail++;
			if (s->neutralize)
				scrub_tail(s, seq, p, i);
		}
		s->line_total++;
		if (c == '\n') {
			complete_line(s, ops, ctx, max_seg);
			line_start(s, seq + (uint32_t)i + 1);
		}
	}
	if (s->line_long && s->neutralize)
		scrub_tail_end(s, seq, p, n);
}

static int hold(struct stream *s, uint32_t id, uint32_t seq, const uint8_t *pkt, size_t pkt_len, size_t payload_off,
		const uint8_t *payload, size_t payload_len, bool changed)
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
						   .payload_off = payload_off,
						   .changed = changed};
	return 0;
}

/* Release held segments and the current one (if have_cur), applying pending edits. */
static int release(struct stream *s, bool have_cur, uint32_t id, uint32_t seq, const uint8_t *cur, size_t cur_len,
		   bool cur_changed, struct stream_result *res)
{
	if (!have_cur) {
		if (s->nheld == 0) {
			free_edits(s);
			return 0;
		}
		cur_len = 0;
	}
	if (have_cur && s->nheld == 0 && s->nedits == 0) {
		/* Nearly every segment: nothing held, nothing rewritten. */
		res->out[res->nout++] = (struct stream_out){
		    .id = id, .verdict = STREAM_ACCEPT, .modified = cur_changed, .payload = cur, .len = cur_len};
		return 0;
	}
	unsigned n = s->nheld + (have_cur ? 1 : 0);
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
	if (cur_len)
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
		bool modified =
		    nl != l || memcmp(orig, s->outbuf + out_off, l) != 0 || (is_cur ? cur_changed : s->held[i].changed);
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
			rec_remember(s, sseq, (uint32_t)l, orig, s->outbuf + out_off, nl);
		out_off += nl;
	}
	if (delta != 0) {
		uint32_t pos_j = j == s->nheld ? seq : s->held[j].seq;
		s->off_before = s->off_after;
		s->off_after += delta;
		s->corr_pos = pos_j;
		rec_hist_push(s, pos_j, s->off_after);
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
		rec_seen_reset(s);
	}
	if (sdiff(seq + len, s->next_seq) <= 0) {
		rec_retransmission(s, id, seq, payload, len, res);
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
		/* Only a segment that begins exactly at a held one replaces it; any other cut is a retransmission. */
		unsigned first = s->nheld;
		for (unsigned i = 0; i < s->nheld; i++)
			if (s->held[i].seq == seq)
				first = i;
		if (first == s->nheld) {
			/*
			 * Old bytes resent with new ones: only the old part goes on (as it
			 * went out), and TCP sends the new part again on its own. Released
			 * together, a rewrite in the new part that changed the length would
			 * put the kernel's one correction point at the old part's start,
			 * and shift every later resend of the old bytes.
			 */
			rec_retransmission(s, id, seq, payload, len, res);
			return 0;
		} else if (!rec_offset_still_right(s, seq)) {
			out_simple(res, id, STREAM_DROP, STREAM_STALE_OFFSET);
			return 0;
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
		if (!s->opaque_set) {
			s->opaque_set = true;
			s->opaque_seq = s->next_seq;
		}
		s->next_seq = seq + len;
		res->out[res->nout++] = (struct stream_out){
		    .id = id, .verdict = STREAM_ACCEPT, .modified = cur_changed, .payload = cur, .len = payload_len};
		return 0;
	}

	if (s->scrub_next && s->neutralize) {
		/* Any verb after its first byte could begin the receiver's line: see scrub_tail. */
		s->scrub_next = false;
		const uint8_t *p = cur + prefix;
		size_t n = payload_len - prefix;
		for (size_t i = 1; i + 4 <= n; i++)
			if (verb_prefix(p + i, 4))
				scrub(s, s->next_seq + (uint32_t)i, 4);
		for (size_t k = 3; k > 0; k--)
			if (n > k && verb_prefix(p + n - k, k)) {
				scrub(s, s->next_seq + (uint32_t)(n - k), k);
				break;
			}
	}
	size_t max_seg = payload_len;
	for (unsigned i = 0; i < s->nheld; i++)
		if (s->held[i].len > max_seg)
			max_seg = s->held[i].len;
	parse_bytes(s, ops, ctx, s->next_seq, cur + prefix, payload_len - prefix, max_seg);
	rec_seen_add(s, cur + prefix, payload_len - prefix);
	s->next_seq = seq + len;

	bool partial = s->synced && s->line_total > 0 && !s->line_long && !s->line_start_released;
	if (partial && ops->may_rewrite && ops->may_rewrite(ctx, s->line, s->line_len)) {
		unsigned cap = s->hold_capped && s->hold_cap < STREAM_HOLD_MAX ? s->hold_cap : STREAM_HOLD_MAX;
		if (s->nheld < cap && hold(s, id, seq, pkt, pkt_len, payload_off, cur, payload_len, cur_changed) == 0) {
			res->hold_current = true;
			res->reason = STREAM_HELD;
			return 0;
		}
		/* At the limit (or out of memory) the line leaves unparsed: with its verb broken. */
		res->reason = STREAM_HOLD_FULL;
		if (line_needs_mark(s, ops, ctx))
			mark_line(s);
	}
	if (s->synced && s->line_total > 0)
		s->line_start_released = true;
	int r = release(s, true, id, seq, cur, payload_len, cur_changed, res);
	if (r < 0) {
		/*
		 * Out of memory: nothing goes out unrewritten. Everything is dropped,
		 * and no retransmission of it can be proven any more, so the
		 * connection stalls rather than carry an unchecked line.
		 */
		for (unsigned i = 0; i < s->nheld; i++) {
			res->out[res->nout++] = (struct stream_out){.id = s->held[i].id, .verdict = STREAM_DROP};
			free(s->held[i].pkt);
		}
		s->nheld = 0;
		free_edits(s);
		s->emit_lost = true;
		s->emit_floor = s->next_seq;
		out_simple(res, id, STREAM_DROP, STREAM_OK);
		return r;
	}
	return 0;
}

void stream_flush(struct stream *s, struct stream_result *res, const char *mark, size_t mark_len)
{
	memset(res, 0, sizeof(*res));
	free_released(s);
	/* Whatever part of the line is held: "XX" of "PO" breaks the verb as well as "XXXX". */
	if (mark && mark_len > 0 && s->nheld > 0 && s->synced && !s->line_start_released && s->line_total > 0 &&
	    !s->line_marked && sdiff(s->line_seq, s->held[0].seq) >= 0 && edits_reserve(s) == 0) {
		size_t n = s->line_total < mark_len ? s->line_total : mark_len;
		char *x = malloc(n);
		if (x) {
			memcpy(x, mark, n);
			s->edits[s->nedits++] = (struct stream_edit){
			    .seq = s->line_seq, .old_len = (uint32_t)n, .new_len = (uint32_t)n, .bytes = x};
			s->line_marked = true;
		}
	}
	res->corr_pos = s->corr_pos;
	res->off_before = s->off_before;
	res->off_after = s->off_after;
	/* The held segments go out with the rewrites of their complete lines: none may be lost. */
	if (release(s, false, 0, 0, NULL, 0, false, res) < 0) {
		/* Out of memory: what cannot be rewritten is dropped, never sent as it came. */
		for (unsigned i = 0; i < s->nheld; i++) {
			res->out[res->nout++] = (struct stream_out){.id = s->held[i].id, .verdict = STREAM_DROP};
			free(s->held[i].pkt);
		}
		s->nheld = 0;
		free_edits(s);
	}
	if (s->synced && s->line_total > 0)
		s->line_start_released = true;
}

void stream_result_done(struct stream *s, struct stream_result *res)
{
	(void)res;
	free_released(s);
}
