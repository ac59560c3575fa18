/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void config_defaults(struct alg_config *c)
{
	memset(c, 0, sizeof(*c));
	c->control_ports[0] = 21;
	c->ncontrol_ports = 1;
	c->queue = 21;
	c->workers = 1;
	/* vsftpd waits 60 s for a data connection by default (accept_timeout). */
	c->pinhole_timeout = 60;
	c->max_pinholes_per_session = 8;
	/* RFC 2577: a data port below 1024 is a bounce attempt at a well-known service. */
	c->min_data_port = 1024;
	c->max_sessions = 16384;
	c->max_sessions_per_client = 256;
	c->max_pinholes_per_client = 256;
	c->max_pinholes = 32768;
	c->log_level = 6;
	snprintf(c->table, sizeof(c->table), "ftp_alg");
	snprintf(c->user, sizeof(c->user), "nobody");
}

/* Decimal without sign, leading '+', spaces or overflow. */
static int parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int parse_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long v;
	int r = parse_uint(s, len, 65535, &v);
	if (r < 0)
		return r;
	if (v == 0)
		return -ERANGE;
	*port = (uint16_t)v;
	return 0;
}

/* The next item of a list separated by commas and/or spaces; NULL at the end. */
static const char *next_item(const char **p, size_t *len)
{
	while (**p == ' ' || **p == ',')
		(*p)++;
	if (!**p)
		return NULL;
	const char *item = *p;
	*len = strcspn(item, " ,");
	*p += *len;
	return item;
}

int config_parse_port_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	const char *dash = strchr(s, '-');
	if (!dash)
		dash = strchr(s, ' ');
	if (!dash)
		return -EINVAL;
	const char *b = dash + 1;
	while (*b == ' ')
		b++;
	size_t alen = (size_t)(dash - s);
	while (alen > 0 && s[alen - 1] == ' ')
		alen--;
	if (parse_port(s, alen, lo) < 0 || parse_port(b, strlen(b), hi) < 0 || *lo > *hi)
		return -EINVAL;
	return 0;
}

static int parse_level(const char *v)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	static const int lv[] = {3, 4, 6, 7};
	for (size_t i = 0; i < 4; i++)
		if (strcasecmp(v, names[i]) == 0)
			return lv[i];
	return -EINVAL;
}

