/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The configuration file: its lines and sections, read as a whole so that
 * every bad line is named, and the checks that need every section at once.
 * What each key means is config.c's.
 */
#include "config.h"
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct load_ctx {
	struct alg_config *c;
	const char *origin;
	config_report_fn *report;
	void *rctx;
	int bad;
	int kind; /* 0 global, 1 server, 2 class, -1 an unknown section */
	/* Settings read per section, to refuse an empty one. */
	unsigned nserver_keys[CONFIG_MAX_SERVERS], nclass_keys[CONFIG_MAX_CLASSES];
	/* A section refused for its header still has its lines checked, here. */
	struct cfg_server spare_server;
	struct cfg_class spare_class;
	bool spare;
	/* The keys set so far in this scope (the global settings or one section), to refuse a second. */
	struct {
		char key[64];
		int line;
	} seen[64];
	unsigned nseen;
};

static void bad(struct load_ctx *l, int line, const char *msg)
{
	l->report(l->rctx, l->origin, line, msg);
	l->bad++;
}

static bool valid_name(const char *n, size_t len)
{
	if (len == 0 || len >= 32)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '_')
			return false;
	return true;
}

/* A "[server NAME]" or "[class NAME]" header; s is what lies between the brackets, trimmed. */
static void begin_section(struct load_ctx *l, const char *s, size_t len, int line)
{
	char err[320];
	bool server = len > 7 && strncasecmp(s, "server ", 7) == 0;
	bool class = len > 6 && strncasecmp(s, "class ", 6) == 0;
	size_t skip = server ? 7 : class ? 6 : len;
	const char *name = s + skip;
	size_t nlen = len - skip;
	while (nlen > 0 && (*name == ' ' || *name == '\t')) {
		name++;
		nlen--;
	}
	l->kind = -1;
	l->spare = false;
	l->nseen = 0;
	if ((!server && !class) || !valid_name(name, nlen)) {
		snprintf(err, sizeof(err),
			 "unknown section [%.*s] (use [server NAME] or [class NAME]; a NAME is letters, digits, - "
			 "and _, at most 31)",
			 (int)len, s);
		bad(l, line, err);
		return;
	}
	struct alg_config *c = l->c;
	unsigned n = server ? c->nservers : c->nclasses;
	err[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		const char *other = server ? c->servers[i].name : c->classes[i].name;
		if (strlen(other) == nlen && strncasecmp(other, name, nlen) == 0)
			snprintf(err, sizeof(err), "[%s %.*s] again: it was opened at line %d; one section per name",
				 server ? "server" : "class", (int)nlen, name,
				 server ? c->servers[i].line : c->classes[i].line);
	}
	if (!err[0] && n == (server ? CONFIG_MAX_SERVERS : CONFIG_MAX_CLASSES))
		snprintf(err, sizeof(err), "at most %d [%s] sections", server ? CONFIG_MAX_SERVERS : CONFIG_MAX_CLASSES,
			 server ? "server" : "class");
	l->kind = server ? 1 : 2;
	if (err[0]) {
		bad(l, line, err);
		l->spare = true;
		memset(&l->spare_server, 0, sizeof(l->spare_server));
		memset(&l->spare_class, 0, sizeof(l->spare_class));
		return;
	}
	if (server) {
		struct cfg_server *sv = &c->servers[c->nservers];
		memset(sv, 0, sizeof(*sv));
		snprintf(sv->name, sizeof(sv->name), "%.*s", (int)nlen, name);
		sv->line = line;
		l->nserver_keys[c->nservers++] = 0;
	} else {
		struct cfg_class *cl = &c->classes[c->nclasses];
		memset(cl, 0, sizeof(*cl));
		snprintf(cl->name, sizeof(cl->name), "%.*s", (int)nlen, name);
		cl->line = line;
		l->nclass_keys[c->nclasses++] = 0;
	}
}

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* A key set in this scope; a refused line sets nothing, so a corrected line after it is no repeat. */
static void remember(struct load_ctx *l, const char *key, int line)
{
	if (l->nseen < sizeof(l->seen) / sizeof(l->seen[0])) {
		snprintf(l->seen[l->nseen].key, sizeof(l->seen[0].key), "%s", key);
		l->seen[l->nseen++].line = line;
	}
}

