/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One direction of a TCP control connection, in the sender's sequence space.
 * Pure bookkeeping: callers pass segments in, get verdicts out; no I/O.
 *
 * Lines are parsed only from a known line start. A segment that ends inside
 * a line that may need a rewrite is held until the line completes, so a line
 * split at any byte is rewritten as a whole. All length change of one release
 * goes into a single segment because the kernel's seqadj keeps one
 * correction point per direction.
 */

#define STREAM_LINE_MAX	 4096
#define STREAM_HOLD_MAX	 128
#define STREAM_EMIT_RING 8
#define STREAM_HIST	 16
/*
 * Most bytes the rewrites of one release may add. The session lowers the MSS
 * of each control connection by as much, so a full segment still fits.
 */
#define STREAM_GROW_MAX 64
/* The newest original bytes kept per direction, so a retransmission carries the first copy (power of 2). */
#define STREAM_SEEN	2048
#define STREAM_SEEN_MIN 256

struct stream_ops {
	/* May the incomplete line (so far) be one that gets rewritten? */
	bool (*may_rewrite)(void *ctx, const char *line, size_t len);
	/*
	 * A complete line including its LF. Write a replacement to out and
	 * return its length, or return -1 to keep it. The replacement must be
	 * at least len - max_shrink and at most cap bytes long. Every line comes
	 * here, so the caller's state (pairing, AUTH) follows the stream; one
	 * whose start was already released, or that is over STREAM_LINE_MAX
	 * (then cut there, without its LF), comes with may_rewrite false, out
	 * NULL and cap 0, and its result is ignored.
	 */
	int (*line)(void *ctx, const char *line, size_t len, size_t max_shrink, char *out, size_t cap,
		    bool may_rewrite);
};

struct stream_held {
	uint32_t id;
	uint32_t seq;
	uint32_t len; /* payload length */
	uint8_t *pkt; /* whole packet copy */
	size_t pkt_len;
	size_t payload_off;
	bool changed; /* the payload differs from the packet's own */
};

struct stream_edit {
	uint32_t seq;
	uint32_t old_len;
	uint32_t new_len;
	char *bytes;
};

struct stream_emitted {
	uint32_t seq;
	uint32_t len;
	uint32_t out_len;
	uint32_t same_tail; /* the last bytes that out shares with the original */
	uint8_t *out;
};

struct stream {
	bool started;
	bool synced;
	bool syn_seen; /* and isn is the sender's initial sequence number */
	uint32_t isn;
	bool opaque;
	bool opaque_set; /* and opaque_seq is where the unparsed bytes begin */
	uint32_t opaque_seq;
	/* Client direction: a line that may carry an address never leaves unparsed with its verb intact. */
	bool neutralize;
	/* Joined mid-stream: the next segment may begin with bytes the receiver has; its verbs go. */
	bool scrub_next;
	/* If hold_capped: segments this stream may hold now, its session's share of the limits. */
	bool hold_capped;
	unsigned hold_cap;
	/* The current segment carries FIN: it cannot be shortened. */
	bool cur_fin;
	uint32_t next_seq;
	uint32_t line_seq;
	size_t line_len;
	bool line_long;
	bool line_marked; /* the current line's verb is already being neutralized */
	size_t line_tail; /* bytes of the current line past STREAM_LINE_MAX, which are not kept */
	char *line;	  /* grows with the longest line so far, up to STREAM_LINE_MAX */
	size_t line_cap;

	/* STREAM_HOLD_MAX entries each, allocated the first time a segment is held. */
	struct stream_held *held;
	unsigned nheld;
	struct stream_edit *edits; /* rewrites of the lines in what is held, in order */
	unsigned nedits;
	unsigned edits_cap;
	struct stream_emitted emitted[STREAM_EMIT_RING];
	unsigned emit_next;
	/* A record was overwritten: before emit_floor a forgotten rewrite may lie. */
	bool emit_lost;
	uint32_t emit_floor;

