/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The packet path, from a queued packet to its verdicts: which session it
 * belongs to (new at a SYN, adopted mid-stream, replaced on conntrack's
 * word), its stream, its close; and the timers: held lines, pinholes,
 * sessions whose conntrack has gone, and a takeover.
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pkt.h"
#include "session_int.h"

#define HOLD_TIMEOUT  2	 /* seconds a partial line may be held */
#define QUIET_CHECK   60 /* seconds without a packet before a session's conntrack is asked about */
#define CLOSED_LINGER 10 /* seconds a closed session is kept for stray packets */

static void flow_from_pkt(const struct pkt_info *pi, struct flow *f)
{
	memset(f, 0, sizeof(*f));
	f->family = pi->family;
	memcpy(f->saddr, pi->saddr, flow_addr_len(pi->family));
	memcpy(f->daddr, pi->daddr, flow_addr_len(pi->family));
	f->sport = pi->sport;
	f->dport = pi->dport;
}

/*
 * A control connection whose first packet this daemon sees is not its
 * client's SYN: taken up mid-stream only if conntrack says it existed
 * before this daemon could see its first packet (ct_predates: it was in the
 * dump taken at start or at the last takeover, with the same id) and both
 * sides have spoken (SEEN_REPLY). Nothing a peer sends can make a new
 * connection look like that. Such a session skips the greeting and
 * first-line checks (long past), takes the first byte of the next segment
 * in each direction as a line start (see join_stream), and takes its
 * sequence offsets from conntrack.
 */
static struct session *adopt(struct alg *a, const struct ct_info *ct, const char **refuse)
{
	if (!a->ops->ct_predates || !ct->seen_reply || !a->ops->ct_predates(a->kernel, ct)) {
		*refuse = "not-adoptable";
		return NULL;
	}
	struct session *s = session_new(a, &ct->orig, refuse);
	if (!s)
		return NULL;
	s->greeted = true;
	s->client_spoke = true;
	s->join_at_start = true;
	log_session_start(s, "adopted");
	learn_from_ct(a, s, ct);
	return s;
}

static struct session *lookup_or_create(struct alg *a, int dir, const struct pkt_info *pi, const char **refuse)
{
	struct flow f;
	struct ct_info ct;
	struct session *s;

	flow_from_pkt(pi, &f);
	if (dir == DIR_ORIG) {
		s = find_orig(a, &f);
		if (s)
			return s;
		bool syn = (pi->flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN;
		/* Nothing to read in a bare segment; the kernel keeps what it knows of the connection. */
		if (!syn && pi->payload_len == 0)
			return NULL;
		if (syn) {
			if (server_full(a, &f)) {
				*refuse = "server-max-sessions";
				return NULL;
			}
			s = session_new(a, &f, refuse);
			if (s) {
				s->from_syn = true;
				log_session_start(s, "syn");
			}
			return s;
		}
		if (a->ops->ct_get(a->kernel, &f, DIR_ORIG, &ct) < 0) {
			*refuse = "not-adoptable";
			return NULL;
		}
		return adopt(a, &ct, refuse);
	}
	s = find_reply(a, &f);
	if (s)
		return s;
	if (pi->payload_len == 0 && !(pi->flags & PKT_TCP_SYN))
		return NULL;
	int r = a->ops->ct_get(a->kernel, &f, DIR_REPLY, &ct);
	if (r < 0) {
		char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
		log_msg(LOG_LVL_DEBUG, "event=no-conntrack src=%s:%u dst=%s:%u error=\"%s\"",
			addr_str(f.family, f.saddr, sa, sizeof(sa)), f.sport,
			addr_str(f.family, f.daddr, da, sizeof(da)), f.dport, strerror(-r));
		return NULL;
	}
	s = find_orig(a, &ct.orig);
	if (!s)
		return adopt(a, &ct, refuse);
	learn_from_ct(a, s, &ct);
	return s;
}

/*
 * A client's SYN with another initial sequence number than the session's
 * own is a new connection on the same ports only if conntrack says so: the
 * kernel no longer has the session's conntrack (it destroys a closed one
 * when a SYN reopens its tuple, and the new one is not confirmed before the
 * packet leaves prerouting), or has one with another id. Our own view of
 * FIN and RST decides nothing: an injected in-window RST that the server
 * (and conntrack, which closes only on an exact one) ignores could fake it.
 * Only taken when nothing is held, so that no queued packet is left without
 * a verdict.
 */
static bool is_new_incarnation(struct alg *a, const struct session *s, int dir, const struct pkt_info *pi)
{
	if (dir != DIR_ORIG || (pi->flags & (PKT_TCP_SYN | PKT_TCP_ACK)) != PKT_TCP_SYN)
		return false;
	const struct stream *st = &s->dir[DIR_ORIG];
	if (!st->started || (st->syn_seen && st->isn == pi->seq))
		return false;
	if (st->nheld != 0 || s->dir[DIR_REPLY].nheld != 0)
		return false;
	struct ct_info ct;
	int r = a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &ct);
	if (r == -ENOENT)
		return true;
	return r == 0 && s->has_ct_id && ct.has_id && ct.id != s->ct_id;
}

