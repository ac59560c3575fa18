/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What "ftp-alg status" shows: every worker's sessions, pinholes and counters, as text, JSON or Prometheus metrics. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "session_int.h"

/* What both renderings show, gathered once over all workers. */
struct summary {
	struct alg *const *v;
	unsigned nv;
	const struct alg_config *cfg; /* the first worker's; all share it */
	time_t now;
	long long uptime;
	const char *version;
	const char *queue_path;
	unsigned first_queue, last_queue;
	unsigned nsessions, nholes;
	struct alg_counters c; /* the workers' counters added up; refusal reasons merged by name */
};

static void gather(struct alg *const *v, unsigned nv, time_t now, const char *version, const char *queue_path,
		   struct summary *sum)
{
	memset(sum, 0, sizeof(*sum));
	sum->v = v;
	sum->nv = nv;
	sum->cfg = &v[0]->cfg;
	sum->now = now;
	sum->uptime = (long long)(now - v[0]->started);
	sum->version = version;
	sum->queue_path = queue_path;
	sum->first_queue = v[0]->cfg.queue;
	sum->last_queue = v[0]->cfg.queue + 2 * nv - 1;
	for (unsigned w = 0; w < nv; w++) {
		const struct alg_counters *c = &v[w]->ctr;
		sum->nsessions += open_sessions(v[w]);
		sum->nholes += v[w]->book.n;
		sum->c.packets += c->packets;
		sum->c.sessions += c->sessions;
		sum->c.rewrites += c->rewrites;
		sum->c.pinholes += c->pinholes;
		sum->c.pinholes_used += c->pinholes_used;
		sum->c.pinholes_expired += c->pinholes_expired;
		sum->c.pinholes_closed += c->pinholes_closed;
		sum->c.refused += c->refused;
		sum->c.dropped += c->dropped;
		sum->c.errors += c->errors;
		for (unsigned i = 0; i < ALG_REASONS_MAX && c->refusals[i].reason; i++)
			for (unsigned j = 0; j < ALG_REASONS_MAX; j++) {
				if (!sum->c.refusals[j].reason)
					sum->c.refusals[j].reason = c->refusals[i].reason;
				if (strcmp(sum->c.refusals[j].reason, c->refusals[i].reason) == 0) {
					sum->c.refusals[j].count += c->refusals[i].count;
					break;
				}
			}
	}
}

static const char *state_name(const struct session *s)
{
	return s->closing ? "closing" : s->dir[0].opaque ? "encrypted" : "open";
}

static const char *nat_name(const struct session *s)
{
	return s->dnat ? (s->snat ? "dnat+snat" : "dnat") : s->snat ? "snat" : "routed";
}

static void put_endpoint(FILE *f, int family, const uint8_t *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN];
	addr_str(family, addr, a, sizeof(a));
	if (family == AF_INET6)
		fprintf(f, "[%s]:%u", a, port);
	else
		fprintf(f, "%s:%u", a, port);
}

static void put_json_endpoint(FILE *f, const char *key, int family, const uint8_t *addr, uint16_t port)
{
	fprintf(f, "\"%s\":\"", key);
	put_endpoint(f, family, addr, port);
	fputc('"', f);
}

