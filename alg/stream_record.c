/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One direction's record of what went out before, so that a retransmission
 * leaves only as its first copy did (or not at all): the newest original
 * bytes, the rewritten ranges, and the history of sequence offsets.
 */
#include "stream.h"
#include "stream_int.h"

#include <string.h>

void rec_hist_push(struct stream *s, uint32_t pos, int32_t after)
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
		rec_hist_push(s, pos, after);
}

/*
 * Is the offset the kernel will apply to a segment starting at seq the one
 * its bytes need (the sum of all length changes before it)?
 */
bool rec_offset_still_right(const struct stream *s, uint32_t seq)
{
	int32_t kernel = sdiff(seq, s->corr_pos) > 0 ? s->off_after : s->off_before;
	for (unsigned i = s->nhist; i-- > 0;)
		if (sdiff(seq, s->hist[i].pos) > 0)
			return s->hist[i].after == kernel;
	if (s->hist_lost)
		return false;
	return s->base_off == kernel;
}

void rec_remember(struct stream *s, uint32_t seq, uint32_t len, const uint8_t *orig, const uint8_t *out, size_t out_len)
{
	uint32_t tail = 0;
	while (tail < len && tail < out_len && orig[len - 1 - tail] == out[out_len - 1 - tail])
		tail++;
	struct stream_emitted *e = &s->emitted[s->emit_next];
	uint8_t *copy = malloc(out_len ? out_len : 1);

	/* Without the record its bytes cannot be proven: everything before it is lost to retransmissions. */
	if (!copy) {
		if (!s->emit_lost || sdiff(seq + len, s->emit_floor) > 0)
			s->emit_floor = seq + len;
		s->emit_lost = true;
		return;
	}
	memcpy(copy, out, out_len);
	if (e->out) {
		/* Forgotten: no byte before its end can be proven any more. */
		uint32_t end = e->seq + e->len;
		if (!s->emit_lost || sdiff(end, s->emit_floor) > 0)
			s->emit_floor = end;
		s->emit_lost = true;
	}
	free(e->out);
	*e = (struct stream_emitted){
	    .seq = seq, .len = len, .out_len = (uint32_t)out_len, .same_tail = tail, .out = copy};
	s->emit_next = (s->emit_next + 1) % STREAM_EMIT_RING;
}

/*
 * A ring of cap bytes (a power of two) holding [seen_start, next_seq) of
 * the old one at the same sequence numbers; false if out of memory.
 */
static bool seen_grow(struct stream *s, uint32_t cap)
{
	uint8_t *v = calloc(1, cap);
	if (!v)
		return false;
	for (uint32_t x = s->seen_start; x != s->next_seq; x++)
		v[x & (cap - 1)] = s->seen[x & (s->seen_cap - 1)];
	free(s->seen);
	s->seen = v;
	s->seen_cap = cap;
	return true;
}

/* Record bytes [next_seq, next_seq + n) as first seen; call before next_seq moves past them. */
void rec_seen_add(struct stream *s, const uint8_t *p, size_t n)
{
	if (!s->seen) {
		s->seen = calloc(1, STREAM_SEEN_MIN);
		if (!s->seen)
			return;
		s->seen_cap = STREAM_SEEN_MIN;
		s->seen_start = s->next_seq;
	}
	/* The window the ring must hold after these bytes, at most STREAM_SEEN. */
	uint64_t want = (uint64_t)(uint32_t)(s->next_seq - s->seen_start) + n;
	if (want > s->seen_cap && s->seen_cap < STREAM_SEEN) {
		uint32_t cap = s->seen_cap;
		while (cap < want && cap < STREAM_SEEN)
			cap *= 2;
		/* Out of memory: the ring keeps its size and forgets its oldest bytes. */
		seen_grow(s, cap);
	}
	uint32_t cap = s->seen_cap, seq = s->next_seq;
	if (n > cap) {
		seq += (uint32_t)(n - cap);
		p += n - cap;
		n = cap;
	}
	for (size_t i = 0; i < n; i++)
		s->seen[(seq + (uint32_t)i) & (cap - 1)] = p[i];
	uint32_t end = seq + (uint32_t)n;
	if (sdiff(end, s->seen_start) > (int32_t)cap)
		s->seen_start = end - cap;
}

/* Forget what was seen (resynchronised or gone opaque): nothing before next_seq can be checked. */
void rec_seen_reset(struct stream *s)
{
	s->seen_start = s->next_seq;
}

/* The record holding the byte at x, if any. */
static const struct stream_emitted *record_at(const struct stream *s, uint32_t x)
{
	for (unsigned i = 0; i < STREAM_EMIT_RING; i++) {
		const struct stream_emitted *e = &s->emitted[i];
		if (e->out && sdiff(x, e->seq) >= 0 && sdiff(e->seq + e->len, x) > 0)
			return e;
	}
	return NULL;
}

/* The first record to begin in (x, end), or end. */
static uint32_t next_record(const struct stream *s, uint32_t x, uint32_t end)
{
	for (unsigned i = 0; i < STREAM_EMIT_RING; i++) {
		const struct stream_emitted *e = &s->emitted[i];
		if (e->out && sdiff(e->seq, x) > 0 && sdiff(end, e->seq) > 0)
			end = e->seq;
	}
	return end;
}