/*
 * The first segment of an adopted or rejoined session in direction dir: its
 * first byte is taken as a line start. A gateway's daemon holds a line it
 * may rewrite until it is whole, so after a failover the sender resends
 * from the start of any line the old gateway held, and a line the old
 * gateway let go in part went with its verb neutralized. Where the guess
 * is wrong, a client fragment is still checked as a command (a PORT-shaped
 * one is checked or neutralized) and a server fragment opens a pinhole
 * only as the answer to a PASV/EPSV this daemon saw.
 */
/* Direction dir's stream starts at seq, taken as a line start, its SYN unseen. */
static void start_at(struct session *s, int dir, uint32_t seq)
{
	stream_syn(&s->dir[dir], seq - 1);
	s->dir[dir].syn_seen = false;
}

static void join_stream(struct alg *a, struct session *s, int dir, uint32_t seq)
{
	if (s->reread_adj) {
		/* The peer gateway went on rewriting: the kernel's offsets are the current ones. */
		struct ct_info ct;
		s->reread_adj = false;
		if (a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &ct) == 0)
			for (int d = 0; d < 2; d++)
				if (ct.seqadj_present[d] && !s->dir[d].started)
					stream_set_adj(&s->dir[d], ct.corr_pos[d], ct.off_before[d], ct.off_after[d]);
	}
	if (!s->dir[dir].started) {
		start_at(s, dir, seq);
		if (dir == DIR_ORIG) {
			s->join_first_line = true;
			s->dir[dir].scrub_next = true;
		}
	}
	if (s->dir[DIR_ORIG].started && s->dir[DIR_REPLY].started)
		s->join_at_start = false;
}

/* The verdicts for one packet into v; returns the session whose stream result is outstanding, if any. */
/* The session's conntrack is still there (with the same id, where known). */
static bool still_tracked(struct alg *a, const struct session *s)
{
	struct ct_info ct;
	return a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &ct) == 0 &&
	       (!s->has_ct_id || !ct.has_id || ct.id == s->ct_id);
}

/*
 * A FIN or RST that is not exactly in order ends the session only if
 * conntrack took it: a stranger's in-window RST that the server ignores
 * (RFC 5961) leaves the conntrack established, and so the session and its
 * pinholes. (TCP_CONNTRACK_FIN_WAIT and later are the closing states.)
 */
static bool closed_by_conntrack(struct alg *a, const struct session *s)
{
	struct ct_info ct;
	int r = a->ops->ct_get(a->kernel, &s->orig, DIR_ORIG, &ct);
	if (r == -ENOENT || (r == 0 && s->has_ct_id && ct.has_id && ct.id != s->ct_id))
		return true;
	/*
	 * Conntrack moves to FIN_WAIT on any in-window FIN, which the endpoint
	 * may still drop: only TIME_WAIT (7) and CLOSE (8) are its word that the
	 * connection is over. An error tells nothing: the session stays.
	 */
	return r == 0 && ct.has_tcp_state && ct.tcp_state >= 7;
}