static void json_session(FILE *f, const struct summary *sum, unsigned worker, const struct session *s, bool first)
{
	fprintf(f, "%s{\"id\":%llu,\"worker\":%u,", first ? "" : ",", (unsigned long long)s->id, worker);
	put_json_endpoint(f, "client", s->orig.family, s->orig.saddr, s->orig.sport);
	fputc(',', f);
	put_json_endpoint(f, "public", s->orig.family, s->orig.daddr, s->orig.dport);
	if (s->have_reply) {
		fputc(',', f);
		put_json_endpoint(f, "server", s->reply.family, s->reply.saddr, s->reply.sport);
	}
	fprintf(f,
		",\"state\":\"%s\",\"nat\":\"%s\",\"rewrites\":%llu,\"packets\":%llu,"
		"\"seq_offset\":{\"client\":%d,\"server\":%d},\"pinholes\":[",
		state_name(s), nat_name(s), (unsigned long long)s->rewrites, (unsigned long long)s->packets,
		s->dir[0].off_after, s->dir[1].off_after);
	for (unsigned i = 0; i < s->holes.n; i++) {
		const struct pinhole *p = &s->holes.v[i].p;
		char from[INET6_ADDRSTRLEN];
		fprintf(f, "%s{\"from\":\"%s\",", i ? "," : "", addr_str(p->family, p->client, from, sizeof(from)));
		put_json_endpoint(f, "public", p->family, p->local, p->port);
		fputc(',', f);
		put_json_endpoint(f, "to", p->family, p->target, p->target_port);
		fprintf(f, ",\"expires_in\":%lld}", (long long)(s->holes.v[i].expires - sum->now));
	}
	fprintf(f, "]}");
}

static void render_json(FILE *f, const struct summary *sum, const char *extra)
{
	const struct alg_config *cfg = sum->cfg;
	const struct alg_counters *c = &sum->c;

	fprintf(f, "{\"version\":\"%s\",\"uptime\":%lld,\"queue_path\":\"%s\",\"table\":\"%s\",", sum->version,
		sum->uptime, sum->queue_path, cfg->table);
	fprintf(f, "\"workers\":%u,\"queues\":[", sum->nv);
	for (unsigned q = sum->first_queue; q <= sum->last_queue; q++)
		fprintf(f, "%s%u", q == sum->first_queue ? "" : ",", q);
	fprintf(f, "],\"max_sessions\":%u,", cfg->max_sessions);
	fprintf(f, "\"pinholes_armed\":%u,\"max_pinholes\":%u,\"max_pinholes_per_client\":%u,", sum->nholes,
		cfg->max_pinholes, cfg->max_pinholes_per_client);
	fprintf(f,
		"\"counters\":{\"packets\":%llu,\"sessions\":%llu,\"rewrites\":%llu,"
		"\"pinholes_opened\":%llu,\"pinholes_used\":%llu,\"pinholes_expired\":%llu,"
		"\"pinholes_closed\":%llu,\"refused\":%llu,\"dropped\":%llu,\"errors\":%llu,\"refused_by_reason\":{",
		(unsigned long long)c->packets, (unsigned long long)c->sessions, (unsigned long long)c->rewrites,
		(unsigned long long)c->pinholes, (unsigned long long)c->pinholes_used,
		(unsigned long long)c->pinholes_expired, (unsigned long long)c->pinholes_closed,
		(unsigned long long)c->refused, (unsigned long long)c->dropped, (unsigned long long)c->errors);
	for (unsigned i = 0; i < ALG_REASONS_MAX && c->refusals[i].reason; i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", c->refusals[i].reason,
			(unsigned long long)c->refusals[i].count);
	fprintf(f, "}},\"per_worker\":[");
	for (unsigned w = 0; w < sum->nv; w++)
		fprintf(f, "%s{\"sessions\":%u,\"sessions_opened\":%llu,\"packets\":%llu}", w ? "," : "",
			open_sessions(sum->v[w]), (unsigned long long)sum->v[w]->ctr.sessions,
			(unsigned long long)sum->v[w]->ctr.packets);
	fprintf(f, "],");
	if (extra)
		fprintf(f, "%s,", extra);
	fprintf(f, "\"sessions\":[");
	bool first = true;
	for (unsigned w = 0; w < sum->nv; w++)
		for (const struct session *s = sum->v[w]->all; s; s = s->next_all) {
			json_session(f, sum, sum->v[w]->worker, s, first);
			first = false;
		}
	fprintf(f, "]}\n");
}