int config_set(struct alg_config *c, const char *key, const char *value, char *err, size_t errlen)
{
	unsigned long v;

	if (strcasecmp(key, "ControlPorts") == 0) {
		unsigned n = 0;
		const char *p = value, *item;
		size_t l;
		while ((item = next_item(&p, &l))) {
			if (n == CONFIG_MAX_CONTROL_PORTS) {
				snprintf(err, errlen, "at most %d control ports", CONFIG_MAX_CONTROL_PORTS);
				return -EINVAL;
			}
			if (parse_port(item, l, &c->control_ports[n]) < 0) {
				snprintf(err, errlen, "'%.*s' is not a port (1-65535)", (int)l, item);
				return -EINVAL;
			}
			n++;
		}
		if (n == 0) {
			snprintf(err, errlen, "ControlPorts needs at least one port");
			return -EINVAL;
		}
		c->ncontrol_ports = n;
	} else if (strcasecmp(key, "MasqueradeAddress") == 0) {
		struct in_addr a;
		if (inet_pton(AF_INET, value, &a) != 1) {
			snprintf(err, errlen, "'%s' is not an IPv4 address (use the address itself, not a name)",
				 value);
			return -EINVAL;
		}
		memcpy(c->public4, &a, 4);
		c->has_public4 = true;
	} else if (strcasecmp(key, "PassivePorts") == 0) {
		if (config_parse_port_range(value, &c->passive_lo, &c->passive_hi) < 0) {
			snprintf(err, errlen, "'%s' is not a port range LO-HI within 1-65535", value);
			return -EINVAL;
		}
	} else if (strcasecmp(key, "Queue") == 0) {
		if (parse_uint(value, strlen(value), 65534, &v) < 0) {
			snprintf(err, errlen, "'%s' is not a queue number (0-65534; worker k uses N+2k and N+2k+1)",
				 value);
			return -EINVAL;
		}
		c->queue = (uint16_t)v;
	} else if (strcasecmp(key, "Workers") == 0) {
		if (parse_uint(value, strlen(value), CONFIG_MAX_WORKERS, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number of workers (1-%d)", value, CONFIG_MAX_WORKERS);
			return -EINVAL;
		}
		c->workers = (unsigned)v;
	} else if (strcasecmp(key, "PinholeTimeout") == 0) {
		if (parse_uint(value, strlen(value), 300, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a timeout in seconds (1-300)", value);
			return -EINVAL;
		}
		c->pinhole_timeout = (uint32_t)v;
	} else if (strcasecmp(key, "MinDataPort") == 0) {
		if (parse_uint(value, strlen(value), 65535, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a port (1-65535)", value);
			return -EINVAL;
		}
		c->min_data_port = (uint16_t)v;
	} else if (strcasecmp(key, "MaxPinholesPerSession") == 0) {
		if (parse_uint(value, strlen(value), 64, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number from 1 to 64", value);
			return -EINVAL;
		}
		c->max_pinholes_per_session = (unsigned)v;
	} else if (strcasecmp(key, "MaxPinholesPerClient") == 0 || strcasecmp(key, "MaxPinholes") == 0 ||
		   strcasecmp(key, "MaxSessionsPerClient") == 0) {
		if (parse_uint(value, strlen(value), 1000000, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number from 1 to 1000000", value);
			return -EINVAL;
		}
		if (strcasecmp(key, "MaxPinholes") == 0)
			c->max_pinholes = (unsigned)v;
		else if (strcasecmp(key, "MaxPinholesPerClient") == 0)
			c->max_pinholes_per_client = (unsigned)v;
		else
			c->max_sessions_per_client = (unsigned)v;
	} else if (strcasecmp(key, "MaxSessions") == 0) {
		if (parse_uint(value, strlen(value), 1000000, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number from 1 to 1000000", value);
			return -EINVAL;
		}
		c->max_sessions = (unsigned)v;
	} else if (strcasecmp(key, "User") == 0) {
		if (!*value || strlen(value) >= sizeof(c->user) ||
		    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(value)) {
			snprintf(err, errlen, "'%s' is not a user name", value);
			return -EINVAL;
		}
		snprintf(c->user, sizeof(c->user), "%s", value);
	} else if (strcasecmp(key, "LogLevel") == 0) {
		int l = parse_level(value);
		if (l < 0) {
			snprintf(err, errlen, "'%s' is not one of error, warning, info, debug", value);
			return -EINVAL;
		}
		c->log_level = l;
	} else {
		snprintf(err, errlen, "unknown setting '%s'", key);
		return -ENOENT;
	}
	return 0;
}

/* "192.0.2.10:21" or "[2001:db8::1]:21" */
static int parse_addr_port(const char *s, int *family, uint8_t addr[16], uint16_t *port)
{
	char a[INET6_ADDRSTRLEN + 2];
	const char *colon;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(a))
			return -EINVAL;
		memcpy(a, s + 1, (size_t)(end - s - 1));
		a[end - s - 1] = '\0';
		colon = end + 1;
		*family = AF_INET6;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(a))
			return -EINVAL;
		memcpy(a, s, (size_t)(colon - s));
		a[colon - s] = '\0';
		*family = AF_INET;
	}
	if (inet_pton(*family, a, addr) != 1)
		return -EINVAL;
	return parse_port(colon + 1, strlen(colon + 1), port);
}

static int parse_prefix(const char *s, size_t len, int *family, uint8_t net[16], uint8_t *plen)
{
	char a[INET6_ADDRSTRLEN + 4];
	if (len >= sizeof(a))
		return -EINVAL;
	memcpy(a, s, len);
	a[len] = '\0';
	char *slash = strchr(a, '/');
	unsigned long bits = 0;
	if (slash)
		*slash++ = '\0';
	*family = strchr(a, ':') ? AF_INET6 : AF_INET;
	unsigned max = *family == AF_INET ? 32 : 128;
	if (inet_pton(*family, a, net) != 1)
		return -EINVAL;
	if (!slash)
		bits = max;
	else if (parse_uint(slash, strlen(slash), max, &bits) < 0)
		return -EINVAL;
	*plen = (uint8_t)bits;
	return 0;
}

static bool prefix_match(int family, const uint8_t *net, unsigned plen, const uint8_t *addr)
{
	(void)family;
	for (unsigned i = 0; i < plen / 8; i++)
		if (net[i] != addr[i])
			return false;
	if (plen % 8) {
		uint8_t mask = (uint8_t)(0xff << (8 - plen % 8));
		if ((net[plen / 8] & mask) != (addr[plen / 8] & mask))
			return false;
	}
	return true;
}

const struct cfg_server *config_server_for(const struct alg_config *c, int family, const uint8_t *addr, uint16_t port)
{
	for (unsigned i = 0; i < c->nservers; i++) {
		const struct cfg_server *sv = &c->servers[i];
		if (sv->family == family && sv->pub_port == port &&
		    memcmp(sv->pub, addr, family == AF_INET ? 4 : 16) == 0)
			return sv;
	}
	return NULL;
}

const struct cfg_class *config_class_for(const struct alg_config *c, int family, const uint8_t *addr)
{
	for (unsigned i = 0; i < c->nclasses; i++)
		for (unsigned j = 0; j < c->classes[i].nfrom; j++)
			if (c->classes[i].from[j].family == family &&
			    prefix_match(family, c->classes[i].from[j].net, c->classes[i].from[j].plen, addr))
				return &c->classes[i];
	return NULL;
}

static int set_server(struct cfg_server *sv, const char *key, const char *value, char *err, size_t errlen)
{
	unsigned long v;
	if (strcasecmp(key, "Public") == 0 || strcasecmp(key, "Server") == 0) {
		bool pub = strcasecmp(key, "Public") == 0;
		int family;
		uint8_t a[16];
		uint16_t port;
		if (parse_addr_port(value, &family, a, &port) < 0) {
			snprintf(err, errlen, "'%s' is not ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)", value);
			return -EINVAL;
		}
		if (sv->family && sv->family != family) {
			snprintf(err, errlen, "Public and Server must be of one address family");
			return -EINVAL;
		}
		sv->family = family;
		memcpy(pub ? sv->pub : sv->addr, a, 16);
		*(pub ? &sv->pub_port : &sv->port) = port;
	} else if (strcasecmp(key, "PassivePorts") == 0) {
		if (config_parse_port_range(value, &sv->passive_lo, &sv->passive_hi) < 0) {
			snprintf(err, errlen, "'%s' is not a port range LO-HI within 1-65535", value);
			return -EINVAL;
		}
	} else if (strcasecmp(key, "MaxSessions") == 0) {
		if (parse_uint(value, strlen(value), 1000000, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number from 1 to 1000000", value);
			return -EINVAL;
		}
		sv->max_sessions = (unsigned)v;
	} else if (strcasecmp(key, "MasqueradeAddress") == 0) {
		if (inet_pton(strchr(value, ':') ? AF_INET6 : AF_INET, value, sv->masq) != 1) {
			snprintf(err, errlen, "'%s' is not an address", value);
			return -EINVAL;
		}
		sv->has_masq = true;
	} else {
		snprintf(err, errlen,
			 "unknown setting '%s' in a [server] section (Public, Server, PassivePorts, "
			 "MaxSessions, MasqueradeAddress)",
			 key);
		return -ENOENT;
	}
	return 0;
}

static int set_class(struct cfg_class *cl, const char *key, const char *value, char *err, size_t errlen)
{
	if (strcasecmp(key, "From") == 0) {
		const char *p = value, *item;
		size_t l;
		while ((item = next_item(&p, &l))) {
			if (cl->nfrom == CONFIG_MAX_PREFIXES) {
				snprintf(err, errlen, "at most %d prefixes per class", CONFIG_MAX_PREFIXES);
				return -EINVAL;
			}
			if (parse_prefix(item, l, &cl->from[cl->nfrom].family, cl->from[cl->nfrom].net,
					 &cl->from[cl->nfrom].plen) < 0) {
				snprintf(err, errlen, "'%.*s' is not a prefix (ADDRESS/LENGTH)", (int)l, item);
				return -EINVAL;
			}
			cl->nfrom++;
		}
	} else if (strcasecmp(key, "Rewrite") == 0) {
		if (strcasecmp(value, "no") == 0)
			cl->no_rewrite = true;
		else if (strcasecmp(value, "yes") == 0)
			cl->no_rewrite = false;
		else {
			snprintf(err, errlen, "Rewrite is yes or no, not '%s'", value);
			return -EINVAL;
		}
	} else if (strcasecmp(key, "MasqueradeAddress") == 0) {
		if (inet_pton(strchr(value, ':') ? AF_INET6 : AF_INET, value, cl->masq) != 1) {
			snprintf(err, errlen, "'%s' is not an address", value);
			return -EINVAL;
		}
		cl->has_masq = true;
	} else {
		snprintf(err, errlen, "unknown setting '%s' in a [class] section (From, Rewrite, MasqueradeAddress)",
			 key);
		return -ENOENT;
	}
	return 0;
}

struct load_ctx {
	struct alg_config *c;
	const char *path;
	int line;
	int bad;
	void (*report)(void *ctx, const char *path, int line, const char *msg);
	void *rctx;
	char section[64];
	int kind;	  /* 0 global, 1 server, 2 class, -1 a bad section */
	int section_line; /* line of the last [header] read */
};

static bool valid_name(const char *n)
{
	if (!*n || strlen(n) >= 32)
		return false;
	for (; *n; n++)
		if (!isalnum((unsigned char)*n) && *n != '-' && *n != '_')
			return false;
	return true;
}

/* A new [section] began: "server NAME" or "class NAME". */
static void begin_section(struct load_ctx *l, const char *section)
{
	char err[256];
	const char *name = strchr(section, ' ');
	snprintf(l->section, sizeof(l->section), "%s", section);
	l->kind = -1;
	if (name && strncasecmp(section, "server ", 7) == 0 && valid_name(name + 1)) {
		if (l->c->nservers == CONFIG_MAX_SERVERS) {
			snprintf(err, sizeof(err), "at most %d [server] sections", CONFIG_MAX_SERVERS);
		} else {
			struct cfg_server *sv = &l->c->servers[l->c->nservers++];
			memset(sv, 0, sizeof(*sv));
			snprintf(sv->name, sizeof(sv->name), "%s", name + 1);
			sv->line = l->section_line;
			l->kind = 1;
			return;
		}
	} else if (name && strncasecmp(section, "class ", 6) == 0 && valid_name(name + 1)) {
		if (l->c->nclasses == CONFIG_MAX_CLASSES) {
			snprintf(err, sizeof(err), "at most %d [class] sections", CONFIG_MAX_CLASSES);
		} else {
			struct cfg_class *cl = &l->c->classes[l->c->nclasses++];
			memset(cl, 0, sizeof(*cl));
			snprintf(cl->name, sizeof(cl->name), "%s", name + 1);
			cl->line = l->section_line;
			l->kind = 2;
			return;
		}
	} else {
		snprintf(err, sizeof(err), "unknown section [%s] (use [server NAME] or [class NAME])", section);
	}
	l->report(l->rctx, l->path, l->section_line, err);
	l->bad++;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *l = user;
	char err[256];

	if (strcmp(section ? section : "", l->section) != 0)
		begin_section(l, section);
	int r = 0;
	if (l->kind == 0)
		r = config_set(l->c, name, value, err, sizeof(err));
	else if (l->kind == 1)
		r = set_server(&l->c->servers[l->c->nservers - 1], name, value, err, sizeof(err));
	else if (l->kind == 2)
		r = set_class(&l->c->classes[l->c->nclasses - 1], name, value, err, sizeof(err));
	if (r < 0) {
		l->report(l->rctx, l->path, l->line, err);
		l->bad++;
	}
	return 1;
}

/* inih reads through this, one line per call, so the handler knows the line number. */
struct line_reader {
	FILE *f;
	struct load_ctx *l;
};

static char *line_reader(char *str, int num, void *stream)
{
	struct line_reader *r = stream;
	char *s = fgets(str, num, r->f);
	if (s) {
		r->l->line++;
		if (s[strspn(s, " \t")] == '[')
			r->l->section_line = r->l->line;
	}
	return s;
}

int config_load(struct alg_config *c, const char *path,
		void (*report)(void *ctx, const char *path, int line, const char *msg), void *ctx)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	struct load_ctx l = {.c = c, .path = path, .report = report, .rctx = ctx};
	c->nservers = 0;
	c->nclasses = 0;
	struct line_reader r = {.f = f, .l = &l};
	int rc = ini_parse_stream(line_reader, &r, handler, &l);
	fclose(f);
	if (rc > 0) {
		/* A syntax error inih found itself (no '=', unterminated section). */
		report(ctx, path, rc, "expected 'Key = value' or '[section]'");
		l.bad++;
	} else if (rc < 0) {
		return -EIO;
	}
	/* Whole sections: what each needs, and no two servers on one public port. */
	char err[256];
	for (unsigned i = 0; i < c->nservers; i++) {
		const struct cfg_server *sv = &c->servers[i];
		if (!sv->pub_port || !sv->port) {
			snprintf(err, sizeof(err), "[server %s] needs Public = ADDRESS:PORT and Server = ADDRESS:PORT",
				 sv->name);
			report(ctx, path, sv->line, err);
			l.bad++;
			continue;
		}
		for (unsigned j = 0; j < i; j++)
			if (c->servers[j].pub_port == sv->pub_port && c->servers[j].family == sv->family &&
			    memcmp(c->servers[j].pub, sv->pub, 16) == 0) {
				snprintf(err, sizeof(err),
					 "[server %s] publishes the same address and port as [server %s]", sv->name,
					 c->servers[j].name);
				report(ctx, path, sv->line, err);
				l.bad++;
			}
	}
	for (unsigned i = 0; i < c->nclasses; i++)
		if (c->classes[i].nfrom == 0) {
			snprintf(err, sizeof(err), "[class %s] needs From = PREFIX[, PREFIX...]", c->classes[i].name);
			report(ctx, path, c->classes[i].line, err);
			l.bad++;
		}
	return l.bad ? -EINVAL : 0;
}
