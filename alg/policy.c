/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FTP policy: what each control line means, which may be rewritten,
 * and which pinholes it arms. Called by the stream for every complete line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "session_int.h"

/*
 * Replies come in command order. Past PENDING_MAX outstanding commands the
 * newer ones are only counted, and so is every command after them until
 * their replies have passed, so pairing never slips.
 */
static struct pending *pending_push(struct session *s, enum ftp_verb v)
{
	if (s->npending == PENDING_MAX || s->untracked) {
		s->untracked++;
		return NULL;
	}
	struct pending *p = &s->pending[(s->pending_head + s->npending) % PENDING_MAX];
	*p = (struct pending){.verb = v};
	s->npending++;
	return p;
}

static enum ftp_verb pending_peek(const struct session *s)
{
	return s->npending ? s->pending[s->pending_head].verb : FTP_VERB_OTHER;
}

static void pending_pop(struct session *s)
{
	if (s->npending) {
		s->pending_head = (s->pending_head + 1) % PENDING_MAX;
		s->npending--;
	}
}

/*
 * The public port for an announced one; nothing is armed yet. Passive: the
 * client may connect to the address it reached the server at, DNATed to the
 * server. Active: the server may connect to the client's public address,
 * DNATed to the client.
 */
static int choose_pinhole(struct session *s, bool active, const uint8_t *target, uint16_t target_port,
			  struct pinhole *out)
{
	/*
	 * Without NAT the published port must differ from the real one: the
	 * port change makes the data connection a DNAT flow, which the usual
	 * "ct status dnat accept" admits through a drop policy.
	 */
	bool remap = active ? !s->snat : !s->dnat;
	struct pinhole p = {.family = s->orig.family,
			    .port = target_port,
			    .target_port = target_port,
			    .timeout = s->alg->cfg.pinhole_timeout,
			    .active = active};
	size_t l = flow_addr_len(p.family);
	memcpy(p.client, active ? s->reply.saddr : s->orig.saddr, l);
	memcpy(p.local, active ? s->reply.daddr : s->orig.daddr, l);
	memcpy(p.target, target, l);
	int r = holes_choose_port(&s->alg->book, &s->holes, &p, active ? 0 : s->passive_lo, s->passive_hi, remap,
				  s->alg->now);
	if (r == 0)
		*out = p;
	return r;
}

/* Arm a chosen pinhole; only done once the rewritten line is certain to go out. */
static int arm_pinhole(struct session *s, const struct pinhole *p)
{
	int r = holes_arm(&s->alg->book, &s->holes, p, s->alg->now);
	if (r == -ESTALE || r == -ENOSPC) {
		/* A peer can cause these: gated. */
		if (log_gate(s->alg, s))
			log_msg(LOG_LVL_INFO, "session=%llu event=pinhole-not-armed port=%u reason=%s",
				(unsigned long long)s->id, p->port,
				r == -ESTALE ? "replaced-by-a-newer-announcement" : "pinhole-limit");
	} else if (r < 0) {
		log_msg(LOG_LVL_ERR, "session=%llu event=pinhole-failed port=%u error=\"%s\"",
			(unsigned long long)s->id, p->port, strerror(-r));
	}
	return r;
}

static void log_rewrite(struct session *s, const char *what, const char *old, size_t oldlen, const char *neu,
			size_t newlen, uint16_t published)
{
	char e1[200], e2[200], pub[INET6_ADDRSTRLEN], srv[INET6_ADDRSTRLEN], cli[INET6_ADDRSTRLEN];
	const struct alg *a = s->alg;
	const uint8_t *pa = s->has_advertise ? s->advertise : s->orig.daddr;

	if (!log_gate(s->alg, s))
		return;
	log_msg(LOG_LVL_INFO,
		"session=%llu event=%s client=%s public=%s:%u server=%s pinhole=%us old=\"%s\" new=\"%s\"",
		(unsigned long long)s->id, what, addr_str(s->orig.family, s->orig.saddr, cli, sizeof(cli)),
		addr_str(s->orig.family, pa, pub, sizeof(pub)), published,
		addr_str(s->reply.family, s->reply.saddr, srv, sizeof(srv)), a->cfg.pinhole_timeout,
		log_escape(old, oldlen, e1, sizeof(e1)), log_escape(neu, newlen, e2, sizeof(e2)));
}