static struct session *packet(struct alg *a, int dir, uint32_t id, const uint8_t *pkt, size_t len, time_t now,
			      struct alg_verdicts *v)
{
	struct pkt_info pi;
	struct stream_result res;

	a->now = now;
	a->ctr.packets++;
	/*
	 * Only TCP to or from a control port reaches this queue, and the kernel
	 * has already reassembled fragments and completed local checksums. What
	 * cannot be parsed (IPv6 extension headers, bad lengths) or fails its
	 * checksum is dropped, never passed on unread: a rewrite would give a
	 * corrupt segment a valid checksum, and an unread PORT could bounce.
	 */
	int pr = pkt_parse(pkt, len, &pi);
	if (pr < 0 || ((pi.payload_len || (pi.flags & PKT_TCP_SYN)) && !pkt_checksum_ok(pkt, len, &pi))) {
		const char *why = pr < 0 ? "unparseable-packet" : "bad-checksum";
		count_refusal(a, why);
		a->ctr.dropped++;
		if (log_gate(a, NULL)) {
			char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
			if (pr < 0)
				log_msg(LOG_LVL_WARN, "event=dropped reason=%s length=%zu error=\"%s\"", why, len,
					strerror(-pr));
			else
				log_msg(LOG_LVL_WARN, "event=dropped reason=%s src=%s:%u dst=%s:%u", why,
					addr_str(pi.family, pi.saddr, sa, sizeof(sa)), pi.sport,
					addr_str(pi.family, pi.daddr, da, sizeof(da)), pi.dport);
		}
		add_verdict(v, id, false, NULL, 0);
		return NULL;
	}
	const char *refuse = NULL;
	struct session *s = lookup_or_create(a, dir, &pi, &refuse);
	if (s && is_new_incarnation(a, s, dir, &pi)) {
		/*
		 * The client reuses the ports of a connection that ended (Linux does
		 * within milliseconds); the kernel starts a new conntrack, and so do
		 * we: the old stream's sequence numbers would drop the new one's data.
		 */
		log_msg(LOG_LVL_DEBUG, "session=%llu event=replaced reason=\"a new connection on its ports\"",
			(unsigned long long)s->id);
		session_free(a, s);
		s = lookup_or_create(a, dir, &pi, &refuse);
	}
	if (!s) {
		if (refuse) {
			/*
			 * Over a session limit, or a connection neither seen from its SYN nor
			 * adoptable: its packet goes no further, so that nothing passes unread.
			 */
			count_refusal(a, refuse);
			a->ctr.dropped++;
			if (log_gate(a, NULL)) {
				char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
				log_msg(LOG_LVL_WARN, "event=dropped reason=%s src=%s:%u dst=%s:%u", refuse,
					addr_str(pi.family, pi.saddr, sa, sizeof(sa)), pi.sport,
					addr_str(pi.family, pi.daddr, da, sizeof(da)), pi.dport);
			}
		}
		add_verdict(v, id, !refuse, NULL, 0);
		return NULL;
	}
	s->last_seen = now;
	s->packets++;
	if (pi.flags & PKT_TCP_SYN) {
		if (pi.payload_len) {
			/*
			 * Data on a SYN (TCP Fast Open) would reach a server that takes it
			 * before anything here read it: dropped, and the client resends the
			 * SYN without it.
			 */
			count_refusal(a, "data-on-SYN");
			a->ctr.dropped++;
			add_verdict(v, id, false, NULL, 0);
			return NULL;
		}
		/* Only the first: a SYN later in the connection never resets the parser (see stream_syn). */
		stream_syn(&s->dir[dir], pi.seq);
		syn_verdict(a, id, pkt, len, &pi, v);
		return NULL;
	}
	/*
	 * The server's bare SYN-ACK does not cross the queue (the kernel lowers
	 * its MSS): its stream starts at the first byte seen. If an earlier
	 * segment of the greeting arrives later, it goes on as sent (a server's
	 * bytes before the ring are never parsed again), and at worst the first
	 * line is misread; no PASV has been sent yet for it to answer.
	 */
	if (s->join_at_start && pi.payload_len > 0) {
		join_stream(a, s, dir, pi.seq);
	} else if (dir == DIR_REPLY && !s->dir[dir].started && pi.payload_len > 0) {
		start_at(s, dir, pi.seq);
	}
	s->cur_dir = dir;
	set_hold_cap(a, s, dir);
	s->dir[dir].cur_fin = pi.flags & PKT_TCP_FIN;
	unsigned held_before = s->dir[dir].nheld;
	/*
	 * A FIN or RST exactly where the receiver's stream stands is one the
	 * endpoint itself takes (RFC 5961): that is the first held byte, if any,
	 * since held bytes have not reached it.
	 */
	const struct stream *st = &s->dir[dir];
	bool in_order = st->started && pi.seq == (st->nheld ? st->held[0].seq : st->next_seq);
	stream_segment(&s->dir[dir], &policy_stream_ops, s, id, pi.seq, pkt, len, pi.payload_off, pi.payload_len, &res);
	count_held(a, s, (int)s->dir[dir].nheld - (int)held_before);
	if (res.reason == STREAM_HOLD_FULL) {
		count_refusal(a, "hold-limit");
		if (log_gate(a, s))
			log_msg(LOG_LVL_WARN, "session=%llu event=hold-limit held=%u client_held=%u effect=\"%s\"",
				(unsigned long long)s->id, a->nheld, s->peer->nheld,
				dir == DIR_ORIG ? "partial line released with its verb neutralized"
						: "partial line released unmodified");
	}
	if (res.hold_current && !s->held_since[dir])
		s->held_since[dir] = now;
	if (!res.hold_current && s->dir[dir].nheld == 0)
		s->held_since[dir] = 0;
	to_verdicts(a, s, dir, &res, pkt, len, (pi.flags & PKT_TCP_URG) && pi.payload_len, v);