static void text_session(FILE *f, const struct summary *sum, const struct session *s)
{
	fprintf(f, "  #%llu ", (unsigned long long)s->id);
	put_endpoint(f, s->orig.family, s->orig.saddr, s->orig.sport);
	fputs(" -> ", f);
	put_endpoint(f, s->orig.family, s->orig.daddr, s->orig.dport);
	if (s->have_reply) {
		fputs(" (server ", f);
		put_endpoint(f, s->reply.family, s->reply.saddr, s->reply.sport);
		fputc(')', f);
	}
	fprintf(f, " %s, %llu rewrites, offsets client %+d server %+d\n", state_name(s),
		(unsigned long long)s->rewrites, s->dir[0].off_after, s->dir[1].off_after);
	for (unsigned i = 0; i < s->holes.n; i++) {
		const struct pinhole *p = &s->holes.v[i].p;
		char from[INET6_ADDRSTRLEN];
		fputs("      pinhole ", f);
		put_endpoint(f, p->family, p->local, p->port);
		fputs(" -> ", f);
		put_endpoint(f, p->family, p->target, p->target_port);
		fprintf(f, " for %s, %llds left\n", addr_str(p->family, p->client, from, sizeof(from)),
			(long long)(s->holes.v[i].expires - sum->now));
	}
}

static void render_text(FILE *f, const struct summary *sum, const char *extra)
{
	const struct alg_config *cfg = sum->cfg;
	const struct alg_counters *c = &sum->c;

	fprintf(f, "ftp-alg %s, up %llds, %u worker%s, queues %u-%u (%s), table inet %s\n", sum->version, sum->uptime,
		sum->nv, sum->nv == 1 ? "" : "s", sum->first_queue, sum->last_queue, sum->queue_path, cfg->table);
	fprintf(f, "sessions: %u (limit %u, %u per client)\n", sum->nsessions, cfg->max_sessions,
		cfg->max_sessions_per_client);
	fprintf(f, "pinholes armed: %u (limit %u, %u per client)\n", sum->nholes, cfg->max_pinholes,
		cfg->max_pinholes_per_client);
	for (unsigned w = 0; w < sum->nv; w++)
		for (const struct session *s = sum->v[w]->all; s; s = s->next_all)
			text_session(f, sum, s);
	fprintf(f,
		"counters: %llu packets, %llu sessions, %llu rewrites, pinholes %llu opened / %llu used / "
		"%llu expired / %llu closed unused, %llu refused",
		(unsigned long long)c->packets, (unsigned long long)c->sessions, (unsigned long long)c->rewrites,
		(unsigned long long)c->pinholes, (unsigned long long)c->pinholes_used,
		(unsigned long long)c->pinholes_expired, (unsigned long long)c->pinholes_closed,
		(unsigned long long)c->refused);
	for (unsigned i = 0; i < ALG_REASONS_MAX && c->refusals[i].reason; i++)
		fprintf(f, "%s%s %llu", i ? ", " : " (", c->refusals[i].reason,
			(unsigned long long)c->refusals[i].count);
	fprintf(f, "%s, %llu dropped, %llu errors\n", c->refusals[0].reason ? ")" : "", (unsigned long long)c->dropped,
		(unsigned long long)c->errors);
	if (extra)
		fputs(extra, f);
}

/* A label value: backslash, double quote and line feed escaped, as the exposition format wants. */
static void put_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void prom_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(FILE *f, const char *name, const char *type, const char *help, unsigned long long v)
{
	prom_head(f, name, type, help);
	fprintf(f, "%s %llu\n", name, v);
}