static void log_refusal(struct session *s, const char *reason, const char *line, size_t len)
{
	char e[200];
	struct alg *a = s->alg;
	count_refusal(a, reason);
	if (!log_gate(a, s))
		return;
	log_msg(LOG_LVL_WARN, "session=%llu event=refused reason=%s line=\"%s\"", (unsigned long long)s->id, reason,
		log_escape(line, len, e, sizeof(e)));
}

/* Room the stream leaves for shrinking; without seqadj, the length must not change at all. */
static size_t min_len_for(bool seqadj, size_t span_len, size_t max_shrink)
{
	if (!seqadj)
		return span_len;
	return span_len > max_shrink ? span_len - max_shrink : 0;
}

/*
 * The line with span replaced by ep in form f, within the length the
 * stream allows: without seqadj exactly as long as before. Negative if it
 * cannot be.
 */
static int rewrite_span(struct session *s, enum ftp_form f, const struct ftp_endpoint *ep, const char *line, size_t len,
			struct ftp_span span, size_t max_shrink, char *out, size_t cap)
{
	char rep[96];
	bool seqadj = session_seqadj_ok(s);
	int n = ftp_format(f, ep, line[span.off], min_len_for(seqadj, span.len, max_shrink), rep, sizeof(rep));
	if (n < 0 || (!seqadj && (size_t)n != span.len) || len - span.len + (size_t)n > cap)
		return -ERANGE;
	return ftp_splice(line, len, span, rep, (size_t)n, out, cap);
}

/*
 * A 227/229 with span replaced by ep: at its own length where its free text
 * allows (no sequence offset, no ctnetlink update), else as rewrite_span.
 */
static int rewrite_reply(struct session *s, enum ftp_form f, const struct ftp_endpoint *ep, const char *line,
			 size_t len, struct ftp_span span, size_t max_shrink, char *out, size_t cap)
{
	char rep[96];
	int n = ftp_format(f, ep, line[span.off], 0, rep, sizeof(rep));
	if (n > 0 && s->alg->cfg.keep_reply_length) {
		int k = ftp_splice_keep_len(line, len, span, rep, (size_t)n, out, cap);
		if (k >= 0)
			return k;
	}
	return rewrite_span(s, f, ep, line, len, span, max_shrink, out, cap);
}

/* A 227 or 229 (reply r): the client may connect to a public port, DNATed to the one the server announced. */
static int reply_passive(struct session *s, const struct ftp_reply *r, const char *line, size_t len, size_t max_shrink,
			 char *out, size_t cap)
{
	struct alg *a = s->alg;
	struct ftp_endpoint ep;
	struct ftp_span span;

	if (r->parse(line, len, &ep, &span) < 0) {
		log_refusal(s, r->malformed, line, len);
		return -1;
	}
	if (!s->have_reply)
		return -1;
	/* A 227 names the server's address too; a 229 only the port. */
	bool names_host = r->form != FTP_FORM_PORT;
	if (names_host) {
		if (s->orig.family != ep.family)
			return -1;
		if (memcmp(ep.addr, s->reply.saddr, flow_addr_len(ep.family)) != 0) {
			log_refusal(s, r->other_host, line, len);
			return -1;
		}
	}
	if ((!s->dnat && !s->routed_in_passive) || s->no_rewrite)
		return -1;
	/* RFC 2577: a data port below the floor would be a well-known service of the server's host. */
	if (ep.port < a->cfg.min_data_port) {
		log_refusal(s, r->below_floor, line, len);
		return -1;
	}
	const char *limit = holes_limit(&a->book, &s->holes, false);
	if (limit) {
		log_refusal(s, limit, line, len);
		return -1;
	}
	struct pinhole hole;
	uint16_t published;
	int n, armed;
	/* The line has not left yet: a key the kernel already has (EEXIST) gets another port and rewrite. */
	for (int tries = 0;; tries++) {
		if (choose_pinhole(s, false, s->reply.saddr, ep.port, &hole) < 0) {
			log_refusal(s, "no-free-public-port", line, len);
			return -1;
		}
		published = hole.port;
		if (!names_host && published == ep.port) {
			/* Nothing in the line changes. */
			armed = arm_pinhole(s, &hole);
			if (armed == 0)
				log_rewrite(s, r->event, line, len, line, len, published);
			if (armed == -EEXIST && tries < 3)
				continue;
			return -1;
		}
		struct ftp_endpoint pub = {.family = s->orig.family, .port = published};
		memcpy(pub.addr, s->has_advertise ? s->advertise : s->orig.daddr, flow_addr_len(pub.family));
		n = rewrite_reply(s, r->form, &pub, line, len, span, max_shrink, out, cap);
		if (n < 0) {
			holes_release(&a->book, &s->holes, &hole);
			log_refusal(s, r->too_long, line, len);
			return -1;
		}
		armed = arm_pinhole(s, &hole);
		if (armed != -EEXIST || tries >= 3)
			break;
	}
	if (armed < 0)
		return -1;
	s->rewrites++;
	a->ctr.rewrites++;
	log_rewrite(s, r->event, line, len, out, (size_t)n, published);
	return n;
}

