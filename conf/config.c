/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

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

void config_defaults(struct alg_config *c)
{
	memset(c, 0, sizeof(*c));
	c->control_ports[0] = 21;
	c->ncontrol_ports = 1;
	c->queue = 21;
	c->workers = 1;
	/* vsftpd waits 60 s for a data connection by default (accept_timeout). */
	c->pinhole_timeout = 60;
	c->max_pinholes_per_session = 1;
	/* RFC 2577: a data port below 1024 is a bounce attempt at a well-known service. */
	c->min_data_port = 1024;
	c->keep_reply_length = true;
	c->max_sessions = 16384;
	c->max_sessions_per_client = 256;
	c->max_pinholes_per_client = 256;
	c->max_pinholes = 32768;
	/* Far below the kernel's queue length (4096): held packets count against it. */
	c->hold_max = 1024;
	c->hold_max_per_client = 64;
	c->log_level = 6;
	snprintf(c->table, sizeof(c->table), "ftp_alg");
	snprintf(c->user, sizeof(c->user), "nobody");
}

/*
 * Decimal without sign, leading '+', spaces or overflow. Each digit is
 * checked against max before it is added, so no intermediate value exceeds
 * max whatever the width of long (32-bit builds included).
 */
static int parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned long d = (unsigned long)(s[i] - '0');
		if (v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
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
	/* LO-HI only: "60000 60999" reads like two settings, and the man page documents the dash. */
	const char *dash = strchr(s, '-');
	if (!dash)
		return -EINVAL;
	const char *b = dash + 1;
	while (*b == ' ')
		b++;
	size_t alen = (size_t)(dash - s);
	while (alen > 0 && s[alen - 1] == ' ')
		alen--;
	uint16_t l, h;
	if (parse_port(s, alen, &l) < 0 || parse_port(b, strlen(b), &h) < 0 || l > h)
		return -EINVAL;
	*lo = l;
	*hi = h;
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

static int set_global(struct alg_config *c, const char *key, const char *value, struct cfg_where at, char *err,
		      size_t errlen)
{
	unsigned long v;

	if (strcasecmp(key, "ControlPorts") == 0) {
		uint16_t ports[CONFIG_MAX_CONTROL_PORTS];
		unsigned n = 0;
		const char *p = value, *item;
		size_t l;
		while ((item = next_item(&p, &l))) {
			if (n == CONFIG_MAX_CONTROL_PORTS) {
				snprintf(err, errlen, "at most %d control ports", CONFIG_MAX_CONTROL_PORTS);
				return -EINVAL;
			}
			if (parse_port(item, l, &ports[n]) < 0) {
				snprintf(err, errlen, "'%.*s' is not a port (1-65535)", (int)l, item);
				return -EINVAL;
			}
			n++;
		}
		if (n == 0) {
			snprintf(err, errlen, "ControlPorts needs at least one port");
			return -EINVAL;
		}
		memcpy(c->control_ports, ports, sizeof(ports));
		c->ncontrol_ports = n;
		c->at_control_ports = at;
	} else if (strcasecmp(key, "MasqueradeAddress") == 0) {
		struct in_addr a;
		if (inet_pton(AF_INET, value, &a) != 1) {
			snprintf(err, errlen, "'%s' is not an IPv4 address (use the address itself, not a name)",
				 value);
			return -EINVAL;
		}
		memcpy(c->public4, &a, 4);
		c->has_public4 = true;
		c->at_public4 = at;
	} else if (strcasecmp(key, "PassivePorts") == 0) {
		if (config_parse_port_range(value, &c->passive_lo, &c->passive_hi) < 0) {
			snprintf(err, errlen, "'%s' is not a port range LO-HI within 1-65535%s", value,
				 strchr(value, '-') ? "" : " (the two ports are joined by '-', as in 60000-60999)");
			return -EINVAL;
		}
		c->at_passive = at;
	} else if (strcasecmp(key, "Queue") == 0) {
		if (parse_uint(value, strlen(value), 65534, &v) < 0) {
			snprintf(err, errlen, "'%s' is not a queue number (0-65534; worker k uses N+2k and N+2k+1)",
				 value);
			return -EINVAL;
		}
		c->queue = (uint16_t)v;
		c->at_queue = at;
	} else if (strcasecmp(key, "Workers") == 0) {
		if (parse_uint(value, strlen(value), CONFIG_MAX_WORKERS, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number of workers (1-%d)", value, CONFIG_MAX_WORKERS);
			return -EINVAL;
		}
		c->workers = (unsigned)v;
		c->at_workers = at;
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
	} else if (strcasecmp(key, "KeepReplyLength") == 0) {
		if (strcasecmp(value, "yes") != 0 && strcasecmp(value, "no") != 0) {
			snprintf(err, errlen, "KeepReplyLength is yes or no, not '%s'", value);
			return -EINVAL;
		}
		c->keep_reply_length = strcasecmp(value, "yes") == 0;
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
	} else if (strcasecmp(key, "HoldMax") == 0 || strcasecmp(key, "HoldMaxPerClient") == 0) {
		if (parse_uint(value, strlen(value), 2048, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number from 1 to 2048", value);
			return -EINVAL;
		}
		if (strcasecmp(key, "HoldMax") == 0)
			c->hold_max = (unsigned)v;
		else
			c->hold_max_per_client = (unsigned)v;
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
		c->at_user = at;
	} else if (strcasecmp(key, "Outside") == 0) {
		const char *p = value, *item;
		size_t l;
		unsigned n = 0;
		while ((item = next_item(&p, &l))) {
			/* IFNAMSIZ is 16 with its NUL; '/' and ':' are not in interface names. */
			if (n == CONFIG_MAX_OUTSIDE) {
				snprintf(err, errlen, "at most %d interfaces", CONFIG_MAX_OUTSIDE);
				return -EINVAL;
			}
			if (l >= sizeof(c->outside[0]) || memchr(item, '/', l) || memchr(item, ':', l)) {
				snprintf(err, errlen, "'%.*s' is not an interface name", (int)l, item);
				return -EINVAL;
			}
			memcpy(c->outside[n], item, l);
			c->outside[n][l] = '\0';
			n++;
		}
		if (n == 0) {
			snprintf(err, errlen, "Outside needs at least one interface name");
			return -EINVAL;
		}
		c->noutside = n;
	} else if (strcasecmp(key, "ControlGroup") == 0) {
		if (!*value || strlen(value) >= sizeof(c->control_group) ||
		    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(value)) {
			snprintf(err, errlen, "'%s' is not a group name", value);
			return -EINVAL;
		}
		snprintf(c->control_group, sizeof(c->control_group), "%s", value);
		c->at_control_group = at;
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

static int set_server(struct cfg_server *sv, const char *key, const char *value, int line, char *err, size_t errlen)
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
			snprintf(err, errlen, "'%s' is not a port range LO-HI within 1-65535%s", value,
				 strchr(value, '-') ? "" : " (the two ports are joined by '-', as in 60000-60999)");
			return -EINVAL;
		}
		sv->passive_line = line;
	} else if (strcasecmp(key, "MaxSessions") == 0) {
		if (parse_uint(value, strlen(value), 1000000, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number from 1 to 1000000", value);
			return -EINVAL;
		}
		sv->max_sessions = (unsigned)v;
	} else if (strcasecmp(key, "MasqueradeAddress") == 0) {
		int family = strchr(value, ':') ? AF_INET6 : AF_INET;
		if (inet_pton(family, value, sv->masq) != 1) {
			snprintf(err, errlen, "'%s' is not an address", value);
			return -EINVAL;
		}
		sv->has_masq = true;
		sv->masq_family = family;
		sv->masq_line = line;
	} else {
		snprintf(err, errlen,
			 "unknown setting '%s' in a [server] section (Public, Server, PassivePorts, "
			 "MaxSessions, MasqueradeAddress)",
			 key);
		return -ENOENT;
	}
	return 0;
}

static int set_class(struct cfg_class *cl, const char *key, const char *value, int line, char *err, size_t errlen)
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
		int family = strchr(value, ':') ? AF_INET6 : AF_INET;
		if (inet_pton(family, value, cl->masq) != 1) {
			snprintf(err, errlen, "'%s' is not an address", value);
			return -EINVAL;
		}
		cl->has_masq = true;
		cl->masq_family = family;
		cl->masq_line = line;
	} else {
		snprintf(err, errlen, "unknown setting '%s' in a [class] section (From, Rewrite, MasqueradeAddress)",
			 key);
		return -ENOENT;
	}
	return 0;
}

int config_set(struct alg_config *c, const char *key, const char *value, const char *origin, int line,
	       config_report_fn *report, void *ctx)
{
	char err[320];
	int r = set_global(c, key, value, (struct cfg_where){origin, line}, err, sizeof(err));
	if (r < 0)
		report(ctx, origin, line, err);
	return r;
}

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
		r = set_server(sv, key, value, line, err, sizeof(err));
	} else if (l->kind == 2) {
		struct cfg_class *cl = l->spare ? &l->spare_class : &c->classes[c->nclasses - 1];
		if (!l->spare)
			l->nclass_keys[c->nclasses - 1]++;
		r = set_class(cl, key, value, line, err, sizeof(err));
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

/* Where a setting came from, for a message; a default is named by its key. */
static void report_at(const struct cfg_where *w, const char *key, config_report_fn *report, void *ctx, const char *msg)
{
	report(ctx, w->origin ? w->origin : key, w->origin ? w->line : 0, msg);
}

struct range {
	uint16_t lo, hi;
	struct cfg_where at;
	char what[64];
};

int config_check(const struct alg_config *c, bool lookup_user, config_report_fn *report, void *ctx)
{
	char err[320];
	int nbad = 0;

	unsigned last = (unsigned)c->queue + 2 * c->workers - 1;
	if (last > 65535) {
		snprintf(
		    err, sizeof(err),
		    "Queue %u with %u workers needs queues up to %u; the last is 65535 (worker k uses Queue+2k and "
		    "Queue+2k+1)",
		    c->queue, c->workers, last);
		report_at(c->at_queue.origin ? &c->at_queue : &c->at_workers, "Queue", report, ctx, err);
		nbad++;
	}

	struct range r[1 + CONFIG_MAX_SERVERS];
	unsigned n = 0;
	if (c->passive_lo) {
		r[n] = (struct range){c->passive_lo, c->passive_hi, c->at_passive, "the global PassivePorts"};
		n++;
	}
	for (unsigned i = 0; i < c->nservers; i++)
		if (c->servers[i].passive_lo) {
			r[n] = (struct range){c->servers[i].passive_lo,
					      c->servers[i].passive_hi,
					      {c->file, c->servers[i].passive_line},
					      ""};
			snprintf(r[n].what, sizeof(r[n].what), "PassivePorts of [server %s]", c->servers[i].name);
			n++;
		}
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < i; j++)
			if (r[i].lo <= r[j].hi && r[j].lo <= r[i].hi) {
				snprintf(err, sizeof(err),
					 "PassivePorts %u-%u overlaps %s (%u-%u): give each its own range", r[i].lo,
					 r[i].hi, r[j].what, r[j].lo, r[j].hi);
				report_at(&r[i].at, "PassivePorts", report, ctx, err);
				nbad++;
			}
		for (unsigned k = 0; k < c->ncontrol_ports; k++)
			if (c->control_ports[k] >= r[i].lo && c->control_ports[k] <= r[i].hi) {
				snprintf(err, sizeof(err), "PassivePorts %u-%u holds control port %u (ControlPorts)",
					 r[i].lo, r[i].hi, c->control_ports[k]);
				report_at(&r[i].at, "PassivePorts", report, ctx, err);
				nbad++;
			}
		for (unsigned k = 0; k < c->nservers; k++)
			if (c->servers[k].pub_port >= r[i].lo && c->servers[k].pub_port <= r[i].hi) {
				snprintf(err, sizeof(err),
					 "PassivePorts %u-%u holds port %u, where [server %s] is published", r[i].lo,
					 r[i].hi, c->servers[k].pub_port, c->servers[k].name);
				report_at(&r[i].at, "PassivePorts", report, ctx, err);
				nbad++;
			}
	}

	if (lookup_user) {
		struct passwd pw, *found = NULL;
		char buf[4096];
		int e = getpwnam_r(c->user, &pw, buf, sizeof(buf), &found);
		if (!found) {
			if (e)
				snprintf(err, sizeof(err), "cannot look up user '%s': %s", c->user, strerror(e));
			else
				snprintf(err, sizeof(err), "no user '%s' to run as", c->user);
			report_at(&c->at_user, "User", report, ctx, err);
			nbad++;
		}
		struct group gr, *gfound = NULL;
		e = c->control_group[0] ? getgrnam_r(c->control_group, &gr, buf, sizeof(buf), &gfound) : 0;
		if (c->control_group[0] && !gfound) {
			if (e)
				snprintf(err, sizeof(err), "cannot look up group '%s': %s", c->control_group,
					 strerror(e));
			else
				snprintf(err, sizeof(err), "no group '%s' for the control socket", c->control_group);
			report_at(&c->at_control_group, "ControlGroup", report, ctx, err);
			nbad++;
		}
	}
	return nbad ? -EINVAL : 0;
}
