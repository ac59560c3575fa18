/* SPDX-License-Identifier: GPL-2.0-or-later */
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
#include <stddef.h>
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

static int parse_yes_no(const char *key, const char *value, bool *out, char *err, size_t errlen)
{
	if (strcasecmp(value, "yes") != 0 && strcasecmp(value, "no") != 0) {
		snprintf(err, errlen, "%s is yes or no, not '%s'", key, value);
		return -EINVAL;
	}
	*out = strcasecmp(value, "yes") == 0;
	return 0;
}

/* An address of either family, as written (no names). */
static int parse_masq(const char *value, int *family, uint8_t addr[16], char *err, size_t errlen)
{
	int f = strchr(value, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(f, value, addr) != 1) {
		snprintf(err, errlen, "'%s' is not an address", value);
		return -EINVAL;
	}
	*family = f;
	return 0;
}

/* A user or group name as useradd makes them: lower case, digits, '_' and '-'. */
static int set_name(char *dst, size_t cap, const char *value, const char *what, char *err, size_t errlen)
{
	if (!*value || strlen(value) >= cap ||
	    strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(value)) {
		snprintf(err, errlen, "'%s' is not a %s name", value, what);
		return -EINVAL;
	}
	snprintf(dst, cap, "%s", value);
	return 0;
}

/* The settings that are one number in a range: a row each. */
#define NUM(field) offsetof(struct alg_config, field), sizeof(((struct alg_config *)0)->field)
static const struct num_key {
	const char *key;
	unsigned long min, max;
	size_t off, size;
	size_t at; /* where the setting is remembered as set (its cfg_where), or 0 */
	const char *what;
} num_keys[] = {
    {"Queue", 0, 65534, NUM(queue), offsetof(struct alg_config, at_queue),
     "a queue number (0-65534; worker k uses N+2k and N+2k+1)"},
    {"Workers", 1, CONFIG_MAX_WORKERS, NUM(workers), offsetof(struct alg_config, at_workers), "a number of workers"},
    {"PinholeTimeout", 1, 300, NUM(pinhole_timeout), 0, "a timeout in seconds"},
    {"MinDataPort", 1, 65535, NUM(min_data_port), 0, "a port"},
    {"MaxPinholesPerSession", 1, 64, NUM(max_pinholes_per_session), 0, "a number"},
    {"MaxPinholesPerClient", 1, 1000000, NUM(max_pinholes_per_client), 0, "a number"},
    {"MaxPinholes", 1, 1000000, NUM(max_pinholes), 0, "a number"},
    {"MaxSessionsPerClient", 1, 1000000, NUM(max_sessions_per_client), 0, "a number"},
    {"MaxSessions", 1, 1000000, NUM(max_sessions), 0, "a number"},
    {"HoldMax", 1, 2048, NUM(hold_max), 0, "a number"},
    {"HoldMaxPerClient", 1, 2048, NUM(hold_max_per_client), 0, "a number"},
};

_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "the numeric settings are 16 or 32 bits");

static int set_number(struct alg_config *c, const struct num_key *k, const char *value, struct cfg_where at, char *err,
		      size_t errlen)
{
	unsigned long v;
	if (parse_uint(value, strlen(value), k->max, &v) < 0 || v < k->min) {
		snprintf(err, errlen, "'%s' is not %s from %lu to %lu", value, k->what, k->min, k->max);
		return -EINVAL;
	}
	uint8_t *field = (uint8_t *)c + k->off;
	if (k->size == sizeof(uint16_t)) {
		uint16_t x = (uint16_t)v;
		memcpy(field, &x, sizeof(x));
	} else {
		uint32_t x = (uint32_t)v;
		memcpy(field, &x, sizeof(x));
	}
	if (k->at)
		memcpy((uint8_t *)c + k->at, &at, sizeof(at));
	return 0;
}

static int set_global(struct alg_config *c, const char *key, const char *value, struct cfg_where at, char *err,
		      size_t errlen)
{
	for (size_t i = 0; i < sizeof(num_keys) / sizeof(num_keys[0]); i++)
		if (strcasecmp(key, num_keys[i].key) == 0)
			return set_number(c, &num_keys[i], value, at, err, errlen);

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
	} else if (strcasecmp(key, "KeepReplyLength") == 0) {
		if (parse_yes_no(key, value, &c->keep_reply_length, err, errlen) < 0)
			return -EINVAL;
	} else if (strcasecmp(key, "HighAvailability") == 0) {
		if (parse_yes_no(key, value, &c->high_availability, err, errlen) < 0)
			return -EINVAL;
	} else if (strcasecmp(key, "User") == 0) {
		if (set_name(c->user, sizeof(c->user), value, "user", err, errlen) < 0)
			return -EINVAL;
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
		if (set_name(c->control_group, sizeof(c->control_group), value, "group", err, errlen) < 0)
			return -EINVAL;
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

int config_set_server(struct cfg_server *sv, const char *key, const char *value, int line, char *err, size_t errlen)
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
		if (parse_masq(value, &sv->masq_family, sv->masq, err, errlen) < 0)
			return -EINVAL;
		sv->has_masq = true;
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

int config_set_class(struct cfg_class *cl, const char *key, const char *value, int line, char *err, size_t errlen)
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
		bool yes;
		if (parse_yes_no(key, value, &yes, err, errlen) < 0)
			return -EINVAL;
		cl->no_rewrite = !yes;
	} else if (strcasecmp(key, "MasqueradeAddress") == 0) {
		if (parse_masq(value, &cl->masq_family, cl->masq, err, errlen) < 0)
			return -EINVAL;
		cl->has_masq = true;
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