static int put(struct stream *s, size_t *o, const uint8_t *p, size_t n)
{
	if (reserve(&s->outbuf, &s->outbuf_cap, *o + n) < 0)
		return -1;
	memcpy(s->outbuf + *o, p, n);
	*o += n;
	return 0;
}

/*
 * What already went out for [seq, seq + len), rebuilt into outbuf as far as
 * it can be proven: a recorded rewrite as recorded, other bytes as first
 * seen. Stops where proof ends (before the ring, before a forgotten rewrite,
 * inside a rewrite that changed the length, at held or unseen bytes).
 * Returns the number of original bytes covered; *out_len is the output's.
 */
uint32_t rec_replay(struct stream *s, uint32_t seq, const uint8_t *payload, uint32_t len, size_t *out_len)
{
	uint32_t x = seq, end = seq + len;
	size_t o = 0;
	uint32_t seen_end = s->opaque_set ? s->opaque_seq : s->next_seq;

	if (s->nheld && sdiff(end, s->held[0].seq) > 0)
		end = sdiff(s->held[0].seq, seq) > 0 ? s->held[0].seq : seq;
	while (sdiff(end, x) > 0) {
		if (s->opaque_set && sdiff(x, s->opaque_seq) >= 0) {
			/* Never parsed, never rewritten: it goes on as the sender sends it. */
			uint32_t stop = sdiff(s->next_seq, end) < 0 ? s->next_seq : end;
			if (sdiff(stop, x) <= 0 || put(s, &o, payload + (x - seq), stop - x) < 0)
				break;
			x = stop;
			continue;
		}
		const struct stream_emitted *e = record_at(s, x);
		if (e) {
			uint32_t eend = e->seq + e->len;
			if (e->out_len == e->len) {
				/* Same length: byte for byte, any cut maps. */
				uint32_t stop = sdiff(end, eend) < 0 ? end : eend;
				if (put(s, &o, e->out + (x - e->seq), stop - x) < 0)
					break;
				x = stop;
				continue;
			}
			/*
			 * A length change: from the record's start, or from its unchanged
			 * tail (where the kernel's later offset is the right one), and
			 * always to its end, even past this segment's (the sender sent
			 * those bytes before; the record fits in a segment).
			 */
			uint32_t i = x - e->seq;
			size_t from;
			if (i == 0)
				from = 0;
			else if (i >= e->len - e->same_tail)
				from = e->out_len - (e->len - i);
			else
				break;
			if (put(s, &o, e->out + from, e->out_len - from) < 0)
				break;
			x = eend;
			continue;
		}
		if ((s->emit_lost && sdiff(x, s->emit_floor) < 0) || sdiff(seen_end, x) <= 0)
			break;
		if (!s->seen || sdiff(x, s->seen_start) < 0) {
			/*
			 * Before the ring: the client's bytes cannot be proven, so nothing
			 * passes (a PORT the server would read unchecked). The server's go
			 * on as sent: never parsed again, they open nothing, and a lost
			 * segment from a long reply must not stall the connection.
			 */
			if (s->neutralize)
				break;
			uint32_t lim = s->seen && sdiff(s->seen_start, end) < 0 ? s->seen_start : end;
			uint32_t stop = next_record(s, x, lim);
			if (put(s, &o, payload + (x - seq), stop - x) < 0)
				break;
			x = stop;
			continue;
		}
		uint32_t stop = next_record(s, x, sdiff(seen_end, end) < 0 ? seen_end : end);
		if (reserve(&s->outbuf, &s->outbuf_cap, o + (stop - x)) < 0)
			break;
		for (; x != stop; x++)
			s->outbuf[o++] = s->seen[x & (s->seen_cap - 1)];
	}
	*out_len = o;
	return x - seq;
}

/*
 * A segment that begins in bytes already released: what goes on is what went
 * out before, rebuilt from the records, cut at the end where that cannot be
 * proven (the receiver acknowledges the part, the sender sends the rest
 * again). Nothing that cannot be proven passes.
 */
void rec_retransmission(struct stream *s, uint32_t id, uint32_t seq, const uint8_t *payload, uint32_t len,
			struct stream_result *res)
{
	if (!rec_offset_still_right(s, seq)) {
		/* From before an older rewrite: the kernel would place it wrongly. */
		out_simple(res, id, STREAM_DROP, STREAM_STALE_OFFSET);
		return;
	}
	size_t olen = 0;
	uint32_t covered = rec_replay(s, seq, payload, len, &olen);
	if (covered == 0 || (covered != len && s->cur_fin)) {
		/* Held (it will be released rewritten), or nothing provable: the sender tries again. */
		out_simple(res, id, STREAM_DROP, s->nheld ? STREAM_RETRANSMIT : STREAM_OVERLAPS_EDIT);
		return;
	}
	bool same = covered == len && olen == len && memcmp(s->outbuf, payload, len) == 0;
	res->out[res->nout++] = (struct stream_out){
	    .id = id, .verdict = STREAM_ACCEPT, .modified = !same, .payload = s->outbuf, .len = olen};
	res->reason = STREAM_RETRANSMIT;
}