	if ((pi.flags & (PKT_TCP_RST | PKT_TCP_FIN)) && !s->released) {
		if (pi.flags & PKT_TCP_FIN)
			s->fin_taken[dir] |= in_order;
		bool ct_closed = !in_order && closed_by_conntrack(a, s);
		bool taken = in_order || ct_closed;
		if (!s->closing && taken) {
			s->closing = true;
			s->closed_at = now;
			/* Removed at the next tick with every other ended session's: one change a second. */
			holes_retire_all(&a->book, &s->holes, a->now);
			log_msg(LOG_LVL_DEBUG, "session=%llu event=close rewrites=%llu packets=%llu",
				(unsigned long long)s->id, (unsigned long long)s->rewrites,
				(unsigned long long)s->packets);
		}
		/*
		 * Out of the session limits only once it is over for both ends: one
		 * in-order FIN may still be refused by its endpoint (PAWS drops one
		 * with an old timestamp, which conntrack does not check), and a
		 * client could then keep a live connection outside its limit.
		 */
		if (taken && (ct_closed || (pi.flags & PKT_TCP_RST) || (s->fin_taken[0] && s->fin_taken[1])))
			session_leave_limits(a, s);
	}
	return s;
}

void alg_packet(struct alg *a, int dir, uint32_t id, const uint8_t *pkt, size_t len, time_t now, alg_emit_fn emit,
		void *ctx)
{
	struct alg_verdicts v = {.dir = dir};
	struct session *s = packet(a, dir, id, pkt, len, now, &v);
	emit(ctx, &v);
	/* The verdicts are out: the copies behind released held segments and the rebuilt packets may go. */
	if (s) {
		stream_result_done(&s->dir[0], NULL);
		stream_result_done(&s->dir[1], NULL);
	}
	a->pktbuf_used = 0;
}