static void go_opaque(struct session *s, int code)
{
	s->dir[0].opaque = true;
	s->dir[1].opaque = true;
	if (log_gate(s->alg, s))
		log_msg(LOG_LVL_INFO,
			"session=%llu event=opaque reason=\"AUTH accepted (%d); the connection is encrypted\"",
			(unsigned long long)s->id, code);
}

/*
 * A connection that does not speak FTP (NAT slipstreaming: an HTTP request
 * on a control port) is never parsed for what it would open: no reply is
 * read and no pinhole stays. Its client lines are still read, so that no
 * PORT/EPRT/LPRT on it reaches a server with its verb intact.
 */
static void go_not_ftp(struct session *s, const char *reason, const char *why, const char *line, size_t len)
{
	char e[120];
	s->not_ftp = true;
	holes_remove_all(&s->alg->book, &s->holes, s->alg->now);
	for (unsigned i = 0; i < PENDING_MAX; i++)
		s->pending[i].has_hole = false;
	count_refusal(s->alg, reason);
	if (!log_gate(s->alg, s))
		return;
	log_msg(LOG_LVL_WARN, "session=%llu event=opaque reason=\"%s\" line=\"%s\"", (unsigned long long)s->id, why,
		log_escape(line, len, e, sizeof(e)));
}

/*
 * A PORT/EPRT that fails a check opens nothing and must not reach the
 * server as is (a server that obeys any PORT would connect to the named
 * host): its verb becomes one no server knows, so the server answers 500.
 */
static int neutralize(struct session *s, const char *reason, const char *line, size_t len, char *out, size_t cap)
{
	log_refusal(s, reason, line, len);
	if (len > cap || len < 4)
		return -1;
	memcpy(out, line, len);
	memcpy(out, "XXXX", 4);
	return (int)len;
}

static void log_active(struct session *s, const struct pinhole *h)
{
	char srv[INET6_ADDRSTRLEN], pub[INET6_ADDRSTRLEN], cli[INET6_ADDRSTRLEN];
	if (!log_gate(s->alg, s))
		return;
	log_msg(LOG_LVL_INFO, "session=%llu event=port-armed server=%s public=%s:%u client=%s:%u pinhole=%us",
		(unsigned long long)s->id, addr_str(h->family, h->client, srv, sizeof(srv)),
		addr_str(h->family, h->local, pub, sizeof(pub)), h->port,
		addr_str(h->family, h->target, cli, sizeof(cli)), h->target_port, h->timeout);
}