static void parse_line(struct load_ctx *l, const char *s, size_t n, int line)
{
	char key[64], value[256], err[320];
	size_t i = 0;

	if (memchr(s, '\0', n)) {
		bad(l, line, "the line holds a NUL byte");
		return;
	}
	while (i < n && blank(s[i]))
		i++;
	if (i == n || s[i] == '#' || s[i] == ';')
		return;
	if (i > 0) {
		/* A continuation would silently change the setting above: "ControlPorts = 21", "  2121" meant 2121. */
		bad(l, line,
		    "an indented line: there are no continuation lines; write each setting on one line, from the "
		    "left margin");
		return;
	}
	/* A '#' or ';' after white space starts a comment. */
	for (size_t j = 1; j < n; j++)
		if ((s[j] == '#' || s[j] == ';') && blank(s[j - 1])) {
			n = j;
			break;
		}
	while (n > 0 && blank(s[n - 1]))
		n--;
	if (s[0] == '[') {
		if (s[n - 1] != ']' || n < 2) {
			bad(l, line, "a section header is [server NAME] or [class NAME], with its closing ']'");
			l->kind = -1;
			l->spare = false;
			l->nseen = 0;
			return;
		}
		size_t a = 1, b = n - 1;
		while (a < b && blank(s[a]))
			a++;
		while (b > a && blank(s[b - 1]))
			b--;
		begin_section(l, s + a, b - a, line);
		return;
	}
	const char *eq = memchr(s, '=', n);
	if (!eq) {
		bad(l, line, "expected 'Key = value' or '[section]'");
		return;
	}
	size_t klen = (size_t)(eq - s), vstart = klen + 1;
	while (klen > 0 && blank(s[klen - 1]))
		klen--;
	while (vstart < n && blank(s[vstart]))
		vstart++;
	size_t vlen = n - vstart;
	if (klen == 0) {
		bad(l, line, "a setting needs its key before the '='");
		return;
	}
	if (klen >= sizeof(key) || vlen >= sizeof(value)) {
		snprintf(err, sizeof(err), "the line is too long (a key has at most %zu bytes, a value %zu)",
			 sizeof(key) - 1, sizeof(value) - 1);
		bad(l, line, err);
		return;
	}
	memcpy(key, s, klen);
	key[klen] = '\0';
	memcpy(value, s + vstart, vlen);
	value[vlen] = '\0';

	/* A second setting of a key would silently win over the first: name both lines. */
	for (unsigned j = 0; j < l->nseen; j++)
		if (strcasecmp(l->seen[j].key, key) == 0) {
			snprintf(err, sizeof(err), "%s is set again: it was set at line %d%s; set each key once", key,
				 l->seen[j].line, l->kind == 0 ? "" : " in this section");
			bad(l, line, err);
			return;
		}

	struct alg_config *c = l->c;
	int r = 0;
	if (l->kind == 0) {
		r = config_set(c, key, value, l->origin, line, l->report, l->rctx);
		if (r < 0)
			l->bad++;
		else
			remember(l, key, line);
		return;
	}
	if (l->kind == 1) {
		struct cfg_server *sv = l->spare ? &l->spare_server : &c->servers[c->nservers - 1];
		if (!l->spare)
			l->nserver_keys[c->nservers - 1]++;
		r = config_set_server(sv, key, value, line, err, sizeof(err));
	} else if (l->kind == 2) {
		struct cfg_class *cl = l->spare ? &l->spare_class : &c->classes[c->nclasses - 1];
		if (!l->spare)
			l->nclass_keys[c->nclasses - 1]++;
		r = config_set_class(cl, key, value, line, err, sizeof(err));
	}
	if (r < 0)
		bad(l, line, err);
	else
		remember(l, key, line);
}

static const char *family_name(int family)
{
	return family == AF_INET6 ? "IPv6" : "IPv4";
}