	/* Mirror of the kernel's seqadj for this direction. */
	uint32_t corr_pos;
	int32_t off_before;
	int32_t off_after;
	/*
	 * Earlier correction points: seqadj keeps only the newest, so an old
	 * segment may only be re-sent where the kernel's offset is still right.
	 */
	struct {
		uint32_t pos;
		int32_t after;
	} hist[STREAM_HIST];
	unsigned nhist;
	bool hist_lost;
	int32_t base_off;

	/* Held entries handed out in the last result, freed by stream_result_done. */
	struct stream_held *released;
	unsigned nreleased;
	/* The current line began in a segment already released: never rewrite it. */
	bool line_start_released;
	size_t line_total;

	uint8_t *scratch;
	size_t scratch_cap;
	uint8_t *curbuf; /* the current segment's payload, reused from call to call */
	size_t curbuf_cap;
	uint8_t *outbuf;
	size_t outbuf_cap;
	/*
	 * Ring: byte at seq x is seen[x % seen_cap]. It grows from
	 * STREAM_SEEN_MIN to STREAM_SEEN as the stream does: a quiet control
	 * connection (most of those a gateway holds) keeps a small one.
	 */
	uint8_t *seen;
	uint32_t seen_cap;
	uint32_t seen_start; /* oldest seq the ring may hold; it ends at next_seq */
};

enum stream_verdict {
	STREAM_ACCEPT = 0, /* release (payload may be replaced) */
	STREAM_DROP,
};

struct stream_out {
	uint32_t id;
	enum stream_verdict verdict;
	bool modified;
	const uint8_t *payload; /* valid until the next stream call */
	size_t len;
	const struct stream_held *held; /* packet copy for held segments, else NULL */
};

enum stream_reason {
	STREAM_OK = 0,
	STREAM_HELD,
	STREAM_RETRANSMIT,
	STREAM_OUT_OF_ORDER,
	STREAM_OVERLAPS_EDIT,
	STREAM_HOLD_FULL,
	STREAM_STALE_OFFSET,
};

struct stream_result {
	bool hold_current; /* keep the current packet; it will come back in out[] */
	unsigned nout;
	struct stream_out out[STREAM_HOLD_MAX + 1];
	bool seqadj_changed;
	uint32_t corr_pos;
	int32_t off_before;
	int32_t off_after;
	enum stream_reason reason;
};

void stream_init(struct stream *s);
void stream_free(struct stream *s);
/* As stream_free, but s keeps its buffers (empty) for the next session, as after stream_init. */
void stream_recycle(struct stream *s);
/*
 * The peer's SYN: data starts at isn + 1 at a line start. Ignored once the
 * stream has started: a SYN in the middle of a connection (forged, or a
 * stray retransmission) never resets what the parser knows.
 */
void stream_syn(struct stream *s, uint32_t isn);
/* Continue from a known kernel seqadj state (after a restart). */
void stream_set_adj(struct stream *s, uint32_t pos, int32_t before, int32_t after);

/*
 * Feed one segment. pkt/pkt_len/payload_off describe the whole packet so a
 * held segment can be re-emitted. id identifies it in the result.
 * Returns 0 or a negative errno (-ENOMEM); the result is valid either way.
 */
int stream_segment(struct stream *s, const struct stream_ops *ops, void *ctx, uint32_t id, uint32_t seq,
		   const uint8_t *pkt, size_t pkt_len, size_t payload_off, size_t payload_len,
		   struct stream_result *res);

/*
 * Release every held segment (timeout, teardown) with the rewrites of its
 * complete lines, and the partial line's first mark_len bytes replaced by
 * mark where they are held (mark NULL: unmodified).
 */
void stream_flush(struct stream *s, struct stream_result *res, const char *mark, size_t mark_len);
/* Free the copies behind the previous result's held entries. */
void stream_result_done(struct stream *s, struct stream_result *res);