/* Which pinholes were used: the kernel's list of armed ones, read against every session's. */
void alg_tick(struct alg *a, time_t now, alg_emit_fn emit, void *ctx)
{
	a->now = now;
	log_gate_report(a);
	/* Which pinholes were used: the kernel's list of armed ones, read against every session's. */
	bool read = holes_account_begin(&a->book, now);
	if (read)
		for (struct session *s = a->all; s; s = s->next_all)
			holes_account(&a->book, &s->holes, now);
	struct session *next;
	for (struct session *s = a->all; s; s = next) {
		next = s->next_all;
		for (int d = 0; d < 2; d++)
			if (s->held_since[d] && now - s->held_since[d] >= HOLD_TIMEOUT) {
				/*
				 * A line held this long is split finer than its sender's window allows.
				 * A reply goes out untouched (it opens nothing); a PORT/EPRT would reach
				 * the server unchecked, so its verb is neutralized as for a refused one.
				 */
				bool client = d == DIR_ORIG;
				if (log_gate(a, s))
					log_msg(LOG_LVL_INFO, "session=%llu event=hold-timeout effect=\"%s\"",
						(unsigned long long)s->id,
						client ? "released with its verb neutralized" : "released unmodified");
				if (client)
					count_refusal(a, "PORT-split-too-fine");
				s->dir[d].line_long = true;
				flush_dir(a, s, d, emit, ctx, client);
			}
		holes_expire(&a->book, &s->holes, now);
		/*
		 * A closed session's server may still have answered a PASV sent before
		 * the close; kept in the session until now, that pinhole replaced any
		 * older one of it (MaxPinholesPerSession), and goes with the others.
		 */
		if (s->closing && (s->holes.n || s->holes.nresv))
			holes_retire_all(&a->book, &s->holes, now);
		/*
		 * A session goes with its conntrack, never before: one whose client
		 * is quiet through a long transfer could not be adopted again. Quiet
		 * sessions (half-open ones of a SYN flood among them) and closed
		 * ones are asked about, at most once per interval each.
		 */
		time_t every = s->closing ? CLOSED_LINGER : QUIET_CHECK;
		bool ask = s->closing ? now - s->closed_at >= CLOSED_LINGER : now - s->last_seen >= QUIET_CHECK;
		if (ask && now - s->checked_at >= every && !s->held_since[0] && !s->held_since[1]) {
			s->checked_at = now;
			if (!still_tracked(a, s))
				session_free(a, s);
		}
	}
	/* Every pinhole retired up to now leaves the kernel in one change. */
	holes_retired(&a->book, now);
	if (read)
		holes_account_end(&a->book);
	peers_reap(a);
}

/*
 * Another gateway may have carried these connections meanwhile (takeover):
 * what was held is released as on shutdown, sessions whose conntrack is gone
 * are forgotten, and the others keep what was learnt of them (greeting,
 * first line, not FTP, opaque, armed pinholes) but restart their streams at
 * the next segment, with the offsets conntrack has then.
 */
unsigned alg_takeover(struct alg *a, time_t now, alg_emit_fn emit, void *ctx)
{
	unsigned kept = 0;
	struct session *next;
	a->now = now;
	for (struct session *s = a->all; s; s = next) {
		next = s->next_all;
		for (int d = 0; d < 2; d++)
			flush_dir(a, s, d, emit, ctx, d == DIR_ORIG);
		if (s->closing || !still_tracked(a, s)) {
			session_free(a, s);
			continue;
		}
		for (unsigned i = 0; i < s->npending; i++) {
			struct pending *p = &s->pending[(s->pending_head + i) % PENDING_MAX];
			if (p->has_hole)
				holes_release(&a->book, &s->holes, &p->hole);
		}
		s->npending = s->untracked = s->pending_head = 0;
		s->multiline = false;
		for (int d = 0; d < 2; d++) {
			bool opaque = s->dir[d].opaque;
			stream_free(&s->dir[d]);
			stream_init(&s->dir[d]);
			s->dir[d].opaque = opaque;
			s->held_since[d] = 0;
		}
		s->dir[DIR_ORIG].neutralize = true;
		s->join_at_start = true;
		s->reread_adj = true;
		log_msg(LOG_LVL_DEBUG, "session=%llu event=rejoin reason=takeover", (unsigned long long)s->id);
		kept++;
	}
	return kept;
}

void alg_shutdown(struct alg *a, alg_emit_fn emit, void *ctx)
{
	for (struct session *s = a->all; s; s = s->next_all)
		for (int d = 0; d < 2; d++)
			flush_dir(a, s, d, emit, ctx, d == DIR_ORIG);
	while (a->all)
		session_free(a, a->all);
}