/* Whole sections: what each needs, no two servers on one public address, announced addresses of the right family. */
static void check_sections(struct load_ctx *l)
{
	struct alg_config *c = l->c;
	char err[320], a[INET6_ADDRSTRLEN], p[INET6_ADDRSTRLEN];
	for (unsigned i = 0; i < c->nservers; i++) {
		const struct cfg_server *sv = &c->servers[i];
		if (l->nserver_keys[i] == 0) {
			snprintf(err, sizeof(err),
				 "[server %s] is empty: it needs Public = ADDRESS:PORT and Server = "
				 "ADDRESS:PORT",
				 sv->name);
			bad(l, sv->line, err);
			continue;
		}
		if (!sv->pub_port || !sv->port) {
			snprintf(err, sizeof(err), "[server %s] needs Public = ADDRESS:PORT and Server = ADDRESS:PORT",
				 sv->name);
			bad(l, sv->line, err);
			continue;
		}
		for (unsigned j = 0; j < i; j++)
			if (c->servers[j].pub_port == sv->pub_port && c->servers[j].family == sv->family &&
			    memcmp(c->servers[j].pub, sv->pub, 16) == 0) {
				snprintf(err, sizeof(err),
					 "[server %s] publishes the same address and port as [server %s]", sv->name,
					 c->servers[j].name);
				bad(l, sv->line, err);
			}
		if (sv->has_masq && sv->masq_family != sv->family) {
			inet_ntop(sv->masq_family, sv->masq, a, sizeof(a));
			snprintf(err, sizeof(err),
				 "MasqueradeAddress %s is %s but [server %s] is %s (Public, Server): announce an "
				 "address of the server's family",
				 a, family_name(sv->masq_family), sv->name, family_name(sv->family));
			bad(l, sv->masq_line, err);
		}
	}
	for (unsigned i = 0; i < c->nclasses; i++) {
		const struct cfg_class *cl = &c->classes[i];
		if (l->nclass_keys[i] == 0) {
			snprintf(err, sizeof(err), "[class %s] is empty: it needs From = PREFIX[, PREFIX...]",
				 cl->name);
			bad(l, cl->line, err);
			continue;
		}
		if (cl->nfrom == 0) {
			snprintf(err, sizeof(err), "[class %s] needs From = PREFIX[, PREFIX...]", cl->name);
			bad(l, cl->line, err);
			continue;
		}
		for (unsigned j = 0; cl->has_masq && j < cl->nfrom; j++)
			if (cl->from[j].family != cl->masq_family) {
				inet_ntop(cl->masq_family, cl->masq, a, sizeof(a));
				inet_ntop(cl->from[j].family, cl->from[j].net, p, sizeof(p));
				snprintf(err, sizeof(err),
					 "MasqueradeAddress %s is %s but [class %s] holds %s clients (From %s/%u): "
					 "give those a class of their own",
					 a, family_name(cl->masq_family), cl->name, family_name(cl->from[j].family), p,
					 cl->from[j].plen);
				bad(l, cl->masq_line, err);
				break;
			}
	}
}

int config_parse(struct alg_config *c, const char *buf, size_t len, const char *origin, config_report_fn *report,
		 void *ctx)
{
	struct load_ctx *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	*l = (struct load_ctx){.c = c, .origin = origin, .report = report, .rctx = ctx};
	c->nservers = 0;
	c->nclasses = 0;
	c->file = origin;
	size_t pos = 0;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	for (int line = 1; pos < len; line++) {
		const char *s = buf + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (n > 0 && s[n - 1] == '\r')
			n--;
		parse_line(l, s, n, line);
	}
	check_sections(l);
	int nbad = l->bad;
	free(l);
	return nbad ? -EINVAL : 0;
}

#define CONFIG_MAX_FILE (1 << 20)

int config_load(struct alg_config *c, const char *path, config_report_fn *report, void *ctx)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = config_load_fd(c, fd, path, report, ctx);
	close(fd);
	return r;
}

int config_load_fd(struct alg_config *c, int fd, const char *path, config_report_fn *report, void *ctx)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	char *buf = malloc(CONFIG_MAX_FILE);
	size_t len = 0;
	int r = buf ? 0 : -ENOMEM;
	/* From the start: a descriptor passed along may have been read from before (no seek on a pipe). */
	if (lseek(fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
		r = -errno;
	while (r == 0) {
		ssize_t n = read(fd, buf + len, CONFIG_MAX_FILE - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		else if (n == 0)
			break;
		else if ((len += (size_t)n) == CONFIG_MAX_FILE)
			r = -EFBIG;
	}
	if (r == 0)
		r = config_parse(c, buf, len, path, report, ctx);
	free(buf);
	return r;
}