static void render_prometheus(FILE *f, const struct summary *sum, const char *extra)
{
	const struct alg_counters *c = &sum->c;

	prom_head(f, "ftp_alg_info", "gauge", "Version, queue path and table of the running daemon.");
	fputs("ftp_alg_info{version=\"", f);
	put_label(f, sum->version);
	fputs("\",queue_path=\"", f);
	put_label(f, sum->queue_path);
	fputs("\",table=\"", f);
	put_label(f, sum->cfg->table);
	fputs("\"} 1\n", f);
	prom_value(f, "ftp_alg_uptime_seconds", "gauge", "Seconds since the daemon started.",
		   (unsigned long long)(sum->uptime < 0 ? 0 : sum->uptime));
	prom_value(f, "ftp_alg_workers", "gauge", "Queue worker threads.", sum->nv);
	prom_value(f, "ftp_alg_sessions", "gauge", "Control connections followed now.", sum->nsessions);
	prom_value(f, "ftp_alg_sessions_max", "gauge", "MaxSessions.", sum->cfg->max_sessions);
	prom_value(f, "ftp_alg_pinholes_armed", "gauge", "Pinholes armed now.", sum->nholes);
	prom_value(f, "ftp_alg_pinholes_max", "gauge", "MaxPinholes.", sum->cfg->max_pinholes);
	prom_value(f, "ftp_alg_packets_total", "counter", "Packets queued to ftp-alg.", c->packets);
	prom_value(f, "ftp_alg_sessions_total", "counter", "Control connections followed since start.", c->sessions);
	prom_value(f, "ftp_alg_rewrites_total", "counter", "Lines rewritten.", c->rewrites);
	prom_value(f, "ftp_alg_pinholes_opened_total", "counter", "Pinholes armed since start.", c->pinholes);
	prom_value(f, "ftp_alg_pinholes_used_total", "counter", "Pinholes a data connection used.", c->pinholes_used);
	prom_value(f, "ftp_alg_pinholes_expired_total", "counter", "Pinholes that expired unused.",
		   c->pinholes_expired);
	prom_value(f, "ftp_alg_pinholes_closed_total", "counter", "Pinholes removed with their session.",
		   c->pinholes_closed);
	prom_head(f, "ftp_alg_refused_total", "counter", "Lines refused, by reason.");
	for (unsigned i = 0; i < ALG_REASONS_MAX && c->refusals[i].reason; i++) {
		fputs("ftp_alg_refused_total{reason=\"", f);
		put_label(f, c->refusals[i].reason);
		fprintf(f, "\"} %llu\n", (unsigned long long)c->refusals[i].count);
	}
	prom_value(f, "ftp_alg_dropped_total", "counter", "Packets dropped.", c->dropped);
	prom_value(f, "ftp_alg_errors_total", "counter", "Kernel errors.", c->errors);
	if (extra)
		fputs(extra, f);
}

void alg_totals(struct alg *const *v, unsigned nv, unsigned *sessions, unsigned *pinholes)
{
	*sessions = *pinholes = 0;
	for (unsigned w = 0; w < nv; w++) {
		*sessions += open_sessions(v[w]);
		*pinholes += v[w]->book.n;
	}
}

enum render { RENDER_TEXT, RENDER_JSON, RENDER_PROMETHEUS };

/* One summary of all workers, rendered one way; extra is the caller's (see session.h). */
static char *render(struct alg *const *v, unsigned nv, time_t now, enum render how, const char *version,
		    const char *queue_path, const char *extra)
{
	char *buf = NULL;
	size_t len = 0;
	if (nv == 0)
		return NULL;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	struct summary sum;
	gather(v, nv, now, version, queue_path, &sum);
	if (how == RENDER_PROMETHEUS)
		render_prometheus(f, &sum, extra);
	else if (how == RENDER_JSON)
		render_json(f, &sum, extra);
	else
		render_text(f, &sum, extra);
	fclose(f);
	return buf;
}

char *alg_status_prometheus(struct alg *const *v, unsigned nv, time_t now, const char *version, const char *queue_path,
			    const char *extra_prom)
{
	return render(v, nv, now, RENDER_PROMETHEUS, version, queue_path, extra_prom);
}

char *alg_status(struct alg *const *v, unsigned nv, time_t now, bool json, const char *version, const char *queue_path,
		 const char *extra_json, const char *extra_text)
{
	return render(v, nv, now, json ? RENDER_JSON : RENDER_TEXT, version, queue_path,
		      json ? extra_json : extra_text);
}
