/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <arpa/inet.h>
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
	/* vsftpd waits 60 s for a data connection by default (accept_timeout). */
	c->pinhole_timeout = 60;
	c->max_pinholes_per_session = 8;
	/* RFC 2577: a data port below 1024 is a bounce attempt at a well-known service. */
	c->min_data_port = 1024;
	c->max_sessions = 16384;
	c->log_level = 6;
	snprintf(c->table, sizeof(c->table), "ftp_alg");
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
		const char *p = value;
		while (*p) {
			while (*p == ' ' || *p == ',')
				p++;
			if (!*p)
				break;
			size_t l = strcspn(p, " ,");
			if (n == CONFIG_MAX_CONTROL_PORTS) {
				snprintf(err, errlen, "at most %d control ports", CONFIG_MAX_CONTROL_PORTS);
				return -EINVAL;
			}
			if (parse_port(p, l, &c->control_ports[n]) < 0) {
				snprintf(err, errlen, "'%.*s' is not a port (1-65535)", (int)l, p);
				return -EINVAL;
			}
			n++;
			p += l;
		}
		if (n == 0) {
			snprintf(err, errlen, "ControlPorts needs at least one port");
			return -EINVAL;
		}
		c->ncontrol_ports = n;
	} else if (strcasecmp(key, "MasqueradeAddress") == 0) {
		struct in_addr a;
		if (inet_pton(AF_INET, value, &a) != 1) {
			snprintf(err, errlen, "'%s' is not an IPv4 address (use the address itself, not a name)", value);
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
			snprintf(err, errlen, "'%s' is not a queue number (0-65534; N and N+1 are used)", value);
			return -EINVAL;
		}
		c->queue = (uint16_t)v;
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
	} else if (strcasecmp(key, "MaxSessions") == 0) {
		if (parse_uint(value, strlen(value), 1000000, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a number from 1 to 1000000", value);
			return -EINVAL;
		}
		c->max_sessions = (unsigned)v;
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

struct load_ctx {
	struct alg_config *c;
	const char *path;
	int line;
	int bad;
	void (*report)(void *ctx, const char *path, int line, const char *msg);
	void *rctx;
};

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *l = user;
	char err[256];

	if (section && *section) {
		snprintf(err, sizeof(err), "sections are not used ([%s])", section);
		l->report(l->rctx, l->path, l->line, err);
		l->bad++;
		return 1;
	}
	if (config_set(l->c, name, value, err, sizeof(err)) < 0) {
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
	if (s)
		r->l->line++;
	return s;
}

int config_load(struct alg_config *c, const char *path,
		void (*report)(void *ctx, const char *path, int line, const char *msg), void *ctx)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	struct load_ctx l = {.c = c, .path = path, .report = report, .rctx = ctx};
	struct line_reader r = {.f = f, .l = &l};
	int rc = ini_parse_stream(line_reader, &r, handler, &l);
	fclose(f);
	if (rc > 0) {
		/* A syntax error inih found itself (no '=', unterminated section). */
		report(ctx, path, rc, "expected 'Key = value'");
		l.bad++;
	} else if (rc < 0) {
		return -EIO;
	}
	return l.bad ? -EINVAL : 0;
}