/* A line the server sent; with may false it has gone out already and can only be counted. */
static int server_line(struct session *s, const char *line, size_t len, size_t max_shrink, char *out, size_t cap,
		       bool may)
{
	char sep;
	int code = ftp_reply_code(line, len, &sep);
	bool multiline = false;

	if (s->not_ftp)
		return -1;
	if (s->multiline) {
		if (code != s->multiline_code || sep != ' ')
			return -1;
		s->multiline = false;
		multiline = true;
	} else {
		if (code < 0)
			return -1;
		if (sep == '-') {
			s->multiline = true;
			s->multiline_code = code;
			return -1;
		}
	}
	if (code < 200)
		return -1;
	if (!s->greeted) {
		if (code == 220)
			s->greeted = true;
		return -1;
	}
	/*
	 * 234 accepts AUTH and nothing else: TLS follows, whatever the pairing
	 * says. Any other code leaves the session parsed, so a client that
	 * slips the pairing (a line the server never answers) gains nothing.
	 */
	if (code == 234) {
		go_opaque(s, code);
		return -1;
	}
	if (s->npending == 0) {
		if (s->untracked) {
			s->untracked--;
			if (ftp_code_announces(code))
				log_refusal(s, "pipelined-too-deep", line, len);
		}
		return -1;
	}
	struct pending pend = s->pending[s->pending_head];
	const struct ftp_reply *r = ftp_reply_find(pend.verb, code);
	pending_pop(s);
	if (pend.verb == FTP_VERB_AUTH && code == 334) {
		/* AUTH GSSAPI (RFC 2228): ADAT exchanges, then protected commands. */
		go_opaque(s, code);
		return -1;
	}
	if ((pend.verb == FTP_VERB_USER || pend.verb == FTP_VERB_PASS || pend.verb == FTP_VERB_ACCT) &&
	    (code == 230 || code == 232))
		s->logged_in = true;
	if (pend.has_hole) {
		/* The server accepted the PORT/EPRT: only now may it connect back. */
		if (r && r->effect == FTP_ACCEPTS_PORT) {
			if (arm_pinhole(s, &pend.hole) == 0)
				log_active(s, &pend.hole);
		} else {
			holes_release(&s->alg->book, &s->holes, &pend.hole);
		}
		return -1;
	}
	if (!r || r->effect != FTP_ANNOUNCES_PORT)
		return -1;
	/* A 227/229 must stand alone, whole and rewritable: anything else opens nothing. */
	if (multiline) {
		log_refusal(s, "multi-line-reply-announces-port", line, len);
		return -1;
	}
	if (!may) {
		log_refusal(s, "reply-released-before-complete", line, len);
		return -1;
	}
	return reply_passive(s, r, line, len, max_shrink, out, cap);
}

/* A PORT or EPRT (command c): the server may connect to a public port, DNATed to the client's. */
static int client_port(struct session *s, const struct ftp_command *c, const char *line, size_t len, size_t max_shrink,
		       char *out, size_t cap, struct pending *pend)
{
	struct alg *a = s->alg;
	struct ftp_endpoint ep;
	struct ftp_span span;

	if (c->parse(line, len, &ep, &span) < 0)
		return neutralize(s, c->refusal, line, len, out, cap);
	if (ep.family != s->orig.family)
		return neutralize(s, "EPRT-family-mismatch", line, len, out, cap);
	if (memcmp(ep.addr, s->orig.saddr, flow_addr_len(ep.family)) != 0)
		return neutralize(s, "PORT-names-other-host", line, len, out, cap);
	if (ep.port < a->cfg.min_data_port)
		return neutralize(s, "PORT-below-floor", line, len, out, cap);
	if (!s->have_reply || (!s->snat && !s->routed_in_active))
		return -1;

	const char *limit = holes_limit(&a->book, &s->holes, true);
	if (limit)
		return neutralize(s, limit, line, len, out, cap);
	struct pinhole hole;
	if (choose_pinhole(s, true, s->orig.saddr, ep.port, &hole) < 0)
		return neutralize(s, "no-free-public-port", line, len, out, cap);
	struct ftp_endpoint pub = {.family = ep.family, .port = hole.port};
	memcpy(pub.addr, s->reply.daddr, flow_addr_len(ep.family));
	int n = rewrite_span(s, c->form, &pub, line, len, span, max_shrink, out, cap);
	if (n < 0) {
		holes_release(&a->book, &s->holes, &hole);
		log_refusal(s, c->too_long, line, len);
		return -1;
	}
	pend->has_hole = true;
	pend->hole = hole;
	s->rewrites++;
	a->ctr.rewrites++;
	char e1[200], e2[200];
	if (log_gate(a, s))
		log_msg(LOG_LVL_INFO, "session=%llu event=%s old=\"%s\" new=\"%s\"", (unsigned long long)s->id,
			c->event, log_escape(line, len, e1, sizeof(e1)), log_escape(out, (size_t)n, e2, sizeof(e2)));
	return n;
}

/* A line the client sent; with may false it has gone out already and can only be counted. */
static int client_line(struct session *s, const char *line, size_t len, size_t max_shrink, char *out, size_t cap,
		       bool may)
{
	if (!s->client_spoke) {
		s->client_spoke = true;
		/* NAT slipstreaming and pinning: a connection that does not open like FTP is never parsed. */
		if (!s->greeted)
			go_not_ftp(s, "not-ftp", "the client spoke before the 220 greeting", line, len);
		else if (ftp_http_shaped(line, len))
			go_not_ftp(s, "http-on-control-port", "the first client line is HTTP", line, len);
		else if (!ftp_plausible_first_command(line, len))
			go_not_ftp(s, "not-ftp", "the first client line is not an FTP command", line, len);
	} else if (!s->not_ftp && !s->logged_in && ftp_http_shaped(line, len)) {
		/* A browser's request with an FTP-like method, then its header fields. */
		go_not_ftp(s, "http-on-control-port", "an HTTP-shaped line before login", line, len);
	}
	/*
	 * The first client line after a join (adoption, takeover) may begin with
	 * bytes the server already has, which its TCP drops: any PORT/EPRT/LPRT
	 * inside the line could be the start of the server's line.
	 */
	if (s->join_first_line) {
		s->join_first_line = false;
		if (may && len <= cap && ftp_scrub_verbs(line, len, 1, out) > 0) {
			/* The whole line's verbs, its own included: it is no command to check. */
			ftp_scrub_verbs(line, len, 0, out);
			log_refusal(s, "verb-inside-first-line-after-join", line, len);
			return (int)len;
		}
	}
	/*
	 * Two readings: as sent, and as a server that drops Telnet commands and
	 * leading white space sees it. Either one naming PORT/EPRT/LPRT counts.
	 */
	bool hidden;
	const struct ftp_command *seen = ftp_command_seen(line, len, &hidden);
	const struct ftp_command *c = ftp_command_find(line, len);
	if (!c)
		c = seen;
	hidden = hidden || seen != c;
	bool checked = (c && c->form != FTP_FORM_NONE) || (seen && seen->form != FTP_FORM_NONE);
	if (s->not_ftp) {
		if (!checked || !may)
			return -1;
		return neutralize(s, "PORT-on-non-FTP-connection", line, len, out, cap);
	}
	struct pending *p = pending_push(s, c ? c->verb : FTP_VERB_OTHER);
	/* Its verb went out already: the stream neutralized it if it could (hold limits). */
	if (!checked || !may)
		return -1;
	/* A server that drops Telnet commands or leading white space would see a verb not at the line's start. */
	if (hidden)
		return neutralize(s, memchr(line, 0xff, len) ? "telnet-command-in-PORT" : "space-before-PORT", line,
				  len, out, cap);
	if (c->form == FTP_FORM_UNSUPPORTED)
		return neutralize(s, c->refusal, line, len, out, cap);
	if (!p)
		return neutralize(s, "pipelined-too-deep", line, len, out, cap);
	return client_port(s, c, line, len, max_shrink, out, cap, p);
}

static int on_line(void *ctx, const char *line, size_t len, size_t max_shrink, char *out, size_t cap, bool may)
{
	struct session *s = ctx;
	if (s->cur_dir == DIR_ORIG)
		return client_line(s, line, len, max_shrink, out, cap, may);
	return server_line(s, line, len, max_shrink, out, cap, may);
}

static bool may_rewrite(void *ctx, const char *line, size_t len)
{
	struct session *s = ctx;
	if (s->cur_dir == DIR_ORIG) {
		/*
		 * Any PORT/EPRT/LPRT may be rewritten or neutralized: hold it whole,
		 * also where its verb hides behind Telnet commands or white space.
		 */
		return ftp_command_may_be_checked(line, len);
	}
	if (s->not_ftp || s->multiline || !s->greeted || (!s->dnat && !s->routed_in_passive))
		return false;
	const struct ftp_reply *r = ftp_reply_announcing(pending_peek(s));
	return r && ftp_reply_may_be(r, line, len);
}

const struct stream_ops policy_stream_ops = {.may_rewrite = may_rewrite, .line = on_line};
